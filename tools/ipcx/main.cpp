// ipcx — every Linux IPC mechanism from the command line.
#include <cstdio>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"ipcx: send, receive and benchmark messages over every Linux IPC mechanism"};
  app.require_subcommand(1);
  app.footer(
      "Addresses: pipe: fifo:/path file:/path signal:PID|self mq:/name sysv-mq:KEY\n"
      "           unix:/path unix:@name unix-dgram:/path unix-seqpacket:/path\n"
      "           tcp://HOST:PORT udp://HOST:PORT\n"
      "Exit codes: 0 success, 1 the operation failed, 2 bad usage or malformed address,\n"
      "            3 timed out");
  ipcx::cli::add_send(app);
  ipcx::cli::add_recv(app);
  ipcx::cli::add_rm(app);
  ipcx::cli::add_bench(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports usage errors with exit code 106 etc.; ours are documented as 2.
    int rc = app.exit(e);
    return rc == 0 ? 0 : (e.get_name() == "RuntimeError" ? rc : ipcx::cli::exit_usage);
  }
  return 0;
}
