// The ring's layout and record encoding, and its behaviour within one process: validation of the
// header, records across wrap-around, zero-copy, sizes and misuse. Two-process behaviour (peer
// death, scribbling peers, sleeping) is in tests/process/ring_test.cpp.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "ipcx/ring.hpp"
#include "ring/layout.hpp"

namespace {

namespace L = ipcx::detail::ring_layout;
using namespace std::chrono_literals;
using ipcx::errc;
using ipcx::ring;
using ipcx::ring_options;
using ipcx::ring_producers;
using ipcx::ring_role;

// An anonymous shared mapping: page-aligned like every segment a ring is given.
class region {
 public:
  explicit region(std::size_t size) : size_(size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    data_ = static_cast<std::byte*>(p);
  }
  ~region() { ::munmap(data_, size_); }
  region(const region&) = delete;
  region& operator=(const region&) = delete;
  std::span<std::byte> bytes() { return {data_, size_}; }
  L::header& header() { return *reinterpret_cast<L::header*>(data_); }

 private:
  std::byte* data_;
  std::size_t size_;
};

std::span<const std::byte> bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

std::string text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::string message(std::size_t i, std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t k = 0; k < size; ++k) s[k] = static_cast<char>('a' + (i * 7 + k) % 26);
  return s;
}

bool is_corrupt(const ipcx::error& e) { return e == errc::corrupt_segment; }

// --- layout --------------------------------------------------------------------------------------

TEST(RingLayout, PutsEachSideOnItsOwnCacheLine) {
  EXPECT_EQ(L::header_size % L::cache_line, 0u);
  auto line = [](std::size_t offset) { return offset / L::cache_line; };
  std::size_t fixed = line(offsetof(L::header, magic));
  std::size_t producer = line(offsetof(L::header, head));
  std::size_t consumer = line(offsetof(L::header, tail));
  std::size_t sleeping = line(offsetof(L::header, consumer_waiting));
  EXPECT_EQ(line(offsetof(L::header, cached_tail)), producer);
  EXPECT_EQ(line(offsetof(L::header, cached_head)), consumer);
  EXPECT_EQ(line(offsetof(L::header, data_futex)), sleeping);
  EXPECT_NE(fixed, producer);
  EXPECT_NE(producer, consumer);
  EXPECT_NE(consumer, sleeping);
  EXPECT_NE(fixed, sleeping);
  EXPECT_EQ(sizeof(L::peer_slot), L::cache_line);
  EXPECT_EQ(offsetof(L::header, consumer) % L::cache_line, 0u);
}

TEST(RingLayout, RecordWordsRoundTrip) {
  std::uint64_t w = L::make_word(L::kind::data, 1234, 0xabcdef);
  EXPECT_EQ(L::word_kind(w), L::kind::data);
  EXPECT_EQ(L::word_size(w), 1234u);
  EXPECT_EQ(L::word_stamp(w), 0xabcdefu);
  EXPECT_EQ(L::record_size(0), 8u);
  EXPECT_EQ(L::record_size(1), 16u);
  EXPECT_EQ(L::record_size(8), 16u);
  EXPECT_EQ(L::record_size(64), 72u);
  EXPECT_EQ(L::lap_stamp(4096 * 3 + 8, 12), 3u);
}

