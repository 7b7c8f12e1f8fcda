// Pins torch::optim::SGD to PyTorch's semantics, which the trainer relies
// on: coupled weight decay in the gradient, the first momentum buffer equal
// to that gradient (no dampening on step one), nesterov off.
#include <torch/torch.h>

#include "gtest/gtest.h"

namespace {

TEST(SgdSemanticsTest, MatchesPyTorchUpdateRule) {
  torch::manual_seed(0);
  const double lr = 0.1, momentum = 0.9, wd = 5e-4;
  torch::Tensor p = torch::randn({2, 3, 4}).requires_grad_(true);
  torch::Tensor expect = p.detach().clone().to(torch::kFloat64);
  torch::Tensor buf;
  torch::optim::SGD opt(
      {p}, torch::optim::SGDOptions(lr).momentum(momentum).dampening(0).weight_decay(wd).nesterov(
               false));
  for (int step = 0; step < 3; ++step) {
    torch::Tensor g = torch::randn({2, 3, 4});
    opt.zero_grad();
    p.mutable_grad() = g.clone();
    opt.step();
    torch::Tensor d = g.to(torch::kFloat64) + wd * expect;
    buf = step == 0 ? d.clone() : momentum * buf + d;
    expect = expect - lr * buf;
    EXPECT_TRUE(torch::allclose(p.detach().to(torch::kFloat64), expect, 1e-6, 1e-7))
        << "step " << step;
  }
}

TEST(SgdSemanticsTest, LearningRateChangesBetweenStepsApply) {
  torch::Tensor p = torch::zeros({3}).requires_grad_(true);
  torch::optim::SGD opt({p}, torch::optim::SGDOptions(1.0).momentum(0.0));
  p.mutable_grad() = torch::ones({3});
  opt.step();
  for (auto& group : opt.param_groups())
    static_cast<torch::optim::SGDOptions&>(group.options()).lr(0.5);
  opt.step();
  EXPECT_TRUE(torch::allclose(p.detach(), torch::full({3}, -1.5)));
}

}  // namespace
