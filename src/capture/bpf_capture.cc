// SPDX-License-Identifier: MIT
#include "reqmon/capture/bpf_capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "reqmon.skel.h"
#include "reqmon_compat.skel.h"
#include "reqmon/abi.h"
#include "reqmon/capture/targets.h"
#include "reqmon/capture/uprobe_multi.h"

namespace reqmon {
namespace {

bool g_verbose = false;
std::string g_last_libbpf_error;
std::string g_verifier_reason;  // the verifier's last word on a program it rejected

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  va_list copy;
  va_copy(copy, args);
  const int n = vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  std::string buf(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  vsnprintf(buf.data(), buf.size() + 1, fmt, args);
  if (level != LIBBPF_DEBUG) {
    if (std::string reason = VerifierReason(buf); !reason.empty()) g_verifier_reason = reason;
    std::string line = buf.substr(buf.rfind('\n', buf.size() > 1 ? buf.size() - 2 : 0) + 1);
    while (!line.empty() && line.back() == '\n') line.pop_back();
    if (!line.empty()) g_last_libbpf_error = line;
  }
  if (g_verbose) fputs(buf.c_str(), stderr);
  return 0;
}

bool HasCapability(int cap) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return data[cap / 32].effective & (1u << (cap % 32));
}

// The compat build attaches to syscall tracepoints, which libbpf finds in tracefs; tracefs may
// simply not be mounted yet (libbpf mounts nothing), so try to. Returns "" or why not.
std::string EnsureSyscallTracepoints() {
  if (access("/sys/kernel/tracing/events/syscalls", F_OK) == 0 ||
      access("/sys/kernel/debug/tracing/events/syscalls", F_OK) == 0)
    return "";
  if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) == 0 &&
      access("/sys/kernel/tracing/events/syscalls", F_OK) == 0)
    return "";
  return "syscall tracepoints are not available (no /sys/kernel/tracing/events/syscalls): "
         "mount tracefs (mount -t tracefs nodev /sys/kernel/tracing) or use a kernel with "
         "CONFIG_FTRACE_SYSCALLS=y";
}

// Whether the running kernel's release is at least major.minor.
bool KernelAtLeast(int major, int minor) {
  utsname u{};
  int ma = 0, mi = 0;
  if (uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

}  // namespace

std::string VerifierReason(const std::string& msg) {
  const size_t begin = msg.find("-- BEGIN PROG LOAD LOG --");
  if (begin == std::string::npos) return {};
  const size_t end = msg.find("-- END PROG LOAD LOG --", begin);
  std::string reason;
  size_t pos = msg.find('\n', begin);
  while (pos != std::string::npos && pos + 1 < end) {
    const size_t next = std::min(msg.find('\n', pos + 1), end);
    std::string line = msg.substr(pos + 1, next - pos - 1);
    const bool statistics = line.rfind("processed ", 0) == 0 ||
                            line.rfind("verification time", 0) == 0 ||
                            line.rfind("stack depth", 0) == 0;
    if (!line.empty() && !statistics) reason = std::move(line);
    pos = next == end ? std::string::npos : next;
  }
  return reason;
}

std::string CheckBpfPrerequisites() {
  bool root = geteuid() == 0;
  if (!root && !(HasCapability(CAP_BPF) && HasCapability(CAP_PERFMON))) {
    return "reqmon needs root, or CAP_BPF and CAP_PERFMON (plus CAP_SYS_RESOURCE on kernels "
           "before 5.11), to load its eBPF programs: run it with sudo";
  }
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return "this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing): reqmon's CO-RE "
           "programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y";
  }
  return "";
}

// The maps the loader uses, whichever build of the programs was loaded.
struct LoadedMaps {
  bpf_map* targets = nullptr;
  bpf_map* target_cgroups = nullptr;
  bpf_map* target_comms = nullptr;
  bpf_map* target_ports = nullptr;
  bpf_map* stats = nullptr;
  bpf_map* events = nullptr;
};

// Settings that reach the programs as read-only globals, and map sizes.
struct LoadSettings {
  uint32_t max_payload;
  bool filter_all, filter_cgroup, filter_comm, filter_port;
  uint32_t self_tgid;
  uint64_t ring_bytes;
  bool queue_time;
  bool h2_frames;
};

