// SPDX-License-Identifier: MIT
#include "reqmon/capture/tls_probes.h"

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "reqmon/abi.h"
#include "reqmon/capture/probe_site.h"
#include "reqmon/capture/targets.h"
#include "reqmon/capture/uprobe_multi.h"

namespace reqmon {
namespace {

// The files a process maps, as it names them (absolute paths), in map order, without repeats.
std::vector<std::string> MappedFiles(const std::string& proc_root, pid_t pid) {
  std::ifstream in(proc_root + "/" + std::to_string(pid) + "/maps");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    size_t slash = line.find(" /");
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash + 1);
    if (path.size() > 10 && path.compare(path.size() - 10, 10, " (deleted)") == 0) continue;
    if (std::find(out.begin(), out.end(), path) == out.end()) out.push_back(path);
  }
  return out;
}

std::string Basename(const std::string& path) {
  size_t s = path.rfind('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

bool StartsWith(const std::string& s, const char* prefix) {
  return s.compare(0, std::strlen(prefix), prefix) == 0;
}

// The executable of a process, as the process names it.
std::string ExePath(const std::string& proc_root, pid_t pid) {
  char buf[4096];
  std::string link = proc_root + "/" + std::to_string(pid) + "/exe";
  ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string p(buf, static_cast<size_t>(n));
  if (p.size() > 10 && p.compare(p.size() - 10, 10, " (deleted)") == 0) p.resize(p.size() - 10);
  return p;
}

// A path the process sees, opened from reqmon's mount namespace.
std::string InProcessRoot(const std::string& proc_root, pid_t pid, const std::string& path) {
  return proc_root + "/" + std::to_string(pid) + "/root" + path;
}

// Whether an ELF file has a section of this name, or a defined symbol starting with `sym`.
bool ElfHas(const std::string& path, const char* section, const char* sym_prefix) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool found = false;
  elf_version(EV_CURRENT);
  if (Elf* e = elf_begin(fd, ELF_C_READ_MMAP, nullptr)) {
    size_t shstrndx = 0;
    elf_getshdrstrndx(e, &shstrndx);
    for (Elf_Scn* scn = nullptr; !found && (scn = elf_nextscn(e, scn));) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh)) continue;
      const char* name = elf_strptr(e, shstrndx, sh.sh_name);
      if (section && name && std::strcmp(name, section) == 0) found = true;
      if (sym_prefix && (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM)) {
        Elf_Data* d = elf_getdata(scn, nullptr);
        size_t n = d && sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
        for (size_t i = 0; i < n && !found; ++i) {
          GElf_Sym s;
          if (!gelf_getsym(d, static_cast<int>(i), &s) || s.st_shndx == SHN_UNDEF) continue;
          const char* sn = elf_strptr(e, sh.sh_link, s.st_name);
          if (sn && StartsWith(sn, sym_prefix)) found = true;
        }
      }
    }
    elf_end(e);
  }
  close(fd);
  return found;
}

}  // namespace

bool FindOpenSslSymbols(const std::string& path, OpenSslSymbols* out, std::string* error) {
  *out = OpenSslSymbols{};
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = path + ": " + std::strerror(errno);
    return false;
  }
  elf_version(EV_CURRENT);
  Elf* e = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (!e || elf_kind(e) != ELF_K_ELF) {
    if (e) elf_end(e);
    close(fd);
    *error = path + ": not an ELF file";
    return false;
  }
  struct Want {
    const char* name;
    uint64_t* slot;
    uint64_t* size;
  } want[] = {{"SSL_read", &out->ssl_read, &out->ssl_read_size},
              {"SSL_read_ex", &out->ssl_read_ex, nullptr},
              {"SSL_write", &out->ssl_write, &out->ssl_write_size},
              {"SSL_write_ex", &out->ssl_write_ex, nullptr},
              {"SSL_free", &out->ssl_free, nullptr}};
  for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(e, scn));) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
      continue;
    Elf_Data* d = elf_getdata(scn, nullptr);
    size_t n = d && sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
    for (size_t i = 0; i < n; ++i) {
      GElf_Sym s;
      if (!gelf_getsym(d, static_cast<int>(i), &s) || s.st_shndx == SHN_UNDEF ||
          GELF_ST_TYPE(s.st_info) != STT_FUNC || s.st_value == 0)
        continue;
      const char* sn = elf_strptr(e, sh.sh_link, s.st_name);
      if (!sn || sn[0] != 'S') continue;
      for (auto& w : want) {
        // Versioned names in .symtab look like SSL_read@@OPENSSL_3.0.0.
        size_t len = std::strlen(w.name);
        if (std::strncmp(sn, w.name, len) != 0 || (sn[len] != '\0' && sn[len] != '@')) continue;
        if (*w.slot) continue;
        // A uprobe's offset is a file offset: the symbol's address within its section.
        Elf_Scn* sec = elf_getscn(e, s.st_shndx);
        GElf_Shdr ssh;
        if (!sec || !gelf_getshdr(sec, &ssh)) continue;
        *w.slot = s.st_value - ssh.sh_addr + ssh.sh_offset;
        if (w.size) *w.size = s.st_size;
      }
    }
  }
  elf_end(e);
  close(fd);
  return true;
}

