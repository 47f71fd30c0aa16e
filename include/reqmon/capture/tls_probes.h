// SPDX-License-Identifier: MIT
#pragma once
/// TLS plaintext probes: finds the OpenSSL that each observed process uses (libssl.so.3 or
/// .1.1 in /proc/PID/maps, or an executable that exports SSL_read and friends, like Node.js) and
/// attaches bpf/tls.bpf.c's uprobes for that process alone, through the path the process sees
/// (/proc/PID/root/...), so servers in containers work too. A uprobe on a library file would
/// otherwise trap in every process that maps it. Each probe goes where a hit costs least
/// (PlanOpenSslProbes, probe_site.h): about 1 us here instead of about 10.
///
/// A process whose TLS reqmon cannot hook (Go's crypto/tls, GnuTLS, NSS, a static TLS library
/// without exported symbols) is reported with the reason, once its ciphertext is seen or, when
/// its executable or libraries make it plain, as soon as it is observed.
///
/// Not thread-safe: one thread calls Sync(); Coverage() copies under a lock.

#include <sys/types.h>

#include <cstdint>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

struct bpf_program;
struct bpf_link;

namespace reqmon {

/// The uprobe programs of one loaded build (bpf/tls.bpf.c).
struct TlsPrograms {
  bpf_program* read_enter = nullptr;
  bpf_program* read_ex_enter = nullptr;
  bpf_program* read_exit = nullptr;
  bpf_program* read_ex_exit = nullptr;
  bpf_program* write_enter = nullptr;
  bpf_program* write_ex_enter = nullptr;
  bpf_program* free_enter = nullptr;
  /// The same probes as two uprobe_multi programs (entries, returns), dispatched by cookie
  /// (enum rq_tls_probe); null where the kernel has no usable uprobe_multi links
  /// (uprobe_multi.h). Used first where present: a link per process and file for all its entry
  /// probes and one for its return probes, instead of one per probe.
  bpf_program* multi_enter = nullptr;
  bpf_program* multi_exit = nullptr;
};

/// Where OpenSSL's entry points are in one ELF file: file offsets, 0 when absent, and the
/// functions' sizes in bytes (0 when the symbol does not say).
struct OpenSslSymbols {
  uint64_t ssl_read = 0, ssl_read_ex = 0, ssl_write = 0, ssl_write_ex = 0, ssl_free = 0;
  uint64_t ssl_read_size = 0, ssl_write_size = 0;
  bool any() const { return ssl_read || ssl_write; }
};

/// Where the uprobes go in one file: file offsets, 0 for a probe not attached. A probe goes on
/// an instruction the kernel emulates when one sees the same arguments (probe_site.h), which
/// makes a hit about ten times cheaper here. OpenSSL 1.1.1 to 3.x build SSL_read_ex as a
/// pass-through wrapper of an internal function that SSL_read calls too, with SSL_read_ex's
/// arguments; when the file shows exactly that (and the internal function starts with an
/// emulated instruction, as it does in Debian's libssl3), `read_ex` is that function and `read`
/// is 0: one probe sees both calls. The same for SSL_write_ex and SSL_write.
struct OpenSslProbePlan {
  uint64_t read = 0, read_ex = 0, write = 0, write_ex = 0, free = 0;
  bool read_inner = false, write_inner = false;
  /// Where each probe is, for /stats: "SSL_read+SSL_read_ex@0x35290(inner)", "SSL_read@0x35430",
  /// ... (file offsets in hex), space-separated.
  std::string Describe() const;
};

/// Plans the probes for the file at `path` whose symbols are `s`.
OpenSslProbePlan PlanOpenSslProbes(const std::string& path, const OpenSslSymbols& s);

/// Reads the defined (not imported) SSL_read/SSL_read_ex/SSL_write/SSL_write_ex/SSL_free of an
/// ELF file.
/// Returns false with *error when the file is not a readable ELF file.
bool FindOpenSslSymbols(const std::string& path, OpenSslSymbols* out, std::string* error);

/// Why a process's TLS is not hooked, judged from its executable and mapped libraries ("" when
/// nothing says it terminates TLS in a way reqmon does not hook).
std::string TlsNotCoveredReason(const std::string& proc_root, pid_t pid);

struct TlsProcess {
  pid_t pid = 0;
  std::string comm;
  bool covered = false;   ///< probes attached
  std::string library;    ///< the file hooked (as the process sees it), when covered
  std::string probes;     ///< where the probes are in it (OpenSslProbePlan::Describe())
  /// How they are attached, when covered: "uprobe_multi" (one link for the entries, one for the
  /// returns) or "uprobe" (a link per probe: kernels before 6.9, the compat build).
  std::string links;
  std::string reason;     ///< why not, when not covered ("" if it shows no sign of TLS)
  bool tls_seen = false;  ///< ciphertext seen on one of its connections
};

class TlsProbes {
 public:
  TlsProbes(const TlsPrograms& programs, std::string proc_root);
  ~TlsProbes();
  TlsProbes(const TlsProbes&) = delete;
  TlsProbes& operator=(const TlsProbes&) = delete;

