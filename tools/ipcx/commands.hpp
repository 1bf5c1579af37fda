// The ipcx subcommands, one file each. Each add_* registers its subcommand on `app`; its callback
// prints errors as one line on stderr and throws CLI::RuntimeError(exit_code) to fail.
#pragma once

#include <CLI/CLI.hpp>

namespace ipcx::cli {

// Exit codes, also listed in `ipcx --help`.
enum exit_code : int {
  exit_ok = 0,
  exit_failure = 1,    // the operation failed (the stderr line says why)
  exit_usage = 2,      // bad command line or malformed address
  exit_timeout = 3,    // --timeout passed before the work was done
};

void add_send(CLI::App& app);
void add_recv(CLI::App& app);
void add_rm(CLI::App& app);
void add_bench(CLI::App& app);

}  // namespace ipcx::cli
