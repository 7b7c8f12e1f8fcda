// Accuracy bookkeeping that needs no LibTorch: the harmonic mean of base and
// novel accuracy and mean/std over seeds, as the reference reports them
// (parse_test_res.py). Pure functions; thread-safe.
#pragma once

#include <vector>

namespace provp::data {

// 2*b*n / (b+n); 0 when both are 0. Units are whatever the inputs use
// (the protocol reports percentages).
double HarmonicMean(double base, double novel);

struct MeanStd {
  double mean = 0.0;
  // Population standard deviation (numpy.std, ddof 0), as parse_test_res
  // prints it.
  double std = 0.0;
};

// Mean and std of the values; {0, 0} for an empty list.
MeanStd ComputeMeanStd(const std::vector<double>& values);

}  // namespace provp::data
