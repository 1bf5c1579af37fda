// Helper programs and utilities shared by the message-queue tests (POSIX and System V), which
// check the same channel behaviour on two mechanisms. A header, not the support library: a
// helper must be registered in each test binary that re-executes itself as it.
#pragma once

#include <chrono>
#include <cstdio>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "ipcx/channel.hpp"
#include "process.hpp"

namespace ipcx::test::queue {

using namespace std::chrono_literals;

inline std::string text(std::span<const std::byte> buffer, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(buffer.data()), size);
}

inline int report(const char* what, const ipcx::error& e) {
  std::fprintf(stderr, "%s: %s\n", what, e.message().c_str());
  return 1;
}

// The message each end of the echo test sends: size `size`, filled with a letter of the index.
inline std::string message_for(std::size_t index, std::size_t size) {
  return std::string(size, static_cast<char>('a' + index % 26));
}

// Joins args[0] (in) and args[1] (out) and echoes args[2] messages from one to the other.
// args[3], when given, is the max_message to join with (a SysV queue does not record its own).
IPCX_HELPER(echo_between) {
  ipcx::channel_options options{.max_message = args.size() > 3 ? std::stoul(args[3]) : 0};
  auto in = ipcx::channel::join(args[0], options);
  if (!in) return report("join in", in.error());
  auto out = ipcx::channel::join(args[1], options);
  if (!out) return report("join out", out.error());
  ipcx::test::ready();
  std::vector<std::byte> buffer(in->info().max_message);
  for (std::size_t i = 0, n = std::stoul(args[2]); i < n; ++i) {
    auto got = in->recv(buffer, 5s);
    if (!got) return report("recv", got.error());
    if (auto sent = out->send(std::span(buffer.data(), *got), 5s); !sent)
      return report("send", sent.error());
  }
  return 0;
}

// create|join args[1] with max_message args[2] and capacity args[3]; exits 0 only if that fails
// with errno args[4] and a message containing args[5].
IPCX_HELPER(expect_open_error) {
  ipcx::channel_options options{.max_message = std::stoul(args[2]),
                                .capacity = std::stoul(args[3])};
  auto ch = args[0] == "create" ? ipcx::channel::create(args[1], options)
                                : ipcx::channel::join(args[1], options);
  if (ch) {
    std::fprintf(stderr, "%s succeeded\n", args[0].c_str());
    return 1;
  }
  auto message = ch.error().message();
  std::fprintf(stderr, "%s\n", message.c_str());
  bool right_code =
      ch.error().code() == std::error_code(std::stoi(args[4]), std::generic_category());
  return right_code && message.find(args[5]) != std::string::npos ? 0 : 1;
}

// Creates args[0] and sends args[1..] to it, then exits leaving the queue behind.
IPCX_HELPER(create_send_exit) {
  auto ch = ipcx::channel::create(args[0]);
  if (!ch) return report("create", ch.error());
  for (std::size_t i = 1; i < args.size(); ++i)
    if (auto sent = ch->send(args[i], 5s); !sent) return report("send", sent.error());
  return 0;
}

// Joins args[0], says ready and expects to receive args[1..] in order, and then nothing more.
IPCX_HELPER(join_expect) {
  auto ch = ipcx::channel::join(args[0]);
  if (!ch) return report("join", ch.error());
  ipcx::test::ready();
  std::vector<std::byte> buffer(ch->info().max_message);
  for (std::size_t i = 1; i < args.size(); ++i) {
    auto got = ch->recv(buffer, 5s);
    if (!got) return report("recv", got.error());
    if (text(buffer, *got) != args[i]) {
      std::fprintf(stderr, "got \"%s\", expected \"%s\"\n", text(buffer, *got).c_str(),
                   args[i].c_str());
      return 1;
    }
  }
  auto more = ch->try_recv(buffer);
  if (!more) return report("try_recv", more.error());
  if (more->has_value()) {
    std::fprintf(stderr, "an unexpected message of %zu bytes\n", **more);
    return 1;
  }
  return 0;
}

}  // namespace ipcx::test::queue