TEST(RingLayout, DecodeRejectsEveryKindOfBadWord) {
  constexpr std::uint64_t cap = 1024;
  constexpr unsigned log2 = 10;
  constexpr std::uint64_t pos = 2048 + 512;  // lap 2, offset 512
  auto problem = [&](std::uint64_t word) { return L::decode(word, pos, cap, log2, 256).problem; };
  EXPECT_EQ(problem(L::make_word(L::kind::data, 100, 2)), nullptr);
  EXPECT_EQ(problem(L::make_word(L::kind::skip, 504, 2)), nullptr);  // exactly to the end
  EXPECT_STREQ(problem(0), "record word has an unknown kind");
  EXPECT_STREQ(problem(L::make_word(static_cast<L::kind>(7), 1, 2)),
               "record word has an unknown kind");
  EXPECT_STREQ(problem(L::make_word(L::kind::data, 100, 1)),
               "record word carries another lap's stamp");
  EXPECT_STREQ(problem(L::make_word(L::kind::data, 257, 2)), "record size exceeds max_message");
  EXPECT_STREQ(problem(L::make_word(L::kind::skip, 12, 2)),
               "skip record body is not a multiple of 8 bytes");
  EXPECT_STREQ(problem(L::make_word(L::kind::skip, 512, 2)),
               "record runs past the end of the data area");
  EXPECT_STREQ(problem(L::make_word(L::kind::skip, 0xfffffff8, 2)),
               "record runs past the end of the data area");
  auto v = L::decode(L::make_word(L::kind::data, 100, 2), pos, cap, log2, 256);
  EXPECT_EQ(v.length, 8u + 104u);
}

TEST(RingLayout, GeometryNeedsAPowerOfTwoThatHoldsTwoLargestRecords) {
  EXPECT_EQ(L::check_geometry(1024, 504), nullptr);  // 8 + 504 = 512 = half
  EXPECT_NE(L::check_geometry(1024, 505), nullptr);
  EXPECT_NE(L::check_geometry(1000, 16), nullptr);
  EXPECT_NE(L::check_geometry(128, 16), nullptr);
  EXPECT_NE(L::check_geometry(std::uint64_t{1} << 41, 16), nullptr);
  EXPECT_TRUE(L::indices_valid(8, 16, 1024));
  EXPECT_FALSE(L::indices_valid(16, 8, 1024));
  EXPECT_FALSE(L::indices_valid(0, 1032, 1024));
  EXPECT_FALSE(L::indices_valid(0, 12, 1024));
}

// --- create and attach ---------------------------------------------------------------------------

TEST(Ring, CreateRejectsBadOptionsWithInvalidArgument) {
  region r(64 * 1024);
  auto expect_einval = [](const ipcx::result<ring>& got, const char* detail) {
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error(), std::errc::invalid_argument) << got.error().message();
    EXPECT_NE(got.error().message().find(detail), std::string::npos) << got.error().message();
  };
  expect_einval(ring::create(r.bytes(), {.capacity_bytes = 1000}), "power of two");
  expect_einval(ring::create(r.bytes(), {.capacity_bytes = 1024, .max_message = 600}),
                "half the capacity");
  expect_einval(ring::create(r.bytes(), {.capacity_bytes = 1 << 20}), "needs a region of");
  expect_einval(ring::create(r.bytes().subspan(8), {.capacity_bytes = 1024}), "64-byte aligned");
  expect_einval(ring::create(r.bytes().first(100), {}), "cannot hold a ring");
}

TEST(Ring, CreateWithoutCapacityTakesTheLargestPowerOfTwoThatFits) {
  region r(ring::region_size(16384) + 8192);
  auto rx = ring::create(r.bytes(), {});
  ASSERT_TRUE(rx) << rx.error().message();
  EXPECT_EQ(rx->capacity(), 16384u);
  EXPECT_EQ(rx->max_message(), 4096u);
}