OpenSslProbePlan PlanOpenSslProbes(const std::string& path, const OpenSslSymbols& s) {
  namespace ps = probe_site;
  auto code = [&](uint64_t off, size_t n) { return ps::ReadFileBytes(path, off, n); };
  auto cheap = [&](uint64_t off) { return off ? ps::CheapEntry(code(off, 16), off) : 0; };
  // SSL_x_ex a pass-through wrapper of an internal function T that SSL_x calls, T starting with
  // an emulated instruction: T's site, else 0. SSL_x's whole body (its symbol's size) is
  // searched for the call, and nothing past it.
  auto inner = [&](uint64_t plain, uint64_t plain_size, uint64_t ex) -> uint64_t {
    if (!plain || !ex || !plain_size || plain_size > 4096) return 0;
    uint64_t t = ps::PassThroughCallee(code(ex, 16), ex);
    if (!t) return 0;
    const std::vector<uint8_t> tc = code(t, 16);
    uint64_t site = ps::CheapEntry(tc, t);
    if (site - t >= tc.size() || !ps::Emulated(std::span(tc).subspan(site - t))) return 0;
    return ps::CallsDirectly(code(plain, plain_size), plain, t) ? site : 0;
  };
  // One direction (read or write): the inner site for both calls, or each call on its own.
  auto plan = [&](uint64_t plain, uint64_t plain_size, uint64_t ex, uint64_t* plain_site,
                  uint64_t* ex_site, bool* is_inner) {
    if (uint64_t t = inner(plain, plain_size, ex)) {
      *ex_site = t;
      *is_inner = true;
    } else {
      *plain_site = cheap(plain);
      *ex_site = cheap(ex);
    }
  };
  OpenSslProbePlan p;
  plan(s.ssl_read, s.ssl_read_size, s.ssl_read_ex, &p.read, &p.read_ex, &p.read_inner);
  plan(s.ssl_write, s.ssl_write_size, s.ssl_write_ex, &p.write, &p.write_ex, &p.write_inner);
  p.free = cheap(s.ssl_free);
  return p;
}

std::string OpenSslProbePlan::Describe() const {
  std::string out;
  auto add = [&](const char* what, uint64_t off, const char* how) {
    if (!off) return;
    char hex[32];
    std::snprintf(hex, sizeof(hex), "@0x%llx", static_cast<unsigned long long>(off));
    out += (out.empty() ? "" : " ") + std::string(what) + hex + how;
  };
  add("SSL_read", read, "");
  add(read_inner ? "SSL_read+SSL_read_ex" : "SSL_read_ex", read_ex, read_inner ? "(inner)" : "");
  add("SSL_write", write, "");
  add(write_inner ? "SSL_write+SSL_write_ex" : "SSL_write_ex", write_ex,
      write_inner ? "(inner)" : "");
  add("SSL_free", free, "");
  return out;
}

