// A move-only owner of one shared mapping: an mmap'd region, or a System V attachment (shmat).
//
// Empty means "owns nothing". The destructor unmaps (or detaches) and never fails. A mapping
// knows nothing of what it maps; the segment types check sizes before they map (see
// ipcx/shared_memory.hpp for why that matters: touching a page past the end of the object is
// SIGBUS, not an error).
//
//   auto m = ipcx::detail::mapping::map(fd, size, "shm:/orders");
//   if (!m) return std::unexpected(m.error());
//   std::span<std::byte> bytes = m->bytes();
#pragma once

#include <sys/mman.h>
#include <sys/shm.h>

#include <cstddef>
#include <span>
#include <string>
#include <utility>

#include "core/syscall.hpp"
#include "ipcx/error.hpp"

namespace ipcx::detail {

class mapping {
 public:
  mapping() noexcept = default;
  mapping(mapping&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        attached_(std::exchange(other.attached_, false)) {}
  mapping& operator=(mapping&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      attached_ = std::exchange(other.attached_, false);
    }
    return *this;
  }
  mapping(const mapping&) = delete;
  mapping& operator=(const mapping&) = delete;
  ~mapping() { reset(); }

  // `size` bytes of `fd` from offset 0, shared and read-write. The caller has checked that the
  // object holds at least `size` bytes. EINVAL for size 0.
  [[nodiscard]] static result<mapping> map(int fd, std::size_t size, const std::string& object) {
    void* p = sys([&] { return ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0); });
    if (p == MAP_FAILED) return fail_errno(errno, "mmap", object);
    return mapping(static_cast<std::byte*>(p), size, false);
  }

  // Attaches System V segment `id` read-write; `size` is its shm_segsz, read by the caller.
  [[nodiscard]] static result<mapping> attach(int id, std::size_t size, const std::string& object) {
    void* p = sys([&] { return ::shmat(id, nullptr, 0); });
    if (p == reinterpret_cast<void*>(-1)) return fail_errno(errno, "shmat", object);
    return mapping(static_cast<std::byte*>(p), size, true);
  }

  std::span<std::byte> bytes() const noexcept { return {data_, size_}; }
  std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  explicit operator bool() const noexcept { return data_ != nullptr; }

  void reset() noexcept {
    if (data_ == nullptr) return;
    // munmap/shmdt fail only on an address this class did not get from mmap/shmat: nothing to
    // report from a destructor.
    if (attached_)
      (void)::shmdt(data_);
    else
      (void)::munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
    attached_ = false;
  }

 private:
  mapping(std::byte* data, std::size_t size, bool attached) noexcept
      : data_(data), size_(size), attached_(attached) {}

  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  bool attached_ = false;  // shmat'd: released with shmdt rather than munmap
};

}  // namespace ipcx::detail