TEST(Ring, AttachRejectsEachScribbledHeaderFieldWithCorruptSegment) {
  struct scribble {
    const char* what;
    void (*apply)(L::header&);
    const char* detail;
  };
  const scribble cases[] = {
      {"magic", [](L::header& h) { h.magic.store(0x1234); }, "magic 0x1234"},
      {"unformatted", [](L::header& h) { h.magic.store(0); }, "not formatted yet"},
      {"version", [](L::header& h) { h.version = 9; }, "version 9"},
      {"header size", [](L::header& h) { h.header_size = 64; }, "header size 64"},
      {"alignment", [](L::header& h) { h.record_align = 16; }, "record alignment 16"},
      {"flags", [](L::header& h) { h.flags = 0x80; }, "unknown flags"},
      {"capacity", [](L::header& h) { h.capacity = 1000; }, "power of two"},
      {"capacity too big", [](L::header& h) { h.capacity = 1 << 20; }, "does not fit"},
      {"max_message", [](L::header& h) { h.max_message = 1 << 20; }, "half the capacity"},
      {"head", [](L::header& h) { h.head.store(4096); }, "head 4096 and tail 0 do not fit"},
      {"tail", [](L::header& h) { h.tail.store(2048); }, "head 0 and tail 2048 do not fit"},
      {"odd head", [](L::header& h) { h.head.store(3); }, "do not fit capacity 1024"},
  };
  for (const auto& c : cases) {
    region r(ring::region_size(1024));
    {
      auto rx = ring::create(r.bytes(), {.capacity_bytes = 1024, .max_message = 256});
      ASSERT_TRUE(rx) << rx.error().message();
    }
    c.apply(r.header());
    auto got = ring::attach(r.bytes(), ring_role::producer);
    ASSERT_FALSE(got) << c.what;
    EXPECT_TRUE(is_corrupt(got.error())) << c.what << ": " << got.error().message();
    EXPECT_NE(got.error().message().find(c.detail), std::string::npos)
        << c.what << ": " << got.error().message();
  }
}

TEST(Ring, AttachToATruncatedRegionFailsWithCorruptSegment) {
  region r(ring::region_size(4096));
  ASSERT_TRUE(ring::create(r.bytes(), {.capacity_bytes = 4096, .max_message = 256}));
  auto got = ring::attach(r.bytes().first(ring::region_size(2048)), ring_role::producer);
  ASSERT_FALSE(got);
  EXPECT_TRUE(is_corrupt(got.error())) << got.error().message();
  auto tiny = ring::attach(r.bytes().first(64), ring_role::producer);
  ASSERT_FALSE(tiny);
  EXPECT_TRUE(is_corrupt(tiny.error())) << tiny.error().message();
}

TEST(Ring, SecondConsumerOrSingleProducerIsRefusedWithBusy) {
  region r(ring::region_size(1024));
  auto rx = ring::create(r.bytes(), {.capacity_bytes = 1024, .max_message = 256});
  ASSERT_TRUE(rx);
  auto second = ring::attach(r.bytes(), ring_role::consumer);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), std::errc::device_or_resource_busy) << second.error().message();
  auto tx = ring::attach(r.bytes(), ring_role::producer);
  ASSERT_TRUE(tx) << tx.error().message();
  auto tx2 = ring::attach(r.bytes(), ring_role::producer);
  ASSERT_FALSE(tx2);
  EXPECT_EQ(tx2.error(), std::errc::device_or_resource_busy) << tx2.error().message();
  // A detached side frees its place.
  { ring gone = std::move(*tx); }
  auto tx3 = ring::attach(r.bytes(), ring_role::producer);
  EXPECT_TRUE(tx3) << tx3.error().message();
}

TEST(Ring, EventfdRingRefusesAnAttachWithoutTheDescriptor) {
  region r(ring::region_size(1024));
  auto rx = ring::create(r.bytes(), {.capacity_bytes = 1024, .max_message = 256, .eventfd = true});
  ASSERT_TRUE(rx) << rx.error().message();
  EXPECT_GE(rx->wait_fd(), 0);
  auto tx = ring::attach(r.bytes(), ring_role::producer);
  ASSERT_FALSE(tx);
  EXPECT_EQ(tx.error(), std::errc::invalid_argument);
  auto tx2 = ring::attach(r.bytes(), ring_role::producer, {.eventfd = rx->event_fd()});
  ASSERT_TRUE(tx2) << tx2.error().message();
  EXPECT_EQ(tx2->wait_fd(), -1);
}

// --- messages in one process ---------------------------------------------------------------------

