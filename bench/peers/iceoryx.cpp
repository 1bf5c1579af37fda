// iceoryx 2.0 (Eclipse iceoryx, the zero-copy pub/sub middleware) as a peer: the untyped
// publisher/subscriber API, loaned chunks in RouDi's shared-memory pools, in two waiting modes:
// "iceoryx-poll" busy-polls take(), "iceoryx-waitset" sleeps in a WaitSet on DATA_RECEIVED.
//
// iceoryx needs its daemon, RouDi, running for the whole run: start() writes a config whose
// memory pools fit the run's message sizes into a private directory, starts `iox-roudi` as a
// child and waits until it is ready; stop() ends it. RouDi removes its shared memory
// (/dev/shm/iceoryx_mgmt and the segment named after its group), socket and locks on a clean
// exit; only when it was killed or crashed does stop() remove them itself. iceoryx 2.0's RouDi
// can deadlock when a case's process is killed inside publish(); cleanup() then replaces it.
//
// Each process of a case registers its own runtime (initRuntime, once per process: every case
// forks a new pair) named TAG-i / TAG-r, which makes /tmp/NAME (a socket) and /tmp/NAME.lock.
// The case's processes leave by _exit, so the runtime's destructor, which deregisters it and
// removes those files, never runs: the endpoint's destructor does both (see deregister()), and
// cleanup() removes what a killed process left.
//
// Lossless like the ipcx ring: the publisher waits for a full subscriber queue
// (WAIT_FOR_CONSUMER) and the subscriber asks for that (BLOCK_PRODUCER); the queue holds 256
// chunks, iceoryx's compile-time maximum. A message is copied into a loaned chunk and out of the
// received one, as the session's buffers require.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/iceoryx_posh_types.hpp"
#include "iceoryx_posh/internal/runtime/ipc_interface_base.hpp"
#include "iceoryx_posh/internal/runtime/ipc_message.hpp"
#include "iceoryx_posh/mepoo/chunk_header.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "iceoryx_versions.hpp"
#include "peer_case.hpp"
#include "peers.hpp"

namespace ipcx::bench {
namespace {

// RouDi's fixed names (iceoryx_posh_types.hpp, platform_settings.hpp): one RouDi per machine.
constexpr const char roudi_socket[] = "/tmp/roudi";
constexpr const char roudi_lock[] = "/tmp/iox-unique-roudi.lock";
constexpr const char roudi_ready_line[] = "RouDi is ready for clients";
constexpr std::uint64_t roudi_start_limit_ns = 5'000'000'000;
constexpr std::uint64_t roudi_stop_limit_ns = 3'000'000'000;
// RouDi drops a runtime whose keep-alive messages stopped after 1.5 s, checked every 100 ms; the
// bound on waiting for that, should RouDi be slow under load.
constexpr std::uint64_t drop_limit_ns = 5'000'000'000;
// Publishers and subscribers find each other through RouDi's discovery loop (every 100 ms).
constexpr std::uint64_t connect_limit_ns = 5'000'000'000;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

void sleep_ms(long ms) {
  timespec ts{.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1'000'000};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// --- RouDi ------------------------------------------------------------------------------------

struct roudi_process {
  pid_t pid = -1;
  std::string dir;                     // the private directory with the config and the log
  std::vector<std::string> shm_names;  // what RouDi made in /dev/shm, removed if it is killed
  // Both peer entries share this RouDi: the second start() gets the first one's outcome.
  bool started = false;
  std::string failure;
  // Runtimes a case left registered (see deregister()): RouDi must drop them before it stops.
  std::vector<std::string> undropped;
  std::vector<std::size_t> sizes;  // the run's, for a restart
};
roudi_process roudi;

std::set<std::string> list_dir(const char* path) {
  std::set<std::string> names;
  DIR* d = ::opendir(path);
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) names.insert(e->d_name);
  ::closedir(d);
  return names;
}

std::string read_text(const std::string& path) {
  std::string text;
  if (FILE* f = std::fopen(path.c_str(), "re")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
  }
  return text;
}

// The last non-empty line of RouDi's log, without its colour escapes (ESC [ ... letter).
std::string last_log_line(const std::string& path) {
  std::string text = read_text(path);
  std::string clean;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\033') {
      while (i < text.size() && !std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
      continue;
    }
    clean += text[i];
  }
  while (!clean.empty() && (clean.back() == '\n' || clean.back() == ' ')) clean.pop_back();
  auto nl = clean.rfind('\n');
  return nl == std::string::npos ? clean : clean.substr(nl + 1);
}

// Why another RouDi prevents ours, or "". RouDi holds an flock on its lock file while it runs.
std::string other_roudi() {
  int fd = ::open(roudi_lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return "";
    return errno_text(std::string("open(\"") + roudi_lock + "\")") +
           " (another iox-roudi may be running)";
  }
  std::string why;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    why = errno == EWOULDBLOCK
              ? std::string("another iox-roudi is running on this machine (it holds ") +
                    roudi_lock + "): stop it to measure iceoryx"
              : errno_text(std::string("flock(\"") + roudi_lock + "\")");
  }
  ::close(fd);  // drops the lock if we took it
  return why;
}

