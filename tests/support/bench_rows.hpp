// Checks shared by the tests that run `ipcx bench --json`.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "json.hpp"

namespace ipcx::test {

// A row's note ("" when it has none): why it is n/a or failed.
inline std::string note_of(const json& r) { return r.has("note") ? r.at("note").string : ""; }

// A row that must have been measured: status ok and its figures present and sane (a latency row
// took samples with 0 < p50 <= p99; a throughput row moved messages).
inline void expect_measured(const json& r, const std::string& name) {
  ASSERT_EQ(r.at("status").string, "ok") << name << ": " << note_of(r);
  if (r.at("kind").string == "latency") {
    EXPECT_GT(r.at("samples").number, 0) << name;
    EXPECT_GT(r.at("rtt_p50_ns").number, 0) << name;
    EXPECT_LE(r.at("rtt_p50_ns").number, r.at("rtt_p99_ns").number) << name;
  } else {
    EXPECT_EQ(r.at("kind").string, "throughput") << name;
    ASSERT_TRUE(r.has("msgs_per_s")) << name;
    EXPECT_GT(r.at("msgs_per_s").number, 0) << name;
  }
}

}  // namespace ipcx::test
