// provp: the command-line client of provp-server. Classifies images, uploads
// datasets, runs and follows tuning jobs, manages prompt sets. Server address,
// API key and TLS from flags or PROVP_* environment variables. Exit code 0 on
// success, 1 with a one-line reason on any failure. Links gRPC and protobuf
// only (no LibTorch).
#include <CLI/CLI.hpp>

#include "client/commands/command.h"

int main(int argc, char** argv) {
  provp::client::Cli cli;
  CLI::App app{"provp: client for the provp prompt-tuning and classification server"};
  app.require_subcommand(1);
  auto& c = cli.connection;
  app.add_option("--address,-a", c.address, "Server host:port (env PROVP_ADDRESS)");
  app.add_option("--api-key", c.api_key, "API key (env PROVP_API_KEY); prefer --api-key-file");
  app.add_option("--api-key-file", c.api_key_file,
                 "File holding the API key (env PROVP_API_KEY_FILE)");
  app.add_flag("--tls", c.tls, "Use TLS (env PROVP_TLS=1)");
  app.add_option("--ca-cert", c.ca_cert, "CA certificate PEM (env PROVP_CA_CERT)");
  app.add_option("--client-cert", c.client_cert, "Client certificate PEM for mutual TLS");
  app.add_option("--client-key", c.client_key, "Client key PEM for mutual TLS");
  app.add_option("--tls-server-name", c.tls_server_name, "Expected server name in its certificate");
  app.add_option("--timeout", c.timeout_seconds, "Deadline of each unary call in seconds");
  app.add_flag("--json", cli.json, "Print JSON");

  provp::client::AddClassifyCommand(app, cli);
  provp::client::AddDatasetsCommand(app, cli);
  provp::client::AddTuneCommand(app, cli);
  provp::client::AddJobsCommand(app, cli);
  provp::client::AddPromptSetsCommand(app, cli);
  provp::client::AddHealthCommand(app, cli);
  provp::client::AddInfoCommand(app, cli);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "provp: %s\n", e.what());
    return 1;
  }
  return cli.exit_code;
}
