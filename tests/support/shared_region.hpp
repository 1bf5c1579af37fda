// A memfd mapping two test processes share: the parent creates it, a helper that inherits the
// descriptor maps it. Test support only: failures abort, since a test cannot go on without it.
#pragma once

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <span>
#include <utility>

namespace ipcx::test {

class shared_region {
 public:
  static shared_region create(std::size_t size) {
    int fd = ::memfd_create("ipcx-test-region", MFD_CLOEXEC);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) != 0) std::abort();
    return shared_region(fd, size);
  }
  static shared_region map(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) std::abort();
    return shared_region(fd, static_cast<std::size_t>(st.st_size));
  }
  shared_region(shared_region&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)),
        data_(std::exchange(other.data_, nullptr)),
        size_(other.size_) {}
  shared_region(const shared_region&) = delete;
  shared_region& operator=(const shared_region&) = delete;
  shared_region& operator=(shared_region&&) = delete;
  ~shared_region() {
    if (data_ != nullptr) ::munmap(data_, size_);
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }
  std::span<std::byte> bytes() const { return {data_, size_}; }

 private:
  shared_region(int fd, std::size_t size) : fd_(fd), size_(size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) std::abort();
    data_ = static_cast<std::byte*>(p);
  }
  int fd_;
  std::byte* data_ = nullptr;
  std::size_t size_;
};

}  // namespace ipcx::test