class RingPair : public ::testing::TestWithParam<ring_producers> {
 protected:
  void open(std::size_t capacity, std::size_t max_message) {
    auto rx = ring::create(r_.bytes(), {.capacity_bytes = capacity,
                                        .max_message = max_message,
                                        .producers = GetParam(),
                                        .spin = 16});
    ASSERT_TRUE(rx) << rx.error().message();
    rx_.emplace(std::move(*rx));
    auto tx = ring::attach(r_.bytes(), ring_role::producer);
    ASSERT_TRUE(tx) << tx.error().message();
    tx_.emplace(std::move(*tx));
  }
  region r_{ring::region_size(1 << 16)};
  std::optional<ring> rx_;
  std::optional<ring> tx_;
};

TEST_P(RingPair, KeepsBoundariesAndOrderAcrossManyWrapArounds) {
  open(1024, 200);
  std::vector<std::byte> buffer(200);
  std::size_t sent = 0, received = 0;
  for (int round = 0; round < 400; ++round) {
    // Fill until full, then drain: every offset of the data area meets a record start or a skip.
    for (;;) {
      auto m = message(sent, (sent * 37) % 201);
      auto ok = tx_->try_send(bytes(m));
      ASSERT_TRUE(ok) << ok.error().message();
      if (!*ok) break;
      ++sent;
    }
    for (;;) {
      auto got = rx_->try_recv(buffer);
      ASSERT_TRUE(got) << got.error().message();
      if (!*got) break;
      auto expected = message(received, (received * 37) % 201);
      ASSERT_EQ(text(std::span(buffer.data(), **got)), expected) << "message " << received;
      ++received;
    }
    ASSERT_EQ(sent, received);
  }
  EXPECT_GT(sent, 3000u);
}

TEST_P(RingPair, CarriesEmptyMessagesAndExactlyMaxMessageButNotMore) {
  open(4096, 1000);
  std::vector<std::byte> buffer(1000);
  ASSERT_TRUE(tx_->send(std::span<const std::byte>(), 1s));
  auto full = message(1, 1000);
  ASSERT_TRUE(tx_->send(bytes(full), 1s));
  auto big = tx_->send(bytes(message(2, 1001)), 1s);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error(), errc::message_too_large) << big.error().message();
  auto n = rx_->recv(buffer, 1s);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 0u);
  n = rx_->recv(buffer, 1s);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(text(std::span(buffer.data(), *n)), full);
}

TEST_P(RingPair, MessageTooLargeForTheBufferStaysForTheNextRecv) {
  open(4096, 1000);
  ASSERT_TRUE(tx_->send(bytes(message(0, 300)), 1s));
  ASSERT_TRUE(tx_->send(bytes(message(1, 10)), 1s));
  std::vector<std::byte> small(299), large(1000);
  auto got = rx_->recv(small, 1s);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), errc::message_too_large);
  EXPECT_NE(got.error().message().find("300 bytes"), std::string::npos) << got.error().message();
  auto again = rx_->try_recv(small);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), errc::message_too_large);
  auto n = rx_->recv(large, 1s);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(text(std::span(large.data(), *n)), message(0, 300));
  n = rx_->recv(small, 1s);
  ASSERT_TRUE(n);
  EXPECT_EQ(text(std::span(small.data(), *n)), message(1, 10));
}

TEST_P(RingPair, ZeroCopyWritesAndReadsInPlaceInsideTheRegion) {
  open(4096, 1000);
  auto inside = [&](const std::byte* p, std::size_t n) {
    auto all = r_.bytes();
    return p >= all.data() + L::header_size && p + n <= all.data() + all.size();
  };
  auto out = tx_->borrow(100, 1s);
  ASSERT_TRUE(out) << out.error().message();
  ASSERT_EQ(out->size(), 100u);
  EXPECT_TRUE(inside(out->data(), out->size()));
  std::memcpy(out->data(), message(5, 100).data(), 100);
  // Nothing is visible before publish.
  auto early = rx_->peek(ipcx::deadline::immediate());
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error(), errc::timed_out);
  auto second = tx_->borrow(10);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), std::errc::invalid_argument);
  ASSERT_TRUE(tx_->publish(40));  // only the first 40 bytes count
  auto in = rx_->peek(1s);
  ASSERT_TRUE(in) << in.error().message();
  EXPECT_TRUE(inside(in->data(), in->size()));
  EXPECT_EQ(text(*in), message(5, 100).substr(0, 40));
  auto same = rx_->peek(1s);  // peek again without release: the same record
  ASSERT_TRUE(same);
  EXPECT_EQ(same->data(), in->data());
  ASSERT_TRUE(rx_->release());
  EXPECT_EQ(rx_->release().error(), std::errc::invalid_argument);
  EXPECT_EQ(tx_->publish().error(), std::errc::invalid_argument);
  // The shrunk reservation (a skip record in multi mode) is passed over.
  ASSERT_TRUE(tx_->send(bytes(message(6, 7)), 1s));
  std::vector<std::byte> buffer(1000);
  auto n = rx_->recv(buffer, 1s);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(text(std::span(buffer.data(), *n)), message(6, 7));
}