std::string TlsNotCoveredReason(const std::string& proc_root, pid_t pid) {
  for (const auto& f : MappedFiles(proc_root, pid)) {
    std::string b = Basename(f);
    if (StartsWith(b, "libgnutls")) return "uses GnuTLS (" + b + "), which reqmon does not hook";
    if (StartsWith(b, "libnss3") || StartsWith(b, "libssl3.so"))
      return "uses NSS (" + b + "), which reqmon does not hook";
    if (StartsWith(b, "libwolfssl")) return "uses wolfSSL (" + b + "), which reqmon does not hook";
    if (StartsWith(b, "libmbedtls")) return "uses Mbed TLS (" + b + "), which reqmon does not hook";
  }
  std::string exe = ExePath(proc_root, pid);
  if (!exe.empty()) {
    std::string path = InProcessRoot(proc_root, pid, exe);
    if (ElfHas(path, ".go.buildinfo", nullptr) && ElfHas(path, nullptr, "crypto/tls."))
      return "a Go program: its crypto/tls is not hooked";
  }
  return "";
}

TlsProbes::TlsProbes(const TlsPrograms& programs, std::string proc_root)
    : progs_(programs), proc_root_(std::move(proc_root)), reaper_([this] { ReapLoop(); }) {}

TlsProbes::~TlsProbes() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [pid, p] : procs_) Detach(p);
  }
  {
    std::lock_guard<std::mutex> lock(reap_mu_);
    reap_stop_ = true;
  }
  reap_cv_.notify_one();
  reaper_.join();  // after it destroyed every link handed to it
}

void TlsProbes::Link::Destroy() {
  if (link) bpf_link__destroy(link);
  if (fd >= 0) close(fd);
  link = nullptr;
  fd = -1;
}

std::vector<int> TlsProbes::TakeMultiFds(std::vector<Link>& links) {
  std::vector<int> fds;
  std::erase_if(links, [&fds](const Link& l) {
    if (l.link) return false;
    fds.push_back(l.fd);
    return true;
  });
  return fds;
}

void TlsProbes::Detach(Proc& p) {
  if (!p.links.empty()) {
    {
      std::lock_guard<std::mutex> lock(reap_mu_);
      reap_.insert(reap_.end(), p.links.begin(), p.links.end());
    }
    reap_cv_.notify_one();
  }
  p.links.clear();
  p.probes = 0;
  p.info.covered = false;
}

namespace {
int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Closes uprobe_multi links' fds from threads of their own: the kernel's waits for them overlap
// (64 links here: ~1.7 s one after another, ~80 ms from 32 threads).
void CloseTogether(const std::vector<int>& fds) {
  const size_t n = std::min<size_t>(fds.size(), 32);
  if (n <= 1) {
    for (int fd : fds) close(fd);
    return;
  }
  std::vector<std::thread> threads;
  for (size_t t = 0; t < n; ++t)
    threads.emplace_back([&fds, t, n] {
      for (size_t i = t; i < fds.size(); i += n) close(fds[i]);
    });
  for (auto& th : threads) th.join();
}
}  // namespace

void TlsProbes::ReapLoop() {
  // Detaching takes the kernel a while: ~90 ms a perf-event probe here, one at a time (links
  // destroyed from several threads at once took as long in all); ~26-40 ms a uprobe_multi link,
  // but those overlap when closed together. An attach made meanwhile waits for it: a new
  // worker's probes went in 40-80 ms after its fork instead of 10-30. So links wait while
  // processes are being attached (until kReapQuiet has passed without one), unless more than
  // kReapBacklog are waiting; then the uprobe_multi links go all together and the others one at
  // a time.
  constexpr int64_t kReapQuiet = 1'000'000'000;
  constexpr size_t kReapBacklog = 64;
  std::unique_lock<std::mutex> lock(reap_mu_);
  for (;;) {
    reap_cv_.wait(lock, [this] { return reap_stop_ || !reap_.empty(); });
    if (reap_stop_) break;
    int64_t since = SteadyNs() - last_attach_ns_.load(std::memory_order_relaxed);
    if (reap_.size() <= kReapBacklog && since < kReapQuiet) {
      reap_cv_.wait_for(lock, std::chrono::nanoseconds(kReapQuiet - since),
                        [this] { return reap_stop_; });
      continue;
    }
    std::vector<int> fds = TakeMultiFds(reap_);
    if (!fds.empty()) {
      lock.unlock();
      CloseTogether(fds);
      lock.lock();
      continue;
    }
    Link l = reap_.back();
    reap_.pop_back();
    lock.unlock();
    l.Destroy();
    lock.lock();
  }
  std::vector<Link> rest;
  rest.swap(reap_);
  lock.unlock();
  CloseTogether(TakeMultiFds(rest));
  for (Link& l : rest) l.Destroy();
}

