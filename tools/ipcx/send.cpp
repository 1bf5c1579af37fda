// ipcx send ADDRESS [MESSAGE...]: each argument is one message; with none, each line of stdin
// (without its newline) is one.
//
// Reaching the receiver depends on the mechanism:
// - sockets, FIFO, signal: the receiver must be there. join is retried until --timeout while the
//   receiver is merely absent (nobody listening, no FIFO yet, the process not receiving the
//   signal yet), so `ipcx send` may start before `ipcx recv`. Other errors fail at once.
// - mq, sysv-mq, file: opened (joined, or created when missing), so messages can wait there for
//   a reader that comes later.
// - pipe: stdout is the pipe (`ipcx send pipe: a b | ipcx recv pipe:`).
// --timeout also bounds each send, so a receiver that stops reading makes send exit 3 rather than
// hang; it does not bound the whole run, so stdin may stream for as long as it likes.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "ipcx/channel.hpp"

namespace ipcx::cli {
namespace {

struct send_options {
  std::string address;
  std::vector<std::string> messages;
  double timeout = 5;
};

// True when `e` means "the receiver is not there yet" for this mechanism, i.e. worth retrying.
bool receiver_absent(mechanism kind, const error& e) {
  switch (kind) {
    case mechanism::unix_stream:
    case mechanism::unix_seqpacket:
    case mechanism::unix_dgram:
    case mechanism::tcp:
    case mechanism::udp:
      // ENOENT: no socket file yet; ECONNREFUSED: a file, or a port, with nobody listening.
      return e == std::errc::connection_refused || e == std::errc::no_such_file_or_directory;
    case mechanism::fifo:
      // The receiver makes the FIFO; once it exists, send itself waits for the read end.
      return e == std::errc::no_such_file_or_directory;
    case mechanism::signal:
      // ECONNREFUSED: the process exists but does not receive the signal yet (still starting).
      // ESRCH (no such process) fails at once: no process is going to take that pid.
      return e == std::errc::connection_refused;
    default: return false;
  }
}

// Joins the channel at `where`, retrying while the receiver is absent, until `until`.
// `gave_up` is set when the error returned is the last of those retries.
result<channel> reach(const address& where, deadline until, bool& gave_up) {
  switch (where.kind) {
    case mechanism::mq:
    case mechanism::sysv_mq:
    case mechanism::file: return channel::open(where);
    case mechanism::pipe: return channel::join(where);
    default: break;
  }
  for (;;) {
    auto joined = channel::join(where);
    if (joined || !receiver_absent(where.kind, joined.error())) return joined;
    if (until.expired()) {
      gave_up = true;
      return joined;
    }
    // Connection set-up, not the message path: a short sleep between attempts costs nothing.
    deadline::clock::duration pause = std::chrono::milliseconds(5);
    std::this_thread::sleep_for(std::min(pause, until.remaining()));
  }
}

int send_one(channel& ch, const send_options& o, std::string_view message) {
  auto sent = ch.send(message, deadline_after(o.timeout));
  if (!sent) {
    if (sent.error() == errc::timed_out)
      return report(with_detail(sent.error(), "not accepted within " + timeout_text(o.timeout)));
    return report(sent.error());
  }
  return exit_ok;
}

int run_send(const send_options& o) {
  auto where = address::parse(o.address);
  if (!where) return report(where.error());

  bool gave_up = false;
  auto ch = reach(*where, deadline_after(o.timeout), gave_up);
  if (!ch) {
    if (gave_up)
      return report(with_detail(ch.error(), "no receiver within " + timeout_text(o.timeout)),
                    exit_timeout);
    return report(ch.error());
  }

  if (!o.messages.empty()) {
    for (const auto& m : o.messages)
      if (int rc = send_one(*ch, o, m); rc != exit_ok) return rc;
    return exit_ok;
  }
  // Only std::cin reads stdin here, so it need not stay in step with stdio's buffer, and
  // reads whole blocks instead of one character at a time.
  std::ios::sync_with_stdio(false);
  std::string line;
  while (std::getline(std::cin, line))
    if (int rc = send_one(*ch, o, line); rc != exit_ok) return rc;
  // iostreams keep no error code: errno is what the failed read(2) left, when it left one.
  if (std::cin.bad()) return report(error::from_errno(errno != 0 ? errno : EIO, "read", "stdin"));
  return exit_ok;
}

}  // namespace

void add_send(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "send",
      "send each MESSAGE to ADDRESS (each stdin line when none is given); waits up to --timeout "
      "for the receiver of a socket, FIFO or signal, and creates a missing queue or log");
  auto o = std::make_shared<send_options>();
  sub->add_option("ADDRESS", o->address, "where to send")->required();
  sub->add_option("MESSAGE", o->messages,
                  "one message each (put -- before messages that start with '-')");
  sub->add_option("--timeout", o->timeout,
                  "seconds to wait for the receiver, and for each message to be accepted")
      ->check(seconds_check())
      ->capture_default_str();
  sub->callback([o] { finish(run_send(*o)); });
}

}  // namespace ipcx::cli