std::string find_roudi() {
  std::string path_env = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
  std::string_view rest = path_env;
  while (!rest.empty()) {
    auto colon = rest.find(':');
    std::string_view dir = rest.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    if (dir.empty()) continue;
    std::string candidate = std::string(dir) + "/iox-roudi";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  if (::access("/usr/bin/iox-roudi", X_OK) == 0) return "/usr/bin/iox-roudi";
  return "";
}

bool write_file(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int saved = errno;
      ::close(fd);
      errno = saved;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return ::close(fd) == 0;
}

void remove_dir(const std::string& dir) {
  if (dir.empty()) return;
  for (const auto& name : list_dir(dir.c_str()))
    if (name != "." && name != "..") ::unlink((dir + "/" + name).c_str());
  ::rmdir(dir.c_str());
}

// Memory pools for the run: one per message size, each chunk's payload room the size plus a
// margin (RouDi adds the chunk header itself), enough chunks for a full subscriber queue and the
// publisher's loans in both directions of a case, plus chunks not yet reclaimed from a case that
// ended abruptly. RouDi writes every page of its pools at start.
struct pool {
  std::size_t payload;
  std::size_t count;
};
std::vector<pool> roudi_pools(std::span<const std::size_t> sizes) {
  constexpr std::size_t queue = iox::MAX_SUBSCRIBER_QUEUE_CAPACITY;
  constexpr std::size_t loans = iox::MAX_CHUNKS_ALLOCATED_PER_PUBLISHER_SIMULTANEOUSLY;
  constexpr std::size_t count = 2 * (queue + loans) + 64;
  std::set<std::size_t> payloads;
  // The latency sizes too, should the run's throughput sizes not include them.
  for (std::size_t size : {std::size_t{64}, std::size_t{4096}})
    payloads.insert(round_up(size + 64, 64));
  for (std::size_t size : sizes) payloads.insert(round_up(size + 64, 64));
  std::vector<pool> pools;
  for (std::size_t payload : payloads) pools.push_back({payload, count});
  return pools;
}

std::string roudi_config(const std::vector<pool>& pools) {
  std::string text =
      "# ipcx bench: iceoryx pools for this run\n[general]\nversion = 1\n\n[[segment]]\n";
  for (const auto& p : pools)
    text += "\n[[segment.mempool]]\nsize = " + std::to_string(p.payload) +
            "\ncount = " + std::to_string(p.count) + "\n";
  return text;
}

// MemAvailable from /proc/meminfo, in bytes; 0 if unknown.
std::size_t available_memory() {
  std::string text = read_text("/proc/meminfo");
  auto at = text.find("MemAvailable:");
  if (at == std::string::npos) return 0;
  return std::strtoull(text.c_str() + at + 13, nullptr, 10) * 1024;
}

void end_roudi();

// Starts RouDi and waits until it is ready; "" or why not.
std::string launch_roudi(std::span<const std::size_t> sizes) {
  if (std::string why = other_roudi(); !why.empty()) return why;
  std::string program = find_roudi();
  if (program.empty()) return "iox-roudi not found (in PATH or /usr/bin)";
  // Large --sizes would have RouDi fill the machine's memory (592 chunks of 64 MiB are 37 GiB).
  std::vector<pool> pools = roudi_pools(sizes);
  std::size_t pool_bytes = 0;
  for (const auto& p : pools) pool_bytes += (p.payload + 64) * p.count;
  std::size_t available = available_memory();
  if (available != 0 && pool_bytes > available / 2)
    return "iox-roudi's memory pools for these sizes need " + std::to_string(pool_bytes >> 20) +
           " MiB, more than half the available memory (" + std::to_string(available >> 20) +
           " MiB)";

  std::string templ = "/tmp/ipcx-bench-roudi-" + std::to_string(::getpid()) + "-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) return errno_text("mkdtemp(\"" + templ + "\")");
  roudi.dir = templ;  // mkdtemp made it 0700
  std::string config = roudi.dir + "/roudi.toml";
  std::string log = roudi.dir + "/roudi.log";
  if (!write_file(config, roudi_config(pools))) {
    std::string why = errno_text("write(\"" + config + "\")");
    remove_dir(roudi.dir);
    roudi.dir.clear();
    return why;
  }
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) {
    std::string why = errno_text("open(\"" + log + "\")");
    if (log_fd >= 0) ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    remove_dir(roudi.dir);
    roudi.dir.clear();
    return why;
  }

  std::set<std::string> shm_before = list_dir("/dev/shm");
  timespec started{};
  ::clock_gettime(CLOCK_REALTIME, &started);
  // Everything the child needs is made before the fork: between fork and exec only
  // async-signal-safe calls.
  // -l warning: stop() reads the warnings RouDi logs when it drops a runtime. -k 1: a registered
  // process that ignores RouDi's SIGTERM at shutdown gets SIGKILL after 1 s, not 45.
  std::vector<std::string> args = {program, "-c", config, "-l", "warning", "-k", "1"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t parent = ::getpid();
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    std::string why = errno_text("fork");
    ::close(log_fd);
    ::close(null_fd);
    remove_dir(roudi.dir);
    roudi.dir.clear();
    return why;
  }
  if (pid == 0) {
    // Its own process group: a ^C at the terminal reaches the bench, which stops RouDi after
    // the case in progress, not RouDi under the case's feet. Should the bench itself die, RouDi
    // gets SIGTERM and cleans up.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::close_range(3, ~0U, 0);
    ::execv(argv[0], argv.data());
    const char msg[] = "ipcx bench: execv(iox-roudi) failed\n";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  roudi.pid = pid;

  // Ready: the log says so, or its socket is there, made after we started it (a crashed RouDi's
  // socket may linger: RouDi replaces it).
  std::uint64_t until = now_ns() + roudi_start_limit_ns;
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      roudi.pid = -1;
      std::string line = last_log_line(log);
      std::string why =
          "iox-roudi exited: " + (line.empty() ? "status " + std::to_string(status) : line);
      remove_dir(roudi.dir);
      roudi.dir.clear();
      return why;
    }
    struct stat st {};
    bool socket_ready =
        ::lstat(roudi_socket, &st) == 0 && S_ISSOCK(st.st_mode) &&
        (st.st_ctim.tv_sec > started.tv_sec ||
         (st.st_ctim.tv_sec == started.tv_sec && st.st_ctim.tv_nsec >= started.tv_nsec));
    if (socket_ready || read_text(log).find(roudi_ready_line) != std::string::npos) break;
    if (now_ns() >= until) {
      std::string why = "iox-roudi not ready within 5 s: " + last_log_line(log);
      end_roudi();
      return why;
    }
    sleep_ms(10);
  }
  // RouDi's segments: the management one, and the data segment named after its group. Only new
  // ones are RouDi's to remove, should it crash.
  const group* g = ::getgrgid(::getegid());
  for (const auto& name : list_dir("/dev/shm"))
    if (!shm_before.count(name) && (name == "iceoryx_mgmt" || (g != nullptr && name == g->gr_name)))
      roudi.shm_names.push_back(name);
  return "";
}

