// What every `provp` subcommand shares: the connection flags, the output
// mode, the exit code, and small helpers for failing with one line.
// Each commands/<verb>.cc registers its subcommand with CLI11.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/message.h>
#include <CLI/CLI.hpp>

#include "client/connection.h"

namespace provp::client {

struct Cli {
  ConnectionOptions connection;
  bool json = false;
  int exit_code = 0;
};

// Prints "provp: <reason>" to stderr and sets exit code 1.
void Fail(Cli& cli, const std::string& reason);

// Opens the connection or fails the command (returns nullptr).
std::unique_ptr<Connection> Connect(Cli& cli);

// "promptSets/x" from "x" or "promptSets/x".
std::string ResourceName(const std::string& collection, const std::string& id_or_name);

// Splits "a,b, c" into trimmed non-empty names; with `file` also reads one
// name per line from it.
std::vector<std::string> SplitNames(const std::string& inline_list);

// Files of the given inputs: folders expanded (recursively, sorted) to their
// image files.
std::vector<std::string> ExpandImageInputs(const std::vector<std::string>& inputs);

// Formats a proto message as JSON on stdout.
void PrintJson(const google::protobuf::Message& message);

void AddClassifyCommand(CLI::App& app, Cli& cli);
void AddDatasetsCommand(CLI::App& app, Cli& cli);
void AddTuneCommand(CLI::App& app, Cli& cli);
void AddJobsCommand(CLI::App& app, Cli& cli);
void AddPromptSetsCommand(CLI::App& app, Cli& cli);
void AddHealthCommand(CLI::App& app, Cli& cli);
void AddInfoCommand(CLI::App& app, Cli& cli);

}  // namespace provp::client
