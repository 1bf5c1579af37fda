// ipcx recv ADDRESS [-n COUNT] [--timeout SECONDS]: prints each message on its own line.
//
// The channel is opened, and created when missing (a queue, FIFO, log, socket); for connection
// sockets (unix:, unix-seqpacket:, tcp://) recv listens and accepts. Once a sender can reach it,
// recv writes `ready ADDRESS` on stderr, with the concrete address (the port chosen for
// tcp://HOST:0, signal:PID for signal:self). pipe: reads stdin.
//
// When it ends:
// - with -n COUNT: after COUNT messages. Each `ipcx send` is one sender, so senders are taken in
//   turn until then: the next connection is accepted when one ends, and a FIFO is opened again
//   when its writers have all gone. End of stream on a pipe before COUNT is an error.
// - without -n: at the first end of stream (the pipe's or FIFO's writers gone, the first
//   connection closed); queues, logs, datagram sockets and signals never end by themselves.
// - --timeout SECONDS bounds the whole run (default: none): when it passes first, recv exits 3.
// Messages are written as they are, so one that holds a newline spans several lines.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "commands.hpp"
#include "ipcx/channel.hpp"
#include "ipcx/listener.hpp"

namespace ipcx::cli {
namespace {

struct recv_options {
  std::string address;
  std::size_t count = 0;
  bool counted = false;  // -n given
  std::optional<double> timeout;
};

// Larger would only be a transport's claim we cannot honour anyway; its recv then reports
// message_too_large for the rare message above this.
constexpr std::size_t buffer_limit = std::size_t{64} << 20;

class receiver {
 public:
  explicit receiver(const recv_options& o) : o_(o), until_(deadline_after(o.timeout)) {}

  bool counted() const { return o_.counted; }
  bool done() const { return o_.counted && received_ >= o_.count; }
  deadline until() const { return until_; }

  void announce(const address& where) {
    std::fprintf(stderr, "ready %s\n", where.to_string().c_str());
    std::fflush(stderr);
  }

  // Receives from `ch` until done() or its end of stream. Returns nullopt at end of stream,
  // or the exit code when recv must stop (done, timed out, failed).
  std::optional<int> drain(channel& ch) {
    auto wanted = std::min(ch.info().max_message, buffer_limit);
    if (buffer_.size() < wanted) buffer_.resize(wanted);
    while (!done()) {
      auto n = ch.recv(buffer_, until_);
      if (!n) {
        if (n.error() == errc::end_of_stream) return std::nullopt;
        return failed(n.error());
      }
      if (int rc = print({buffer_.data(), *n}); rc != exit_ok) return rc;
    }
    return exit_ok;
  }

  // End of stream with no further sender to wait for.
  int ended() {
    if (!o_.counted) return exit_ok;
    return report(error(errc::end_of_stream, "recv", o_.address, progress()));
  }

  // Reports a failed receive, accept or open: a timeout names --timeout and the progress.
  int failed(const error& e) {
    if (e == errc::timed_out && o_.timeout)
      return report(error(errc::timed_out, "recv", o_.address,
                          progress() + " within " + timeout_text(*o_.timeout)));
    return report(e);
  }

 private:
  std::string progress() const {
    std::string text = std::to_string(received_) + " message" + (received_ == 1 ? "" : "s");
    if (o_.counted)
      text = std::to_string(received_) + " of " + std::to_string(o_.count) + " messages";
    return text + " received";
  }

  int print(std::span<const std::byte> message) {
    // Flushed per message, so a pipeline downstream sees each one as it arrives. main ignores
    // SIGPIPE, so a closed stdout is an EPIPE error here rather than a silent death; it says that
    // the message was taken from the channel, since a queue or log reader will not see it again.
    errno = 0;
    std::fwrite(message.data(), 1, message.size(), stdout);
    std::fputc('\n', stdout);
    if (std::fflush(stdout) != 0 || std::ferror(stdout))
      return report(with_detail(
          error::from_errno(errno != 0 ? errno : EIO, "write", "stdout"),
          "message " + std::to_string(received_ + 1) + " was received but could not be printed"));
    ++received_;
    return exit_ok;
  }

  const recv_options& o_;
  deadline until_;
  std::size_t received_ = 0;
  std::vector<std::byte> buffer_;
};

// unix:, unix-seqpacket:, tcp://: one listener, each sender one connection taken in turn.
int recv_connections(receiver& r, const std::string& text) {
  auto l = listener::open(text);
  if (!l) return report(l.error());
  r.announce(l->address());
  while (!r.done()) {
    auto ch = l->accept(r.until());
    if (!ch) return r.failed(ch.error());
    if (auto rc = r.drain(*ch)) return *rc;
    if (!r.counted()) return exit_ok;  // without -n, the first connection's end ends recv
  }
  return exit_ok;
}

int recv_channel(receiver& r, const address& where, const recv_options& o) {
  // pipe: is stdin, inherited, so only joined; everything else is made when missing.
  auto ch = where.kind == mechanism::pipe ? channel::join(where) : channel::open(where);
  if (!ch) return report(ch.error());
  r.announce(ch->address());
  for (;;) {
    if (auto rc = r.drain(*ch)) return *rc;
    // A FIFO's writers have all gone: with a count to reach, open it again for the next sender.
    if (where.kind != mechanism::fifo || !o.counted) return r.ended();
    auto again = channel::join(where);
    if (!again) return report(again.error());
    // wait_fd() opens the new read end now, before the old one closes: were there no reader at
    // all for a moment, a sender that wrote and left just then would have its messages discarded
    // with the pipe's buffer. A failure here shows again at the next recv, which reports it.
    (void)again->wait_fd();
    *ch = std::move(*again);
  }
}

int run_recv(const recv_options& o) {
  auto where = address::parse(o.address);
  if (!where) return report(where.error());
  receiver r(o);
  switch (where->kind) {
    case mechanism::unix_stream:
    case mechanism::unix_seqpacket:
    case mechanism::tcp: return recv_connections(r, o.address);
    default: return recv_channel(r, *where, o);
  }
}

}  // namespace

void add_recv(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "recv",
      "print each message received at ADDRESS on its own line, creating the channel (or "
      "listening) when needed; `ready ADDRESS` on stderr tells when a sender can reach it");
  // Appended to the footer inherited from `ipcx`: the addresses and the exit codes.
  sub->footer(
      "Ends after COUNT messages with -n (senders taken in turn: the next connection, the FIFO\n"
      "opened again); without -n at the first end of stream (pipe, FIFO, connection socket).\n"
      "pipe: reads stdin; file: reads the log from its start; signal:self is announced as\n"
      "signal:PID, tcp://HOST:0 and udp://HOST:0 with the port chosen.\n\n" +
      sub->get_footer());
  auto o = std::make_shared<recv_options>();
  sub->add_option("ADDRESS", o->address, "where to receive")->required();
  sub->add_option("-n,--count", o->count,
                  "exit after COUNT messages, taking senders in turn (default: until the first "
                  "end of stream)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--timeout", o->timeout,
                  "seconds the whole run may take before exiting 3 (default: no limit)")
      ->check(seconds_check());
  sub->callback([o, sub] {
    o->counted = sub->count("--count") > 0;
    finish(run_recv(*o));
  });
}

}  // namespace ipcx::cli