// One build of the programs (a bpftool skeleton type): open, configure, load. On success the
// skeleton is kept in *out with its attach and destroy functions.
struct LoadedSkeleton {
  void* skel = nullptr;
  LoadedMaps maps;
  uint64_t* target_bits = nullptr;  // the programs' PID bitmap (mmapped .bss); compat: none
  size_t target_bits_words = 0;
  TlsPrograms tls;
  int (*attach)(void*) = nullptr;
  void (*destroy)(void*) = nullptr;
  const char* name = "";
};

template <typename Skel, Skel* (*Open)(), int (*Load)(Skel*), int (*Attach)(Skel*),
          void (*Destroy)(Skel*)>
int LoadVariant(const char* name, const LoadSettings& st, LoadedSkeleton* out) {
  /* Open: the object is parsed and maps sized before anything reaches the kernel. */
  Skel* skel = Open();
  if (!skel) return -errno ? -errno : -EINVAL;
  /* Settings reach the programs as read-only globals. */
  skel->rodata->max_payload = st.max_payload;
  skel->rodata->filter_all = st.filter_all;
  skel->rodata->filter_cgroup = st.filter_cgroup;
  skel->rodata->filter_comm = st.filter_comm;
  skel->rodata->filter_port = st.filter_port;
  skel->rodata->self_tgid = st.self_tgid;
  skel->rodata->h2_frames = st.h2_frames;
  // Woken once per 256 KiB of records under load (about 600 small requests): a wake-up and the
  // sleep after it cost ~30 us of CPU here, so batches must not be too short (64 KiB: 1.0 us of
  // CPU a request, 128 KiB: 0.83, 256 KiB: 0.74, alternating runs with the same p99), and a batch
  // takes well under a millisecond, so the server never waits long behind reqmon. The 20 ms poll
  // picks up the trickle when it is quiet (and a wake-up missed by two CPUs crossing the mark at
  // once).
  skel->rodata->wakeup_bytes = std::min<uint64_t>(st.ring_bytes / 4, 256 << 10);
  bpf_map__set_max_entries(skel->maps.events, st.ring_bytes);
  /* Queue time (default build only): off, its programs are not even attached. */
  if constexpr (requires { skel->progs.queue_data_ready; }) {
    skel->rodata->queue_time = st.queue_time;
    if (!st.queue_time) {
      bpf_program__set_autoattach(skel->progs.queue_data_ready, false);
      bpf_program__set_autoattach(skel->progs.queue_set_state, false);
    }
  }
  int ncpu = libbpf_num_possible_cpus();
  bpf_map__set_max_entries(skel->maps.scratch, ncpu > 0 ? ncpu : 1);
  /* The TLS uprobes are attached per process by TlsProbes, never by the skeleton. */
  const TlsPrograms tls = {skel->progs.ssl_read_enter,   skel->progs.ssl_read_ex_enter,
                           skel->progs.ssl_read_exit,    skel->progs.ssl_read_ex_exit,
                           skel->progs.ssl_write_enter,  skel->progs.ssl_write_ex_enter,
                           skel->progs.ssl_free_enter};
  for (bpf_program* p : {tls.read_enter, tls.read_ex_enter, tls.read_exit, tls.read_ex_exit,
                         tls.write_enter, tls.write_ex_enter, tls.free_enter})
    bpf_program__set_autoattach(p, false);
  /* The same as uprobe_multi programs (default build), loaded only where the kernel can attach
   * them; the per-probe programs stay as the fallback. */
  bpf_program* multi[2] = {nullptr, nullptr};
  if constexpr (requires { skel->progs.tls_multi_enter; }) {
    const bool usable = UprobeMultiUsable();
    for (bpf_program* p : {skel->progs.tls_multi_enter, skel->progs.tls_multi_exit}) {
      bpf_program__set_autoattach(p, false);
      bpf_program__set_autoload(p, usable);
      if (usable)
        bpf_program__set_expected_attach_type(p,
                                              static_cast<bpf_attach_type>(kBpfTraceUprobeMulti));
    }
    if (usable) multi[0] = skel->progs.tls_multi_enter, multi[1] = skel->progs.tls_multi_exit;
  }
  /* Load: the verifier checks every program. */
  if (int err = Load(skel); err) {
    Destroy(skel);
    return err;
  }
  out->skel = skel;
  out->tls = tls;
  out->tls.multi_enter = multi[0];
  out->tls.multi_exit = multi[1];
  if constexpr (requires { skel->bss->target_bits; }) {
    out->target_bits = reinterpret_cast<uint64_t*>(skel->bss->target_bits);
    out->target_bits_words = sizeof(skel->bss->target_bits) / sizeof(uint64_t);
  }
  out->maps = {skel->maps.targets, skel->maps.target_cgroups, skel->maps.target_comms,
               skel->maps.target_ports, skel->maps.stats, skel->maps.events};
  out->attach = [](void* s) { return Attach(static_cast<Skel*>(s)); };
  out->destroy = [](void* s) { Destroy(static_cast<Skel*>(s)); };
  out->name = name;
  return 0;
}