bool TlsProbes::AttachMulti(pid_t pid, const std::string& path, const OpenSslProbePlan& s,
                            Proc& p) {
  std::vector<uint64_t> offs, cookies, ret_offs, ret_cookies;
  auto add = [](std::vector<uint64_t>& o, std::vector<uint64_t>& c, uint64_t off, uint64_t what) {
    if (!off) return;
    o.push_back(off);
    c.push_back(what);
  };
  add(offs, cookies, s.read, RQ_TLS_PROBE_READ);
  add(offs, cookies, s.read_ex, RQ_TLS_PROBE_READ_EX);
  add(offs, cookies, s.write, RQ_TLS_PROBE_WRITE);
  add(offs, cookies, s.write_ex, RQ_TLS_PROBE_WRITE_EX);
  add(offs, cookies, s.free, RQ_TLS_PROBE_FREE);
  add(ret_offs, ret_cookies, s.read, RQ_TLS_PROBE_READ);
  add(ret_offs, ret_cookies, s.read_ex, RQ_TLS_PROBE_READ_EX);
  int entries = AttachUprobeMulti(bpf_program__fd(progs_.multi_enter), path, offs, cookies,
                                  /*retprobe=*/false, pid);
  if (entries < 0) {
    errno = -entries;
    return false;
  }
  int returns = AttachUprobeMulti(bpf_program__fd(progs_.multi_exit), path, ret_offs,
                                  ret_cookies, /*retprobe=*/true, pid);
  if (returns < 0) {
    close(entries);
    errno = -returns;
    return false;
  }
  p.links = {Link{nullptr, entries}, Link{nullptr, returns}};
  p.probes = offs.size() + ret_offs.size();
  p.info.links = "uprobe_multi";
  return true;
}

bool TlsProbes::AttachEach(pid_t pid, const std::string& path, const OpenSslProbePlan& s,
                           Proc& p) {
  struct Probe {
    bpf_program* prog;
    bool ret;
    uint64_t off;
  } probes[] = {{progs_.read_enter, false, s.read},
                {progs_.read_exit, true, s.read},
                {progs_.read_ex_enter, false, s.read_ex},
                {progs_.read_ex_exit, true, s.read_ex},
                {progs_.write_enter, false, s.write},
                {progs_.write_ex_enter, false, s.write_ex},
                {progs_.free_enter, false, s.free}};
  std::vector<Link> links;
  for (const auto& pr : probes) {
    if (!pr.off || !pr.prog) continue;
    bpf_link* l = bpf_program__attach_uprobe(pr.prog, pr.ret, pid, path.c_str(), pr.off);
    if (!l) {
      int err = errno;
      for (Link& done : links) done.Destroy();
      errno = err;
      return false;
    }
    links.push_back(Link{l, -1});
  }
  p.probes = links.size();
  p.links = std::move(links);
  p.info.links = "uprobe";
  return true;
}

