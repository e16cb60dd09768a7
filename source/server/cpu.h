#pragma once

#include <cstdint>
#include <string>

namespace pounce::server {

// CPUs this process may use: the smaller of its scheduler affinity and its cgroup v2
// CPU quota (cpu.max, rounded up), at least 1. So a container limited to 2 CPUs gets 2.
uint32_t availableCpus();

// The same, from explicit inputs (for tests): the text of /proc/self/cgroup, the cgroup
// filesystem root, and the affinity count.
uint32_t availableCpusFrom(const std::string& proc_self_cgroup, const std::string& cgroup_root,
                           uint32_t affinity_cpus);

} // namespace pounce::server