TEST_P(RingPair, DeadlinesGiveTimedOutAndTryCallsReportNothing) {
  open(1024, 200);
  std::vector<std::byte> buffer(200);
  auto t0 = std::chrono::steady_clock::now();
  auto got = rx_->recv(buffer, 30ms);
  auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), errc::timed_out);
  EXPECT_GE(waited, 30ms);
  EXPECT_LT(waited, 500ms);
  auto none = rx_->try_recv(buffer);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  auto m = message(0, 200);
  while (*tx_->try_send(bytes(m))) {
  }
  auto full = tx_->send(bytes(m), 20ms);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error(), errc::timed_out);
  auto borrowed = tx_->borrow(200, ipcx::deadline::immediate());
  ASSERT_FALSE(borrowed);
  EXPECT_EQ(borrowed.error(), errc::timed_out);
  ASSERT_TRUE(rx_->recv(buffer, 1s));
  ASSERT_TRUE(rx_->recv(buffer, 1s));  // room for a record, a skip record and the next word
  EXPECT_TRUE(*tx_->try_send(bytes(m)));
}

TEST_P(RingPair, ScribbledIndicesAndRecordsGiveCorruptSegmentDuringOperation) {
  open(1024, 200);
  std::vector<std::byte> buffer(200);
  ASSERT_TRUE(tx_->send(bytes(message(0, 50)), 1s));
  // A record word claiming more than max_message.
  auto& word = *reinterpret_cast<std::uint64_t*>(r_.bytes().data() + L::header_size);
  std::uint64_t saved = word;
  word = L::make_word(L::kind::data, 5000, 0);
  auto got = rx_->recv(buffer, 100ms);
  ASSERT_FALSE(got);
  EXPECT_TRUE(is_corrupt(got.error())) << got.error().message();
  EXPECT_NE(got.error().message().find("max_message"), std::string::npos);
  word = saved;
  ASSERT_TRUE(rx_->recv(buffer, 1s));
  // head thrown far ahead of tail.
  r_.header().head.store(1 << 20);
  r_.header().cached_head.store(0);
  got = rx_->recv(buffer, 100ms);
  ASSERT_FALSE(got);
  EXPECT_TRUE(is_corrupt(got.error())) << got.error().message();
  // tail past head, seen by a producer that needs room.
  r_.header().head.store(64);
  r_.header().tail.store(1 << 20);
  r_.header().cached_tail.store(0);
  auto m = message(0, 200);
  ipcx::result<bool> sent = true;
  for (int i = 0; i < 10 && sent && *sent; ++i) sent = tx_->try_send(bytes(m));
  ASSERT_FALSE(sent);
  EXPECT_TRUE(is_corrupt(sent.error())) << sent.error().message();
  // A capacity changed under an attached side is noticed when it next refreshes an index (after
  // the messages the producer published from its cached tail) or wakes up.
  r_.header().capacity = 2048;
  got = rx_->recv(buffer, 50ms);
  for (int i = 0; i < 20 && got; ++i) got = rx_->recv(buffer, 50ms);
  ASSERT_FALSE(got);
  EXPECT_TRUE(is_corrupt(got.error())) << got.error().message();
  EXPECT_NE(got.error().message().find("capacity changed"), std::string::npos)
      << got.error().message();
}

