#include "ipcx/address.hpp"

#include <gtest/gtest.h>

namespace {

using ipcx::address;
using ipcx::mechanism;

TEST(Address, ParsesEveryForm) {
  struct row {
    const char* text;
    mechanism kind;
  };
  for (auto [text, kind] : {row{"pipe:", mechanism::pipe}, row{"pipe:3,4", mechanism::pipe},
                            row{"fifo:/tmp/f", mechanism::fifo}, row{"file:/tmp/log", mechanism::file},
                            row{"signal:self", mechanism::signal}, row{"signal:42", mechanism::signal},
                            row{"shm:/ring", mechanism::shm}, row{"sysv-shm:77", mechanism::sysv_shm},
                            row{"memfd:/tmp/s", mechanism::memfd}, row{"mq:/orders", mechanism::mq},
                            row{"sysv-mq:0x1234", mechanism::sysv_mq},
                            row{"sysv-mq:/etc/hostname", mechanism::sysv_mq},
                            row{"unix:/tmp/s", mechanism::unix_stream},
                            row{"unix:@name", mechanism::unix_stream},
                            row{"unix-dgram:/tmp/d", mechanism::unix_dgram},
                            row{"unix-seqpacket:/tmp/p", mechanism::unix_seqpacket},
                            row{"tcp://127.0.0.1:5555", mechanism::tcp},
                            row{"tcp://[::1]:80", mechanism::tcp},
                            row{"udp://localhost:9", mechanism::udp}}) {
    auto a = address::parse(text);
    ASSERT_TRUE(a) << text << ": " << a.error().message();
    EXPECT_EQ(a->kind, kind) << text;
    auto again = address::parse(a->to_string());
    ASSERT_TRUE(again) << a->to_string();
    EXPECT_EQ(*again, *a) << text << " -> " << a->to_string();
  }
}

TEST(Address, KeepsTheFieldsOfEachForm) {
  auto tcp = address::parse("tcp://[::1]:8080");
  ASSERT_TRUE(tcp);
  EXPECT_EQ(tcp->host, "::1");
  EXPECT_EQ(tcp->port, 8080);
  auto key = address::parse("sysv-mq:0x10");
  ASSERT_TRUE(key);
  EXPECT_EQ(key->key, 16);
  auto abstract = address::parse("unix:@svc");
  ASSERT_TRUE(abstract);
  EXPECT_TRUE(abstract->abstract);
  EXPECT_EQ(abstract->path, "svc");
  auto pipe = address::parse("pipe:5,6");
  ASSERT_TRUE(pipe);
  EXPECT_EQ(pipe->read_fd, 5);
  EXPECT_EQ(pipe->write_fd, 6);
}

TEST(Address, RejectsMalformedInputQuotingItAndSayingWhatWasExpected) {
  struct row {
    std::string text;
    const char* expected;
  };
  for (const auto& [text, expected] : {
           row{"", "unknown scheme"},
           row{"carrier-pigeon:/x", "unknown scheme"},
           row{"mq:orders", "a name starting with '/'"},
           row{"mq:/a/b", "no '/' after the first character"},
           row{"mq:/", "a name starting with '/'"},
           row{"fifo:relative", "the path must be absolute"},
           row{"fifo:/tmp/../etc/passwd", "\"..\" is not allowed"},
           row{std::string("file:/tmp/a\0b", 13), "NUL"},
           row{"signal:-3", "signal:PID"},
           row{"signal:abc", "signal:PID"},
           row{"sysv-mq:0", "KEY a positive number"},
           row{"sysv-mq:12x", "KEY a positive number"},
           row{"tcp://localhost", "missing :PORT"},
           row{"tcp://:80", "missing HOST"},
           row{"tcp://host:99999", "PORT a number"},
           row{"udp://::1:5", "brackets"},
           row{"unix:@", "unix:@name"},
           row{"unix:/" + std::string(200, 'x'), "longer than"},
           row{"pipe:3", "pipe:READ_FD,WRITE_FD"},
       }) {
    auto a = address::parse(text);
    ASSERT_FALSE(a) << text;
    EXPECT_EQ(a.error(), ipcx::errc::bad_address);
    auto message = a.error().message();
    EXPECT_NE(message.find("parse_address(\""), std::string::npos) << message;
    EXPECT_NE(message.find(expected), std::string::npos) << message;
  }
}

TEST(Error, RendersOperationObjectAndCauseOnOneLine) {
  auto e = ipcx::error::from_errno(EACCES, "mq_open", "/orders");
  EXPECT_EQ(e.message(), "mq_open(\"/orders\"): permission denied");
  ipcx::error t(ipcx::errc::timed_out, "recv", "fifo:/x");
  EXPECT_EQ(t.message(), "recv(\"fifo:/x\"): timed out");
}

}  // namespace
