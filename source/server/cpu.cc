#include "source/server/cpu.h"

#include <sched.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "source/common/strings.h"

namespace pounce::server {

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return "";
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ceil(quota / period) from a cpu.max file ("max 100000" or "200000 100000"), 0 if none.
uint32_t quotaCpus(const std::string& text) {
  const auto parts = split(trim(text), ' ');
  if (parts.size() != 2 || parts[0] == "max") {
    return 0;
  }
  uint64_t quota, period;
  if (!parseUint(parts[0], quota) || !parseUint(parts[1], period) || period == 0) {
    return 0;
  }
  return static_cast<uint32_t>(std::max<uint64_t>(1, (quota + period - 1) / period));
}

} // namespace

uint32_t availableCpusFrom(const std::string& proc_self_cgroup, const std::string& cgroup_root,
                           uint32_t affinity_cpus) {
  uint32_t cpus = std::max<uint32_t>(1, affinity_cpus);
  // cgroup v2: a line "0::/some/path". Every ancestor's limit applies too.
  for (auto line : split(proc_self_cgroup, '\n')) {
    if (!startsWith(line, "0::")) {
      continue;
    }
    std::string path(trim(line.substr(3)));
    while (true) {
      const uint32_t limit = quotaCpus(readFile(cgroup_root + path + "/cpu.max"));
      if (limit > 0) {
        cpus = std::min(cpus, limit);
      }
      if (path.empty() || path == "/") {
        break;
      }
      const size_t slash = path.rfind('/');
      path = slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
    }
  }
  return cpus;
}

uint32_t availableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  uint32_t affinity = 0;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    affinity = static_cast<uint32_t>(CPU_COUNT(&set));
  } else {
    affinity = static_cast<uint32_t>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  }
  return availableCpusFrom(readFile("/proc/self/cgroup"), "/sys/fs/cgroup", affinity);
}

} // namespace pounce::server