bool TlsProbes::Attach(Proc& p) {
  const pid_t pid = p.info.pid;
  // Candidates: the OpenSSL libraries it maps, then its executable (OpenSSL linked in).
  std::vector<std::string> files;
  for (const auto& f : MappedFiles(proc_root_, pid)) {
    std::string b = Basename(f);
    if (StartsWith(b, "libssl.so")) files.push_back(f);
  }
  std::string exe = ExePath(proc_root_, pid);
  if (!exe.empty()) files.push_back(exe);
  for (const auto& f : files) {
    std::string path = InProcessRoot(proc_root_, pid, f);
    struct stat st;
    if (stat(path.c_str(), &st) != 0) continue;
    std::string key = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    auto it = plan_cache_.find(key);
    if (it == plan_cache_.end()) {
      OpenSslSymbols syms;
      std::string err;
      FindOpenSslSymbols(path, &syms, &err);
      it = plan_cache_.emplace(key, syms.any() ? PlanOpenSslProbes(path, syms) : OpenSslProbePlan{})
               .first;
    }
    const OpenSslProbePlan& s = it->second;
    if (!s.read && !s.read_ex) continue;
    // Two uprobe_multi links where the kernel has them; a link per probe where it does not, or
    // where it refused them for this file.
    bool ok = (progs_.multi_enter && AttachMulti(pid, path, s, p)) || AttachEach(pid, path, s, p);
    if (!ok) {
      p.info.reason = "attaching uprobes to " + f + " failed: " + std::strerror(errno);
      continue;
    }
    p.info.covered = true;
    p.info.library = f;
    p.info.probes = s.Describe();
    p.info.reason.clear();
    return true;
  }
  return false;
}

void TlsProbes::Report(Proc& p) {
  if (p.reported || p.info.covered) return;
  if (p.info.reason.empty() && !p.info.tls_seen) return;
  std::string why = p.info.reason;
  if (why.empty())
    why = "TLS traffic seen, but no OpenSSL (libssl, or SSL_read/SSL_write exported by its "
          "executable) was found in it";
  p.info.reason = why;
  p.reported = true;
  std::fprintf(stderr, "reqmon: TLS of process %d (%s) is not covered: %s; its HTTPS requests are "
               "not counted (its plain HTTP still is)\n", p.info.pid, p.info.comm.c_str(),
               why.c_str());
}

void TlsProbes::Sync(const std::vector<pid_t>& pids) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<pid_t> seen;
  {
    std::lock_guard<std::mutex> q(seen_mu_);
    seen.swap(seen_queue_);
  }
  for (pid_t pid : seen) {
    auto it = procs_.find(pid);
    if (it == procs_.end()) {
      seen_pending_.insert(pid);
    } else if (!it->second.info.tls_seen) {
      it->second.info.tls_seen = true;
      Report(it->second);
    }
  }
  std::set<pid_t> want(pids.begin(), pids.end());
  for (auto it = procs_.begin(); it != procs_.end();) {
    if (want.count(it->first)) {
      ++it;
      continue;
    }
    Detach(it->second);  // handed to the reaper (ReapLoop): the attach below does not wait
    {
      std::lock_guard<std::mutex> q(seen_mu_);
      seen_once_.erase(it->first);  // the pid may be another process's next
    }
    it = procs_.erase(it);
  }
  for (pid_t pid : want) {
    auto [it, fresh] = procs_.try_emplace(pid);
    Proc& p = it->second;
    if (fresh) {
      p.info.pid = pid;
      p.info.comm = ProcessComm(proc_root_, pid);
      if (seen_pending_.erase(pid)) p.info.tls_seen = true;
    }
    if (p.info.covered) continue;
    if (Attach(p))
      last_attach_ns_.store(SteadyNs(), std::memory_order_relaxed);
    else if (!p.reported && p.info.reason.empty())
      p.info.reason = TlsNotCoveredReason(proc_root_, pid);
    Report(p);
  }
  seen_pending_.clear();
  Publish();
}

void TlsProbes::Publish() {
  std::vector<TlsProcess> out;
  size_t n = 0;
  for (const auto& [pid, p] : procs_) {
    if (p.info.covered || p.reported) out.push_back(p.info);
    n += p.probes;
  }
  {
    std::lock_guard<std::mutex> lock(pub_mu_);
    published_.swap(out);
  }
  links_.store(n, std::memory_order_relaxed);
}

bool TlsProbes::TlsSeen(pid_t pid) {
  std::lock_guard<std::mutex> lock(seen_mu_);
  if (seen_once_.size() >= 65536 || !seen_once_.insert(pid).second) return false;
  seen_queue_.push_back(pid);
  return true;
}

std::vector<TlsProcess> TlsProbes::Processes() const {
  std::lock_guard<std::mutex> lock(pub_mu_);
  return published_;
}

}  // namespace reqmon
