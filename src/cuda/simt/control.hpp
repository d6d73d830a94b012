// Test controls of the host SIMT runtime, for code that does not include the CUDA shim headers.
#pragma once

#include <cstdint>

namespace dalesim::simt {

// Execution order of a block's threads between two barriers: a race shows as a difference between
// schedules. DALESIM_SIMT_SCHEDULE=forward|reverse|shuffle[:seed] sets it for a whole process.
enum class Schedule { forward, reverse, shuffle };
void set_schedule(Schedule s, std::uint64_t seed = 1);
Schedule schedule();
// OS threads running blocks (DALESIM_SIMT_THREADS; default: the machine's cores, at most 4).
void set_worker_threads(int n);

}  // namespace dalesim::simt