struct BpfCapture::Impl {
  LoadedSkeleton loaded;
  LoadedMaps& maps = loaded.maps;
  ring_buffer* rb = nullptr;
  RecordCallback cb = nullptr;
  void* ctx = nullptr;
  int handled = 0;
  BatchCallback batch_cb = nullptr;
  bool in_batch = false;
  uint32_t batch_records = 0;

  void EndBatch() {
    if (!in_batch) return;
    in_batch = false;
    batch_cb(ctx, false);
  }
  std::set<pid_t> static_pids;  // --pid trees resolved at start
  BpfCapture* owner = nullptr;

  // TLS probes are attached off the drain thread: at once for a fork or exec record, and every
  // second for the rest (a library loaded later with dlopen, targets refreshed by name or port).
  std::unique_ptr<TlsProbes> tls;
  std::thread tls_thread;
  std::mutex tls_mu;
  std::condition_variable tls_cv;
  bool tls_wake = false;
  bool tls_stop = false;

  void WakeTls() {
    {
      std::lock_guard<std::mutex> lock(tls_mu);
      tls_wake = true;
    }
    tls_cv.notify_one();
  }
  void TlsLoop() {
    std::unique_lock<std::mutex> lock(tls_mu);
    while (!tls_stop) {
      lock.unlock();
      tls->Sync(owner->TargetPids());
      lock.lock();
      tls_cv.wait_for(lock, std::chrono::seconds(1), [this] { return tls_wake || tls_stop; });
      tls_wake = false;
    }
  }
  void StopTls() {
    if (!tls_thread.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(tls_mu);
      tls_stop = true;
    }
    tls_cv.notify_one();
    tls_thread.join();
  }

  // The target set lives in the "targets" map and, for the default build, also in the
  // programs' PID bitmap; both change together.
  void AddTarget(uint32_t pid) {
    uint8_t one = 1;
    bpf_map__update_elem(maps.targets, &pid, sizeof(pid), &one, 1, BPF_ANY);
    if (loaded.target_bits && pid / 64 < loaded.target_bits_words)
      __atomic_fetch_or(&loaded.target_bits[pid / 64], 1ULL << (pid % 64), __ATOMIC_RELAXED);
  }
  void DelTarget(uint32_t pid) {
    bpf_map__delete_elem(maps.targets, &pid, sizeof(pid), 0);
    if (loaded.target_bits && pid / 64 < loaded.target_bits_words)
      __atomic_fetch_and(&loaded.target_bits[pid / 64], ~(1ULL << (pid % 64)), __ATOMIC_RELAXED);
  }

  // Records the TLS side wants to know about: new processes, and ciphertext seen.
  void Peek(const void* data, size_t len) {
    uint32_t type;
    if (len < sizeof(rq_data_event)) {
      if (len >= sizeof(rq_proc_event)) {
        std::memcpy(&type, data, sizeof(type));
        if (type == RQ_EV_PROC) {
          rq_proc_event ev;
          std::memcpy(&ev, data, sizeof(ev));
          if (ev.kind == RQ_PROC_FORK || ev.kind == RQ_PROC_EXEC) WakeTls();
        }
      }
      return;
    }
    std::memcpy(&type, data, sizeof(type));
    if (type != RQ_EV_DATA) return;
    uint8_t flags;
    std::memcpy(&flags, static_cast<const char*>(data) + offsetof(rq_data_event, flags), 1);
    if (flags & RQ_DATA_TLS_CIPHER) {
      uint32_t pid;
      std::memcpy(&pid, static_cast<const char*>(data) + offsetof(rq_event_header, pid), 4);
      // Named in tls_not_covered at once when no OpenSSL covers it.
      if (tls->TlsSeen(static_cast<pid_t>(pid))) WakeTls();
    }
  }

