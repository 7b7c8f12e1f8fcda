// The start-up move of an older data folder's name-addressed files into
// the file store: prompt sets (<data_dir>/prompt_sets/<id>.pset) and
// uploaded datasets (<data_dir>/datasets/<id>/ with manifest.json) are
// stored under their content keys, their records updated to name the keys
// (compare-and-set, so replicas starting together agree), and the old files
// removed. Registered (DIRECTORY) datasets keep their images in place and
// get a manifest in the file store. Jobs are not moved: an unfinished job
// of an older version resumes from the checkpoint in its job folder, which
// the runner still reads when the record names none. A record whose files
// cannot be moved (missing, unreadable) is left as it is and reported; the
// registries still read it from the old place. Idempotent: a moved record
// is skipped. Run before serving.
#pragma once

#include <string>
#include <vector>

#include "core/store/store.h"
#include "server/state/file_refs.h"

namespace provp::server {

struct FileMigrationResult {
  int prompt_sets = 0;
  int datasets = 0;
  // "<resource name>: <error>" for records left in the old layout.
  std::vector<std::string> failed;
};

FileMigrationResult MigrateNameAddressedFiles(store::Store* store, FileRefs* files,
                                              const std::string& data_dir);

}  // namespace provp::server
