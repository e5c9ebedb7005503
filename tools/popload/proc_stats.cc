#include "tools/popload/proc_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <utility>

#include "common/util/check.h"
#include "tools/popload/popload_core.h"

namespace poplar::popload {
namespace {

// A file's text; empty when it cannot be read (a process that exited meanwhile).
std::string ReadText(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct DirClose {
  void operator()(DIR* d) const { closedir(d); }
};

std::string ProcFile(int pid, const char* name) {
  return "/proc/" + std::to_string(pid) + "/" + name;
}

double Seconds(const timeval& user, const timeval& system) {
  return static_cast<double>(user.tv_sec + system.tv_sec) +
         static_cast<double>(user.tv_usec + system.tv_usec) * 1e-6;
}

double Usage(int who) {
  rusage ru{};
  POPLAR_CHECK(getrusage(who, &ru) == 0, "getrusage of self or children cannot fail");
  return Seconds(ru.ru_utime, ru.ru_stime);
}

double TicksToSeconds(uint64_t ticks) {
  return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

double Now() {
  timespec ts{};
  POPLAR_CHECK(clock_gettime(CLOCK_MONOTONIC, &ts) == 0, "CLOCK_MONOTONIC always exists");
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string Fmt(const char* format, double v) {
  char b[64];
  std::snprintf(b, sizeof b, format, v);
  return b;
}

std::vector<int> ProcessTree(const std::vector<int>& roots) {
  std::multimap<int, int> children;
  std::unique_ptr<DIR, DirClose> dir(opendir("/proc"));
  if (dir) {
    while (dirent* e = readdir(dir.get())) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      const int pid = std::atoi(e->d_name);
      if (auto st = ParseProcStat(ReadText(ProcFile(pid, "stat")))) children.emplace(st->ppid, pid);
    }
  }
  std::vector<int> out = roots;
  for (size_t i = 0; i < out.size(); ++i) {
    auto [b, e] = children.equal_range(out[i]);
    for (auto it = b; it != e; ++it) out.push_back(it->second);
  }
  return out;
}

double TreeCpuSeconds(const std::vector<int>& roots) {
  uint64_t ticks = 0;
  for (int pid : ProcessTree(roots)) {
    if (auto st = ParseProcStat(ReadText(ProcFile(pid, "stat")))) {
      ticks += st->self_ticks + st->child_ticks;
    }
  }
  return TicksToSeconds(ticks);
}

TreeMemory MeasureTree(const std::vector<int>& roots) {
  TreeMemory m;
  for (int pid : ProcessTree(roots)) {
    if (auto rss = ParseKbField(ReadText(ProcFile(pid, "status")), "VmRSS")) {
      m.rss_kb += *rss;
      ++m.processes;
    }
    if (auto pss = ParseKbField(ReadText(ProcFile(pid, "smaps_rollup")), "Pss")) m.pss_kb += *pss;
  }
  return m;
}

double SelfCpuSeconds() { return Usage(RUSAGE_SELF); }
double ChildrenCpuSeconds() { return Usage(RUSAGE_CHILDREN); }

double MachineBusySeconds() {
  std::istringstream is(ReadText("/proc/stat"));
  std::string cpu;
  uint64_t v[8] = {};
  is >> cpu;
  for (uint64_t& x : v) is >> x;
  return TicksToSeconds(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);  // user nice system irq
                                                                   // softirq steal
}

void CpuWindow::Start() {
  t0_ = Now();
  self0_ = SelfCpuSeconds();
  server0_ = server_.empty() ? 0 : TreeCpuSeconds(server_);
  machine0_ = MachineBusySeconds();
}

std::string CpuWindow::Report() const {
  const double dt = std::max(1e-9, Now() - t0_);
  std::string s = "client_cpu_pct=" + Fmt("%.1f", 100 * (SelfCpuSeconds() - self0_) / dt);
  s += " server_cpu_pct=" + (server_.empty()
                                 ? std::string("-")
                                 : Fmt("%.1f", 100 * (TreeCpuSeconds(server_) - server0_) / dt));
  s += " machine_busy_pct=" + Fmt("%.1f", 100 * (MachineBusySeconds() - machine0_) / dt);
  return s;
}

}  // namespace poplar::popload