TEST_P(RingPair, ForgedSkipRecordsCannotLoopTheConsumer) {
  open(1024, 200);
  std::vector<std::byte> buffer(200);
  // Every word of the data area says "skip 0 bytes", and head claims the whole ring is full.
  auto* words = reinterpret_cast<std::uint64_t*>(r_.bytes().data() + L::header_size);
  for (std::size_t i = 0; i < 1024 / 8; ++i) words[i] = L::make_word(L::kind::skip, 0, 0);
  r_.header().head.store(1024);
  auto got = rx_->recv(buffer, 100ms);
  ASSERT_FALSE(got);
  // Single: it walks the 128 skips, reaches head and times out. Multi: the same, or a corrupt word.
  EXPECT_TRUE(got.error() == errc::timed_out || is_corrupt(got.error())) << got.error().message();
}

INSTANTIATE_TEST_SUITE_P(Producers, RingPair,
                         ::testing::Values(ring_producers::single, ring_producers::multi),
                         [](const auto& param_info) {
                           return param_info.param == ring_producers::single ? "Single" : "Multi";
                         });

TEST(Ring, SeveralProducerHandlesInterleaveWithOrderKeptPerProducer) {
  region r(ring::region_size(4096));
  auto rx = ring::create(
      r.bytes(), {.capacity_bytes = 4096, .max_message = 256, .producers = ring_producers::multi});
  ASSERT_TRUE(rx);
  std::vector<ring> producers;
  for (int i = 0; i < 3; ++i) {
    auto tx = ring::attach(r.bytes(), ring_role::producer);
    ASSERT_TRUE(tx) << tx.error().message();
    producers.push_back(std::move(*tx));
  }
  std::vector<std::byte> buffer(256);
  std::uint32_t next[3] = {0, 0, 0};
  std::uint32_t sent[3] = {0, 0, 0};
  for (int step = 0; step < 3000; ++step) {
    std::uint32_t p = static_cast<std::uint32_t>(step * 7 % 3);
    std::uint32_t record[2] = {p, sent[p]};
    auto ok = producers[p].try_send(std::as_bytes(std::span(record)));
    ASSERT_TRUE(ok);
    if (*ok) ++sent[p];
    if (step % 5 == 0 || !*ok) {
      while (true) {
        auto got = rx->try_recv(buffer);
        ASSERT_TRUE(got) << got.error().message();
        if (!*got) break;
        std::uint32_t in[2];
        ASSERT_EQ(**got, sizeof in);
        std::memcpy(in, buffer.data(), sizeof in);
        ASSERT_LT(in[0], 3u);
        EXPECT_EQ(in[1], next[in[0]]++);
      }
    }
  }
  while (true) {
    auto got = rx->try_recv(buffer);
    ASSERT_TRUE(got) << got.error().message();
    if (!*got) break;
    std::uint32_t in[2];
    std::memcpy(in, buffer.data(), sizeof in);
    ASSERT_LT(in[0], 3u);
    EXPECT_EQ(in[1], next[in[0]]++);
  }
  for (int p = 0; p < 3; ++p) EXPECT_EQ(next[p], sent[p]);
  // A 17th producer finds every slot taken.
  std::vector<ring> more;
  for (int i = 3; i < 16; ++i)
    more.push_back(std::move(*ring::attach(r.bytes(), ring_role::producer)));
  auto extra = ring::attach(r.bytes(), ring_role::producer);
  ASSERT_FALSE(extra);
  EXPECT_EQ(extra.error(), std::errc::device_or_resource_busy);
}