std::string start_roudi(std::span<const std::size_t> sizes) {
  if (!roudi.started) {
    roudi.started = true;
    roudi.sizes.assign(sizes.begin(), sizes.end());
    roudi.failure = launch_roudi(sizes);
  }
  return roudi.failure;
}

// Waits (up to drop_limit_ns) until RouDi has dropped the runtimes cases left registered (see
// deregister()); RouDi logs each one it drops. False if some are still there: RouDi is stuck.
// Its monitoring is stuck when a publisher's process died holding the port's lock (not a robust
// mutex in iceoryx 2.0; iceoryx issues #325, #1711), as a producer killed while publish() waits
// for a dead subscriber is likely to.
bool wait_for_drops() {
  std::string log = roudi.dir + "/roudi.log";
  for (std::uint64_t until = now_ns() + drop_limit_ns; !roudi.undropped.empty();) {
    std::string text = read_text(log);
    std::erase_if(roudi.undropped, [&](const std::string& name) {
      return text.find("Application " + name + " not responding") != std::string::npos;
    });
    if (roudi.undropped.empty() || now_ns() >= until) break;
    sleep_ms(20);
  }
  return roudi.undropped.empty();
}

// Ends RouDi: SIGTERM, or SIGKILL when it does not stop or is stuck; removes what a RouDi that did
// not exit cleanly left.
void end_roudi() {
  if (roudi.pid > 0) {
    std::string log = roudi.dir + "/roudi.log";
    int status = 0;
    bool gone = false;
    // At shutdown RouDi signals every process still registered and waits for it to go: a dead
    // one aborts RouDi, one left a zombie (a responder whose initiator was killed, under a pid 1
    // that does not reap) holds it until it is killed. So registered runtimes must be dropped
    // first; a stuck RouDi would not stop either.
    if (!wait_for_drops()) {
      std::fprintf(stderr,
                   "ipcx bench: iox-roudi is stuck (it never dropped %s; iceoryx deadlocks when a "
                   "publisher dies holding its port's lock): killed\n",
                   roudi.undropped.front().c_str());
    } else {
      ::kill(roudi.pid, SIGTERM);
      std::uint64_t until = now_ns() + roudi_stop_limit_ns;
      while (!gone && now_ns() < until) {
        pid_t r = ::waitpid(roudi.pid, &status, WNOHANG);
        gone = r == roudi.pid || (r < 0 && errno == ECHILD);
        if (!gone) sleep_ms(10);
      }
      if (!gone)
        std::fprintf(stderr, "ipcx bench: iox-roudi did not stop within 3 s: killed (%s)\n",
                     last_log_line(log).c_str());
      else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        std::fprintf(stderr, "ipcx bench: iox-roudi ended badly: %s\n", last_log_line(log).c_str());
    }
    if (!gone) {
      ::kill(roudi.pid, SIGKILL);
      while (::waitpid(roudi.pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    roudi.pid = -1;
    // A RouDi that was killed or crashed leaves its shared memory, socket and locks; no other
    // RouDi ran (start() checked), so these are ours. A clean exit removed them already.
    if (!gone || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      for (const auto& name : roudi.shm_names) ::unlink(("/dev/shm/" + name).c_str());
      for (const char* path : {roudi_socket, "/tmp/roudi.lock", roudi_lock}) ::unlink(path);
    }
  }
  roudi.shm_names.clear();
  roudi.undropped.clear();
  remove_dir(roudi.dir);
  roudi.dir.clear();
}

void stop_roudi() {
  end_roudi();
  roudi.started = false;
  roudi.failure.clear();
  roudi.sizes.clear();
}

// --- the endpoint -----------------------------------------------------------------------------

iox::capro::IdString_t id(const std::string& s) {
  return iox::capro::IdString_t(iox::cxx::TruncateToCapacity, s.c_str(), s.size());
}

const char* allocation_error_text(iox::popo::AllocationError e) {
  using iox::popo::AllocationError;
  switch (e) {
    case AllocationError::NO_MEMPOOLS_AVAILABLE: return "no memory pools";
    case AllocationError::RUNNING_OUT_OF_CHUNKS:
      return "the memory pool for this size is out of chunks";
    case AllocationError::TOO_MANY_CHUNKS_ALLOCATED_IN_PARALLEL:
      return "too many chunks loaned at once";
    case AllocationError::INVALID_PARAMETER_FOR_USER_PAYLOAD_OR_USER_HEADER:
      return "no memory pool fits this size";
    default: return "allocation failed";
  }
}

// What the runtime's destructor would do, had the process not left by _exit: tell RouDi this
// runtime is gone. RouDi otherwise keeps it registered until its keep-alive times out, and a RouDi
// asked to stop meanwhile sends SIGTERM to the dead pid, fails, and aborts on an assertion,
// leaving its shared memory behind. Once RouDi has acknowledged, the runtime's socket and lock
// file are removed too; cleanup() takes their presence as "not deregistered".
void deregister(const std::string& name) {
  using namespace iox::runtime;
  IpcMessage request;
  request << IpcMessageTypeToString(IpcMessageType::TERMINATION) << name;
  IpcMessage answer;
  if (PoshRuntime::getInstance().sendRequestToRouDi(request, answer) &&
      answer.getNumberOfElements() == 1 &&
      stringToIpcMessageType(answer.getElementAtIndex(0).c_str()) ==
          IpcMessageType::TERMINATION_ACK) {
    ::unlink(("/tmp/" + name).c_str());
    ::unlink(("/tmp/" + name + ".lock").c_str());
  }
}

// One process's side of a case. Latency: the initiator publishes "ping" and subscribes to
// "pong", the responder the other way. Throughput: the initiator only publishes, the responder
// only subscribes.
template <bool WaitSet>
class iceoryx_endpoint : public endpoint_base {
 public:
  iceoryx_endpoint(session& s, bool one_way) {
    const auto& spec = s.spec();
    const bool responder = s.is_responder();
    // iceoryx logs at debug level to stderr by default, into the bench's progress output.
    iox::log::LogManager::GetLogManager().SetDefaultLogLevel(
        iox::log::LogLevel::kWarn, iox::log::LogLevelOutput::kHideLogLevel);
    // Without RouDi, initRuntime waits 60 s and then aborts the process: fail early instead.
    struct stat st {};
    if (::lstat(roudi_socket, &st) != 0 || !S_ISSOCK(st.st_mode)) {
      s.unavailable(impl::raw, row_status::failed,
                    std::string("initRuntime: iox-roudi is not running (no ") + roudi_socket + ")");
      return;
    }
    std::string name = spec.tag + (responder ? "-r" : "-i");
    iox::runtime::PoshRuntime::initRuntime(
        iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str(), name.size()));
    runtime_name_ = name;

    std::string out_event = one_way ? "stream" : responder ? "pong" : "ping";
    std::string in_event = one_way ? "stream" : responder ? "ping" : "pong";
    bool publishes = !one_way || !responder;
    bool subscribes = !one_way || responder;
    if (publishes) {
      iox::popo::PublisherOptions options;
      options.historyCapacity = 0;
      options.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
      out_name_ = "ipcx-bench/" + spec.tag + "/" + out_event;
      publisher_.emplace(
          iox::capro::ServiceDescription(id("ipcx-bench"), id(spec.tag), id(out_event)), options);
    }
    if (subscribes) {
      iox::popo::SubscriberOptions options;
      options.queueCapacity = iox::MAX_SUBSCRIBER_QUEUE_CAPACITY;
      options.historyRequest = 0;
      options.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
      in_name_ = "ipcx-bench/" + spec.tag + "/" + in_event;
      subscriber_.emplace(
          iox::capro::ServiceDescription(id("ipcx-bench"), id(spec.tag), id(in_event)), options);
      if constexpr (WaitSet) {
        waitset_.emplace();
        auto attached =
            waitset_->attachEvent(*subscriber_, iox::popo::SubscriberEvent::DATA_RECEIVED);
        if (attached.has_error()) {
          s.unavailable(impl::raw, row_status::failed,
                        "WaitSet::attachEvent(" + in_name_ + "): error " +
                            std::to_string(static_cast<int>(attached.get_error())));
          return;
        }
      }
    }
    // Discovery runs in RouDi, every 100 ms: wait until both ends see each other, sleeping (a
    // SCHED_FIFO spinner here could starve RouDi on a shared CPU).
    std::uint64_t until = now_ns() + connect_limit_ns;
    for (;;) {
      bool out_ready = !publisher_ || publisher_->hasSubscribers();
      bool in_ready =
          !subscriber_ || subscriber_->getSubscriptionState() == iox::SubscribeState::SUBSCRIBED;
      if (out_ready && in_ready) break;
      if (now_ns() >= until) {
        s.unavailable(impl::raw, row_status::failed,
                      !out_ready ? "hasSubscribers(" + out_name_ + "): no subscriber within 5 s"
                                 : "subscribe(" + in_name_ + "): no publisher within 5 s");
        return;
      }
      sleep_ms(1);
    }
  }
  iceoryx_endpoint(const iceoryx_endpoint&) = delete;
  iceoryx_endpoint& operator=(const iceoryx_endpoint&) = delete;
  ~iceoryx_endpoint() {
    waitset_.reset();
    subscriber_.reset();
    publisher_.reset();
    if (!runtime_name_.empty()) deregister(runtime_name_);
  }

  bool send(const std::byte* data, std::size_t size) {
    auto loaned = publisher_->loan(static_cast<std::uint32_t>(size));
    if (loaned.has_error()) [[unlikely]] {
      error_ = "loan(" + out_name_ + ", " + std::to_string(size) +
               " B): " + allocation_error_text(loaned.get_error());
      return false;
    }
    void* payload = loaned.value();
    std::memcpy(payload, data, size);
    publisher_->publish(payload);  // waits while the subscriber's queue is full
    return true;
  }

  ssize_t recv(std::byte* data, std::size_t size) {
    for (std::uint32_t idle = 1;; ++idle) {
      auto taken = subscriber_->take();
      if (!taken.has_error()) [[likely]] {
        const void* payload = taken.value();
        std::uint32_t got = iox::mepoo::ChunkHeader::fromUserPayload(payload)->userPayloadSize();
        if (got > size) [[unlikely]] {
          subscriber_->release(payload);
          error_ = "take(" + in_name_ + "): a " + std::to_string(got) + " B message for a " +
                   std::to_string(size) + " B buffer";
          return -1;
        }
        std::memcpy(data, payload, got);
        subscriber_->release(payload);
        return static_cast<ssize_t>(got);
      }
      if (taken.get_error() != iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE) [[unlikely]] {
        error_ = "take(" + in_name_ + "): too many chunks held";
        return -1;
      }
      bool check_peer = false;
      if constexpr (WaitSet) {
        // An event fired since the last take() makes this return at once; a stale one makes a
        // spurious wake-up, taken care of by the loop. The time limit only lets us notice a dead
        // publisher (RouDi disconnects its ports once its process stops answering).
        check_peer = waitset_->timedWait(iox::units::Duration::fromSeconds(1)).empty();
      } else {
        cpu_relax();
        check_peer = (idle & 0xfffff) == 0;
      }
      if (check_peer && subscriber_->getSubscriptionState() != iox::SubscribeState::SUBSCRIBED)
          [[unlikely]] {
        error_ = "take(" + in_name_ + "): the publisher is gone";
        return -1;
      }
    }
  }

 private:
  std::string runtime_name_;  // set once registered with RouDi
  std::string out_name_;
  std::string in_name_;
  std::optional<iox::popo::UntypedPublisher> publisher_;
  std::optional<iox::popo::UntypedSubscriber> subscriber_;
  std::optional<iox::popo::WaitSet<1>> waitset_;  // WaitSet mode: DATA_RECEIVED of subscriber_
};

int iceoryx_poll_main(session& s) { return peer_case_main<iceoryx_endpoint<false>>(s); }
int iceoryx_waitset_main(session& s) { return peer_case_main<iceoryx_endpoint<true>>(s); }

// Runs in the orchestrator before and after every case. The runtimes' sockets and lock files,
// /tmp/TAG-i and /tmp/TAG-r (.lock), are left by a runtime that did not deregister (a process
// killed or failed): RouDi still counts it until its keep-alive times out. If RouDi never drops
// it, RouDi is stuck (see wait_for_drops()) and every later case would fail: a new one replaces it.
void iceoryx_cleanup(const case_spec& spec) {
  for (const char* side : {"-i", "-r"}) {
    std::string path = "/tmp/" + spec.tag + side;
    bool left = ::unlink(path.c_str()) == 0;
    left = ::unlink((path + ".lock").c_str()) == 0 || left;
    if (left && roudi.pid > 0) roudi.undropped.push_back(spec.tag + side);
  }
  if (roudi.pid > 0 && !wait_for_drops()) {
    std::vector<std::size_t> sizes = roudi.sizes;
    end_roudi();
    std::fprintf(stderr, "ipcx bench: starting a new iox-roudi\n");
    roudi.failure = launch_roudi(sizes);
    if (!roudi.failure.empty()) std::fprintf(stderr, "ipcx bench: %s\n", roudi.failure.c_str());
  }
}

std::string iceoryx_version() { return ICEORYX_LATEST_RELEASE_VERSION; }

}  // namespace

std::vector<peer_entry> iceoryx_peers() {
  return {
      {.name = "iceoryx-poll",
       .mode = "spin",
       .ipcx_latency_mode = "spin",
       .ipcx_throughput_mode = "spin",
       .body = iceoryx_poll_main,
       .cleanup = iceoryx_cleanup,
       .version = iceoryx_version,
       .start = start_roudi,
       .stop = stop_roudi},
      // One RouDi serves both entries: the second start() returns the first one's outcome, the
      // second stop() finds nothing left to do.
      {.name = "iceoryx-waitset",
       .body = iceoryx_waitset_main,
       .cleanup = iceoryx_cleanup,
       .version = iceoryx_version,
       .start = start_roudi,
       .stop = stop_roudi},
  };
}

}  // namespace ipcx::bench
