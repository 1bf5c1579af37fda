// ipcx — every Linux IPC mechanism from the command line.
#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "commands.hpp"

namespace ipcx::cli {

int exit_code_for(const ipcx::error& e) noexcept {
  if (e == errc::bad_address) return exit_usage;
  if (e == errc::timed_out) return exit_timeout;
  return exit_failure;
}

int report(const ipcx::error& e, int code) {
  std::fprintf(stderr, "ipcx: %s\n", e.message().c_str());
  return code;
}

ipcx::error with_detail(const ipcx::error& e, const std::string& more) {
  // error keeps "no object" apart from an empty one; an empty object() means "none" here, which
  // only loses the quotes of an object that really was "".
  std::optional<std::string> object;
  if (!e.object().empty()) object = e.object();
  std::string detail = e.detail().empty() ? more : e.detail() + "; " + more;
  return {e.code(), e.operation(), std::move(object), std::move(detail)};
}

CLI::Validator seconds_check() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        double value = std::strtod(text.c_str(), &end);
        // !(value >= 0) also refuses NaN, which would otherwise slip through as "no limit".
        if (text.empty() || *end != '\0' || !(value >= 0))
          return "expected a number of seconds >= 0, got \"" + text + "\"";
        return {};
      },
      "SECONDS");
}

ipcx::deadline deadline_after(std::optional<double> seconds) {
  // Beyond ~30 years the steady clock's time_point would overflow; nobody waits that long.
  if (!seconds || *seconds > 1e9) return ipcx::deadline::never();
  return ipcx::deadline(std::chrono::duration<double>(*seconds));
}

std::string timeout_text(double seconds) {
  char text[64];
  std::snprintf(text, sizeof text, "--timeout %g s", seconds);
  return text;
}

}  // namespace ipcx::cli

int main(int argc, char** argv) {
  // With stdin, stdout or stderr closed (`ipcx recv ... >&-`), the next descriptor opened, a
  // socket or a queue, would take its number and receive what was meant for the terminal.
  for (int fd = 0; fd <= 2; ++fd)
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF &&
        ::open("/dev/null", O_RDWR | O_CLOEXEC) != fd)
      return ipcx::cli::exit_failure;
  // A closed stdout or peer is an EPIPE error reported like any other, whatever the mechanism:
  // the library already ignores SIGPIPE for pipes and sockets, but not for queues, so `ipcx recv
  // mq:/q | head -1` would otherwise die silently with a message taken from the queue and lost.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"ipcx: send, receive and benchmark messages over every Linux IPC mechanism"};
  app.require_subcommand(1);
  app.footer(
      "Addresses: pipe: fifo:/path file:/path signal:PID|self mq:/name sysv-mq:KEY\n"
      "           unix:/path unix:@name unix-dgram:/path unix-seqpacket:/path\n"
      "           tcp://HOST:PORT udp://HOST:PORT\n"
      "Exit codes: 0 success, 1 the operation failed, 2 bad usage or malformed address,\n"
      "            3 timed out\n"
      "Errors are one line on stderr: ipcx: operation(\"object\"): cause.");
  try {
    ipcx::cli::add_send(app);
    ipcx::cli::add_recv(app);
    ipcx::cli::add_rm(app);
    ipcx::cli::add_bench(app);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and the subcommands' own failures (RuntimeError, already reported) exit with their
    // code. Usage errors exit 2 rather than CLI11's 10x codes, reported as one line like every
    // other ipcx error instead of CLI11's two.
    if (e.get_name() == "RuntimeError" || e.get_exit_code() == 0) return app.exit(e);
    // CLI11 takes an unknown command for a missing one; name it instead.
    if (e.get_name() == "RequiredError" && app.get_subcommands().empty() && argc > 1 &&
        argv[1][0] != '-') {
      std::fprintf(stderr, "ipcx: unknown command \"%s\"; expected send, recv, rm or bench\n",
                   argv[1]);
      return ipcx::cli::exit_usage;
    }
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');  // one line, whatever CLI11 wrote
    std::fprintf(stderr, "ipcx: %s (ipcx --help for usage)\n", what.c_str());
    return ipcx::cli::exit_usage;
  } catch (const std::exception& e) {
    // Only allocation failures and the like can get here: the library itself throws nothing.
    std::fprintf(stderr, "ipcx: %s\n", e.what());
    return ipcx::cli::exit_failure;
  }
  return 0;
}