  /// Attaches in every process of `pids` not attached yet that uses OpenSSL (a process without
  /// it is looked at again on every call: a library loaded later with dlopen is found), and
  /// detaches from processes no longer in `pids`. Prints one line for each process whose TLS
  /// is newly known not to be covered.
  void Sync(const std::vector<pid_t>& pids);
  /// Says that ciphertext was seen on a connection of `pid` (RQ_DATA_TLS_CIPHER); taken into
  /// account by the next Sync(). Never waits for a Sync() in progress. True the first time for
  /// a pid (then a Sync() soon names it if its TLS is not covered).
  bool TlsSeen(pid_t pid);

  /// Processes with probes, and processes whose TLS is not covered (with the reason), as of the
  /// last Sync(). Never waits for a Sync() in progress.
  std::vector<TlsProcess> Processes() const;
  /// Uprobes attached as of the last Sync() (probes, not links: a uprobe_multi link holds
  /// several). Never waits for a Sync() in progress.
  size_t links() const { return links_.load(std::memory_order_relaxed); }

 private:
  /// One link: a libbpf one (a perf-event uprobe) or the fd of a uprobe_multi link.
  struct Link {
    bpf_link* link = nullptr;
    int fd = -1;
    void Destroy();
  };
  /// Moves the uprobe_multi links out of `links`: their fds, to be closed together.
  static std::vector<int> TakeMultiFds(std::vector<Link>& links);
  struct Proc {
    TlsProcess info;
    std::vector<Link> links;
    size_t probes = 0;  ///< uprobes those links hold
    bool reported = false;
  };
  /// Attaches the plan's probes in the file at `path`, for one process: as two uprobe_multi
  /// links, or as a link per probe. False with errno set when the kernel refused one (then none
  /// is left attached).
  bool AttachMulti(pid_t pid, const std::string& path, const OpenSslProbePlan& s, Proc& p);
  bool AttachEach(pid_t pid, const std::string& path, const OpenSslProbePlan& s, Proc& p);
  bool Attach(Proc& p);
  void Detach(Proc& p);
  void Report(Proc& p);
  /// Publishes what Processes() and links() return; with mu_ held.
  void Publish();

  TlsPrograms progs_;
  std::string proc_root_;
  mutable std::mutex mu_;
  std::map<pid_t, Proc> procs_;
  std::set<pid_t> seen_pending_;  ///< TlsSeen() for processes Sync() has not met yet
  std::map<std::string, OpenSslProbePlan> plan_cache_;  ///< by "dev:inode"
  // Sync() holds mu_ while it attaches uprobes, which can take the kernel a while (the first
  // attach after a quiet spell: 8-30 ms here). What the drain thread and the sampler call must
  // not wait for that: they use these.
  std::mutex seen_mu_;
  std::vector<pid_t> seen_queue_;  ///< TlsSeen() since the last Sync()
  std::set<pid_t> seen_once_;      ///< pids TlsSeen() was told about
  mutable std::mutex pub_mu_;
  std::vector<TlsProcess> published_;
  std::atomic<size_t> links_{0};
  // Detached links are destroyed by a thread of their own, when no process is being attached:
  // each destroy waits for the kernel (~90 ms a link per probe, ~40 ms a uprobe_multi link
  // here), and a new process's attach must not wait behind that. A server that replaces its
  // workers as it goes (gunicorn --max-requests) forks the next one while the last one's probes
  // are still going.
  void ReapLoop();
  std::atomic<int64_t> last_attach_ns_{0};  ///< steady clock of the last successful Attach
  std::mutex reap_mu_;
  std::condition_variable reap_cv_;
  std::vector<Link> reap_;
  bool reap_stop_ = false;
  std::thread reaper_;
};

}  // namespace reqmon