  static int OnRecord(void* self, void* data, size_t len) {
    auto* impl = static_cast<Impl*>(self);
    if (impl->batch_cb) {
      if (!impl->in_batch) {
        impl->batch_cb(impl->ctx, true);
        impl->in_batch = true;
        impl->batch_records = 0;
      } else if (++impl->batch_records == kBatchRecords) {
        // A pause for the sinks' readers (the API's threads) within a long drain.
        impl->batch_cb(impl->ctx, false);
        impl->batch_cb(impl->ctx, true);
        impl->batch_records = 0;
      }
    }
    if (impl->tls) impl->Peek(data, len);
    impl->cb(impl->ctx, data, len);
    ++impl->handled;
    return 0;
  }

  ~Impl() {
    StopTls();
    tls.reset();  // detaches the uprobes
    if (rb) ring_buffer__free(rb);
    if (loaded.skel) loaded.destroy(loaded.skel);  // detaches every program, closes every map
  }
};

BpfCapture::BpfCapture(const CaptureConfig& config) : config_(config), impl_(new Impl()) {}
BpfCapture::~BpfCapture() = default;

std::unique_ptr<BpfCapture> BpfCapture::Start(const CaptureConfig& config, RecordCallback cb,
                                              void* ctx, std::string* error) {
  g_verbose = config.verbose;
  libbpf_set_print(LibbpfPrint);

  if (std::string why = CheckBpfPrerequisites(); !why.empty()) {
    *error = why;
    return nullptr;
  }
  if (config.payload_bytes < 1 || config.payload_bytes > RQ_MAX_PAYLOAD) {
    *error = "--payload-bytes must be between 1 and " + std::to_string(RQ_MAX_PAYLOAD);
    return nullptr;
  }
  uint32_t rb_mb = config.ring_buffer_mb;
  if (rb_mb < 1 || rb_mb > 1024 || (rb_mb & (rb_mb - 1)) != 0) {
    *error = "--ring-buffer-mb must be a power of two between 1 and 1024";
    return nullptr;
  }
  if (config.comms.size() > RQ_MAX_COMMS) {
    *error = "at most " + std::to_string(RQ_MAX_COMMS) + " --comm names";
    return nullptr;
  }
  if (config.ports.size() > RQ_MAX_COMMS) {
    *error = "at most " + std::to_string(RQ_MAX_COMMS) + " --port numbers";
    return nullptr;
  }

  std::unique_ptr<BpfCapture> cap(new BpfCapture(config));
  Impl& im = *cap->impl_;
  im.cb = cb;
  im.ctx = ctx;

  // Resolve targets before loading anything, so that a bad PID or port fails fast.
  for (pid_t p : config.pids) {
    if (!ProcessExists(config.proc_root, p)) {
      *error = "no process with PID " + std::to_string(p) + " (check it with: ps -p " +
               std::to_string(p) + ")";
      return nullptr;
    }
    for (pid_t q : ProcessTree(config.proc_root, p)) im.static_pids.insert(q);
  }
  for (uint16_t port : config.ports) {
    if (ProcessesListeningOn(config.proc_root, port).empty()) {
      *error = "no process is listening on TCP port " + std::to_string(port) +
               " (check with: ss -ltnp 'sport = :" + std::to_string(port) + "')";
      return nullptr;
    }
  }
  std::vector<uint64_t> cgroup_ids;
  for (const auto& path : config.cgroups) {
    std::string err;
    auto ids = CgroupTreeIds(path, &err);
    if (ids.empty()) {
      *error = "--cgroup " + path + ": " + err;
      return nullptr;
    }
    cgroup_ids.insert(cgroup_ids.end(), ids.begin(), ids.end());
  }

  LoadSettings st{config.payload_bytes, config.all, !cgroup_ids.empty(), !config.comms.empty(),
                  !config.ports.empty(), static_cast<uint32_t>(getpid()),
                  static_cast<uint64_t>(rb_mb) << 20, config.queue_time, config.h2_frames};
  // Loads one build, puts the targets in its maps (before attaching, so that no early event is
  // filtered out) and attaches every program; a build that loads but does not attach is
  // unloaded again.
  bool attach_failed = false;
  auto bring_up = [&](auto load) -> int {
    if (int err = load(); err) return err;
    uint8_t one = 1;
    for (pid_t p : im.static_pids) im.AddTarget(p);
    for (uint64_t id : cgroup_ids)
      bpf_map__update_elem(im.maps.target_cgroups, &id, sizeof(id), &one, 1, BPF_ANY);
    for (const auto& c : config.comms) {
      char key[RQ_COMM_LEN] = {};
      std::strncpy(key, c.c_str(), RQ_COMM_LEN - 1);
      bpf_map__update_elem(im.maps.target_comms, key, sizeof(key), &one, 1, BPF_ANY);
    }
    for (uint16_t port : config.ports)
      bpf_map__update_elem(im.maps.target_ports, &port, sizeof(port), &one, 1, BPF_ANY);
    cap->RefreshTargets();
    attach_failed = false;
    if (int err = im.loaded.attach(im.loaded.skel); err) {
      im.loaded.destroy(im.loaded.skel);
      im.loaded = LoadedSkeleton{};
      attach_failed = true;
      return err;
    }
    // A child forked while the programs loaded, before the fork tracepoint was attached, is in
    // no map yet (a server that starts its workers as reqmon starts: gunicorn's first workers
    // went unseen for their whole life). Every later fork is seen: walk the trees once more.
    for (pid_t p : config.pids)
      for (pid_t q : ProcessTree(config.proc_root, p))
        if (im.static_pids.insert(q).second) im.AddTarget(q);
    return 0;
  };
  // The default build needs kernel 6.5+: BTF-typed reads (6.2), the socket layer's send/receive
  // tracepoints (6.3), and sendfile going through them (6.5). Older kernels get the compat build:
  // syscall tracepoints, CO-RE probe reads and hash maps. A default build that loads but does not
  // attach (a kernel built without those tracepoints) falls back too.
  int err = config.force_compat || !KernelAtLeast(6, 5) ? -ENOTSUP : bring_up([&] {
    return LoadVariant<reqmon_bpf, reqmon_bpf__open, reqmon_bpf__load, reqmon_bpf__attach,
                       reqmon_bpf__destroy>("default", st, &im.loaded);
  });
  // EPERM: BPF is not permitted (no capability, seccomp, lockdown); the compat build would not
  // load either. EACCES: the verifier rejected a program, which the compat build may pass.
  if (err && err != -EPERM) {
    if (err == -EACCES)
      std::fprintf(stderr, "reqmon: the kernel's verifier rejected the default programs (%s); "
                   "using the compat build\n", g_verifier_reason.c_str());
    else if (config.verbose)
      std::fprintf(stderr, "reqmon: default programs did not load or attach (%s); trying the "
                   "compat build\n", strerror(-err));
    g_verifier_reason.clear();
    if (std::string why = EnsureSyscallTracepoints(); !why.empty()) {
      *error = why;
      return nullptr;
    }
    err = bring_up([&] {
      return LoadVariant<reqmon_compat_bpf, reqmon_compat_bpf__open, reqmon_compat_bpf__load,
                         reqmon_compat_bpf__attach, reqmon_compat_bpf__destroy>("compat", st,
                                                                                  &im.loaded);
    });
  }
  if (err) {
    if (err == -EPERM) {
      *error = "the kernel refused to load reqmon's eBPF programs (" + std::string(strerror(-err)) +
               "): BPF is not permitted here (seccomp, lockdown, or missing CAP_BPF/CAP_PERFMON)";
    } else if (err == -EACCES) {
      *error = "the kernel's verifier rejected reqmon's eBPF programs: " +
               (g_verifier_reason.empty() ? g_last_libbpf_error : g_verifier_reason) +
               " (rerun with --verbose for the verifier log)";
    } else if (attach_failed) {
      *error = "cannot attach reqmon's tracepoints: " + std::string(strerror(-err)) + ": " +
               g_last_libbpf_error;
    } else {
      *error = "cannot load reqmon's eBPF programs: " + std::string(strerror(-err)) + ": " +
               g_last_libbpf_error + " (rerun with --verbose for the verifier log)";
    }
    return nullptr;
  }
  im.rb = ring_buffer__new(bpf_map__fd(im.maps.events), &Impl::OnRecord, &im, nullptr);
  if (!im.rb) {
    *error = "cannot open the ring buffer: " + std::string(strerror(errno));
    return nullptr;
  }
  im.owner = cap.get();
  if (config.tls) {
    im.tls = std::make_unique<TlsProbes>(im.loaded.tls, config.proc_root);
    // Attach in the processes observed now before returning, so that their first requests count.
    im.tls->Sync(cap->TargetPids());
    im.tls_thread = std::thread([&im] { im.TlsLoop(); });
  }
  return cap;
}

