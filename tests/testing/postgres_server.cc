// Implementation of postgres_server.h.
#include "tests/testing/postgres_server.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <pqxx/pqxx>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace provp::testing {
namespace {

std::string ReadUri(const std::string& dir) {
  std::ifstream in(dir + "/uri");
  std::string uri;
  std::getline(in, uri);
  return std::string(absl::StripAsciiWhitespace(uri));
}

// The URI with its database name replaced.
std::string WithDatabase(const std::string& uri, const std::string& db) {
  return uri.substr(0, uri.rfind('/') + 1) + db;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::StartOrShare() {
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  if (const char* shared = getenv("PROVP_TEST_PG_DIR"); shared && *shared) {
    server->admin_uri_ = ReadUri(shared);
    if (server->admin_uri_.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("PROVP_TEST_PG_DIR=", shared, " has no uri file (fixture not started?)"));
    }
    return server;
  }
  char tmpl[] = "/tmp/provp_pg_XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  server->dir_ = tmpl;
  std::string cmd = absl::StrCat("bash ", PROVP_SOURCE_DIR, "/scripts/pg-test-server.sh start ",
                                 server->dir_, " >/dev/null");
  if (system(cmd.c_str()) != 0) {
    return absl::UnavailableError("scripts/pg-test-server.sh could not start PostgreSQL");
  }
  server->admin_uri_ = ReadUri(server->dir_);
  return server;
}

PostgresServer::~PostgresServer() {
  if (dir_.empty()) return;
  std::string cmd =
      absl::StrCat("bash ", PROVP_SOURCE_DIR, "/scripts/pg-test-server.sh stop ", dir_);
  (void)!system(cmd.c_str());
}

absl::StatusOr<std::string> PostgresServer::CreateDatabase(const std::string& prefix) {
  static std::atomic<int> counter{0};
  const std::string name =
      absl::StrCat(prefix, "_", getpid(), "_", counter++, "_", rand() % 100000);
  absl::Status s = Execute(admin_uri_, absl::StrCat("CREATE DATABASE ", name));
  if (!s.ok()) return s;
  return WithDatabase(admin_uri_, name);
}

absl::Status PostgresServer::Execute(const std::string& uri, const std::string& sql) {
  try {
    pqxx::connection conn(uri);
    pqxx::nontransaction tx(conn);
    tx.exec0(sql);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("postgresql: ", e.what()));
  }
}

}  // namespace provp::testing
