#include "periodic_wake.hpp"

#include <pthread.h>

#include <climits>
#include <mutex>
#include <system_error>
#include <thread>

#include "futex.hpp"

namespace ipcx::detail {

class patrol {
 public:
  static patrol& instance() {
    // Never destroyed: the thread may still be waiting on these members while the process exits.
    static patrol* const the = [] {
      auto* p = new patrol;
      ::pthread_atfork([] { instance().mutex_.lock(); }, [] { instance().mutex_.unlock(); },
                       [] { instance().reset_in_child(); });
      return p;
    }();
    return *the;
  }

  // False when there is no patrol thread and none could be started.
  bool add(periodic_wake* entry) {
    std::lock_guard lock(mutex_);
    if (!running_) {
      try {
        std::thread([this] { run(); }).detach();
      } catch (const std::system_error&) {
        return false;
      }
      running_ = true;
      idle_rounds_ = 0;
    }
    entry->generation_ = generation_;
    entry->next_ = first_;
    if (first_ != nullptr) first_->prev_ = entry;
    first_ = entry;
    return true;
  }

  // Whether `entry` is in this process's list: a child's copy of its parent's entry is not.
  bool holds(const periodic_wake* entry) const noexcept {
    return entry->generation_ == generation_;
  }

  void remove(periodic_wake* entry) noexcept {
    std::lock_guard lock(mutex_);
    if (!holds(entry)) return;
    if (entry->prev_ != nullptr) entry->prev_->next_ = entry->next_;
    else first_ = entry->next_;
    if (entry->next_ != nullptr) entry->next_->prev_ = entry->prev_;
  }

 private:
  static constexpr int idle_rounds_before_exit = 8;

  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      lock.unlock();
      std::this_thread::sleep_for(periodic_wake::period);
      lock.lock();
      if (first_ == nullptr) {
        if (++idle_rounds_ >= idle_rounds_before_exit) break;
        continue;
      }
      idle_rounds_ = 0;
      // Under the lock: a registered word is mapped until its guard has removed it.
      for (auto* e = first_; e != nullptr; e = e->next_) futex_wake(*e->word_, INT_MAX);
    }
    running_ = false;
  }

  void reset_in_child() {
    // The child has only the forking thread: no patrol thread and no other thread's sleeps.
    new (&mutex_) std::mutex;
    first_ = nullptr;
    running_ = false;
    ++generation_;
  }

  std::mutex mutex_;
  periodic_wake* first_ = nullptr;
  bool running_ = false;
  int idle_rounds_ = 0;
  // Changed only in a forked child, before it has a second thread.
  std::uint64_t generation_ = 0;
};

// Registered in the body, once every member is initialised: the patrol reads them from then on.
periodic_wake::periodic_wake(std::atomic<std::uint32_t>& word) : word_(&word) {
  active_ = patrol::instance().add(this);
}

bool periodic_wake::active() const noexcept { return active_ && patrol::instance().holds(this); }

periodic_wake::~periodic_wake() {
  if (active_) patrol::instance().remove(this);
}

}  // namespace ipcx::detail