int BpfCapture::Poll(int timeout_ms) {
  impl_->handled = 0;
  int err = ring_buffer__poll(impl_->rb, timeout_ms);
  if (err >= 0 || err == -EINTR) {
    // Records are mostly submitted without wake-ups: consume whatever is waiting.
    err = ring_buffer__consume(impl_->rb);
  }
  impl_->EndBatch();
  if (err < 0 && err != -EINTR) return err;
  return impl_->handled;
}

void BpfCapture::SetBatchCallback(BatchCallback cb) { impl_->batch_cb = cb; }

void BpfCapture::RefreshTargets() {
  uint8_t one = 1;
  auto add = [&](pid_t p) { impl_->AddTarget(p); };
  for (const auto& c : config_.comms)
    for (pid_t p : ProcessesByComm(config_.proc_root, c))
      for (pid_t q : ProcessTree(config_.proc_root, p)) add(q);
  for (uint16_t port : config_.ports)
    for (pid_t p : ProcessesListeningOn(config_.proc_root, port))
      for (pid_t q : ProcessTree(config_.proc_root, p)) add(q);
  if (!config_.cgroups.empty()) {
    for (const auto& path : config_.cgroups) {
      std::string err;
      for (uint64_t id : CgroupTreeIds(path, &err))
        bpf_map__update_elem(impl_->maps.target_cgroups, &id, sizeof(id), &one, 1, BPF_ANY);
    }
  }
  // Drop PIDs that are gone (an exit the kernel saw removes them too; this catches the rest).
  for (pid_t p : TargetPids()) {
    if (!ProcessExists(config_.proc_root, p)) impl_->DelTarget(p);
  }
}

