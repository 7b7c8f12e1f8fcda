// A real PostgreSQL 15 for tests, started by scripts/pg-test-server.sh in a
// temporary folder on a free loopback port. When a ctest fixture already
// started one (PROVP_TEST_PG_DIR holds its folder, with the URI in `uri`),
// that server is shared; otherwise this process starts its own and stops it
// on destruction. CreateDatabase gives each test a fresh database.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace provp::testing {

class PostgresServer {
 public:
  // The fixture's server, or a new one owned by the returned object.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> StartOrShare();
  ~PostgresServer();

  // URI of the maintenance database ("postgres").
  const std::string& admin_uri() const { return admin_uri_; }
  // Creates a database with a unique name and returns its URI.
  absl::StatusOr<std::string> CreateDatabase(const std::string& prefix);
  // Runs one SQL statement (no result) on the database at `uri`.
  static absl::Status Execute(const std::string& uri, const std::string& sql);

 private:
  PostgresServer() = default;
  std::string dir_;  // set when this object owns the server
  std::string admin_uri_;
};

}  // namespace provp::testing
