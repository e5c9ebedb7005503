// popload's measurements from /proc and getrusage: CPU seconds of popload itself, of the server
// process trees (--server-pid: the PIDs and all their descendants) and of the whole machine,
// and the memory of those trees. The text parsing is pure (popload_core); this file reads.
#ifndef POPLAR_TOOLS_POPLOAD_PROC_STATS_H_
#define POPLAR_TOOLS_POPLOAD_PROC_STATS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace poplar::popload {

// Monotonic seconds.
double Now();
// printf of one double ("%.1f").
std::string Fmt(const char* format, double v);

// The roots and every descendant (from each /proc/PID/stat's parent).
std::vector<int> ProcessTree(const std::vector<int>& roots);
// CPU seconds of the trees (each process's own and its waited-for children's).
double TreeCpuSeconds(const std::vector<int>& roots);

struct TreeMemory {
  uint64_t rss_kb = 0;
  uint64_t pss_kb = 0;
  int processes = 0;
};
TreeMemory MeasureTree(const std::vector<int>& roots);

// CPU seconds of popload itself (RUSAGE_SELF) or of its waited-for children.
double SelfCpuSeconds();
double ChildrenCpuSeconds();
// Busy CPU seconds of the whole machine (all cores) from /proc/stat.
double MachineBusySeconds();

// CPU over a window, in % of one core: "client_cpu_pct=.. server_cpu_pct=.. machine_busy_pct=..".
class CpuWindow {
 public:
  explicit CpuWindow(std::vector<int> server) : server_(std::move(server)) {}
  void Start();
  std::string Report() const;

 private:
  std::vector<int> server_;
  double t0_ = 0, self0_ = 0, server0_ = 0, machine0_ = 0;
};

}  // namespace poplar::popload

#endif  // POPLAR_TOOLS_POPLOAD_PROC_STATS_H_