const char* BpfCapture::variant() const { return impl_->loaded.name; }

std::vector<TlsProcess> BpfCapture::TlsProcesses() const {
  return impl_->tls ? impl_->tls->Processes() : std::vector<TlsProcess>{};
}

size_t BpfCapture::TlsLinks() const { return impl_->tls ? impl_->tls->links() : 0; }

std::vector<pid_t> BpfCapture::TargetPids() const {
  std::vector<pid_t> out;
  int fd = bpf_map__fd(impl_->maps.targets);
  uint32_t key, next;
  uint32_t* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    out.push_back(static_cast<pid_t>(next));
    key = next;
    prev = &key;
  }
  return out;
}

CaptureCounters BpfCapture::Counters() const {
  CaptureCounters c;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return c;
  std::vector<uint64_t> vals(ncpu);
  uint64_t* fields[RQ_STAT_MAX] = {&c.lost,     &c.data,     &c.truncated,        &c.conn,
                                   &c.tls_data, &c.tls_cipher_bytes, &c.tls_unbound,
                                   &c.body_skipped_bytes, &c.h2_lost};
  for (uint32_t i = 0; i < RQ_STAT_MAX; ++i) {
    if (bpf_map__lookup_elem(impl_->maps.stats, &i, sizeof(i), vals.data(),
                             vals.size() * sizeof(uint64_t), 0) != 0)
      continue;
    for (uint64_t v : vals) *fields[i] += v;
  }
  return c;
}

}  // namespace reqmon