TEST(Ring, AbandonedMultiProducerBorrowIsPassedOverAsASkipRecord) {
  region r(ring::region_size(4096));
  auto rx = ring::create(
      r.bytes(), {.capacity_bytes = 4096, .max_message = 256, .producers = ring_producers::multi});
  ASSERT_TRUE(rx);
  auto a = ring::attach(r.bytes(), ring_role::producer);
  auto b = ring::attach(r.bytes(), ring_role::producer);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->borrow(100, 1s));
  ASSERT_TRUE(b->send(bytes(message(1, 20)), 1s));
  std::vector<std::byte> buffer(256);
  auto blocked = rx->try_recv(buffer);  // b's record waits behind a's reservation
  ASSERT_TRUE(blocked);
  EXPECT_FALSE(*blocked);
  { ring gone = std::move(*a); }
  auto n = rx->recv(buffer, 1s);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(text(std::span(buffer.data(), *n)), message(1, 20));
}

// A single producer stores head just after each record's word; one that died in between left
// records past head. The next producer must step over them, not write over them.
TEST(Ring, NewSingleProducerStepsOverRecordsPublishedPastHead) {
  region r(ring::region_size(1024));
  auto rx = ring::create(r.bytes(), {.capacity_bytes = 1024, .max_message = 200});
  ASSERT_TRUE(rx);
  std::vector<std::byte> buffer(200);
  {
    auto tx = ring::attach(r.bytes(), ring_role::producer);
    ASSERT_TRUE(tx);
    ASSERT_TRUE(tx->send(bytes(message(0, 20)), 1s));
    ASSERT_TRUE(tx->send(bytes(message(1, 30)), 1s));
  }
  r.header().head.store(L::record_size(20));  // as if it died before storing head after message 1
  // The consumer even took both, so tail is past head.
  ASSERT_TRUE(rx->recv(buffer, 1s));
  ASSERT_TRUE(rx->recv(buffer, 1s));
  auto tx = ring::attach(r.bytes(), ring_role::producer);
  ASSERT_TRUE(tx) << tx.error().message();
  ASSERT_TRUE(tx->send(bytes(message(2, 40)), 1s));
  auto n = rx->recv(buffer, 1s);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(text(std::span(buffer.data(), *n)), message(2, 40));
}

TEST(Ring, NewSingleProducerStepsOverASkipRecordAndTheWrappedRecordPastHead) {
  region r(ring::region_size(1024));
  auto rx = ring::create(r.bytes(), {.capacity_bytes = 1024, .max_message = 200});
  ASSERT_TRUE(rx);
  std::vector<std::byte> buffer(200);
  std::uint64_t before_wrap = 0;
  {
    auto tx = ring::attach(r.bytes(), ring_role::producer);
    ASSERT_TRUE(tx);
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(tx->send(bytes(message(i, 200)), 1s));  // to 832
    ASSERT_TRUE(rx->recv(buffer, 1s));
    ASSERT_TRUE(rx->recv(buffer, 1s));
    before_wrap = r.header().head.load();
    ASSERT_EQ(before_wrap, 832u);
    ASSERT_TRUE(tx->send(bytes(message(4, 200)), 1s));  // a skip record, then the record at 0
  }
  r.header().head.store(before_wrap);
  auto tx = ring::attach(r.bytes(), ring_role::producer);
  ASSERT_TRUE(tx) << tx.error().message();
  ASSERT_TRUE(tx->send(bytes(message(5, 10)), 1s));
  for (int i : {2, 3, 4, 5}) {
    auto n = rx->recv(buffer, 1s);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(text(std::span(buffer.data(), *n)), message(i, i == 5 ? 10 : 200)) << i;
  }
}

TEST(Ring, WrongRoleCallsFailWithInvalidArgument) {
  region r(ring::region_size(1024));
  auto rx = ring::create(r.bytes(), {.capacity_bytes = 1024, .max_message = 256});
  auto tx = ring::attach(r.bytes(), ring_role::producer);
  ASSERT_TRUE(rx && tx);
  std::vector<std::byte> buffer(16);
  EXPECT_EQ(rx->send(bytes("x")).error(), std::errc::invalid_argument);
  EXPECT_EQ(rx->borrow(1).error(), std::errc::invalid_argument);
  EXPECT_EQ(tx->recv(buffer).error(), std::errc::invalid_argument);
  EXPECT_EQ(tx->peek().error(), std::errc::invalid_argument);
}

}  // namespace
