// The ipcx subcommands, one file each. Each add_* registers its subcommand on `app`; its callback
// prints errors as one line on stderr and throws CLI::RuntimeError(exit_code) to fail.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "ipcx/deadline.hpp"
#include "ipcx/error.hpp"

namespace ipcx::cli {

// Exit codes, also listed in `ipcx --help`.
enum exit_code : int {
  exit_ok = 0,
  exit_failure = 1,  // the operation failed (the stderr line says why)
  exit_usage = 2,    // bad command line or malformed address
  exit_timeout = 3,  // --timeout passed before the work was done
};

void add_send(CLI::App& app);
void add_recv(CLI::App& app);
void add_rm(CLI::App& app);
void add_bench(CLI::App& app);

// The helpers below are shared by send, recv and rm (defined in main.cpp).

// The exit code an error maps to: exit_usage for a malformed address, exit_timeout for
// errc::timed_out, exit_failure for everything else.
int exit_code_for(const ipcx::error& e) noexcept;

// Prints `ipcx: ` + e.message() as one line on stderr and returns `code`.
int report(const ipcx::error& e, int code);
inline int report(const ipcx::error& e) { return report(e, exit_code_for(e)); }

// The same error with `more` appended to its detail, for saying what the CLI was doing when the
// library call failed ("no listener within --timeout 0.3 s").
ipcx::error with_detail(const ipcx::error& e, const std::string& more);

// Checks a --timeout value: a number of seconds >= 0, fractions allowed ("inf": no limit).
CLI::Validator seconds_check();
// --timeout SECONDS as a deadline from now: never() when absent or too far away to matter.
ipcx::deadline deadline_after(std::optional<double> seconds);
// "--timeout 0.3 s", for error details.
std::string timeout_text(double seconds);

// Ends a subcommand's callback: CLI11 carries a non-zero code out of app.parse() to main.
inline void finish(int code) {
  if (code != exit_ok) throw CLI::RuntimeError(code);
}

}  // namespace ipcx::cli
