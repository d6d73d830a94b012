// Runs one kernel launch on the host: every CUDA thread a fiber (Boost.Context's fcontext), a
// block's fibers on one OS thread, blocks spread over a small pool of OS threads. Between two
// barriers the fibers run one after another in the order of the schedule (forward, reverse or a
// seeded shuffle), so a race between threads of a block shows as a difference between schedules.
// Barrier and warp-primitive misuse is reported with the kernel, the block and the thread.
#include <sys/mman.h>

#include <boost/context/detail/fcontext.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cuda/simt/scheduler.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define DALESIM_SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DALESIM_SIMT_ASAN 1
#endif
#endif

#ifdef DALESIM_SIMT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
// The runtime's own frames on a fiber stack are never returned from (a fiber jumps out of them),
// so they carry no redzones: a stack handed to the next fiber has no stale poison from them.
#define DALESIM_NO_ASAN __attribute__((no_sanitize_address))
#else
#define DALESIM_NO_ASAN
#endif

namespace bctx = boost::context::detail;

namespace dalesim::simt {

namespace {

#ifdef DALESIM_SIMT_ASAN
constexpr std::size_t kStackBytes = 512 << 10;  // ASan's redzones make frames several times larger
#else
constexpr std::size_t kStackBytes = 128 << 10;
#endif
constexpr std::size_t kGuardBytes = 4096;

// A fiber stack with a guard page below it, so an overflow faults instead of corrupting memory.
struct Stack {
  char* base = nullptr;  // lowest usable address
  std::size_t size = 0;
};

Stack new_stack() {
  void* p = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  mprotect(p, kGuardBytes, PROT_NONE);
  return Stack{static_cast<char*>(p) + kGuardBytes, kStackBytes};
}

// Stacks are reused within an OS thread: a fiber that finishes hands its stack to the next one,
// so a kernel without barriers touches a single stack.
thread_local std::vector<Stack> t_free_stacks;

Stack take_stack() {
  if (t_free_stacks.empty()) return new_stack();
  Stack s = t_free_stacks.back();
  t_free_stacks.pop_back();
  return s;
}

enum class State { ready, at_barrier, at_warp, done };

}  // namespace

struct ThreadState {
  uint3 idx{0, 0, 0};
  int linear = 0;
  State state = State::ready;
  bool started = false;
  bctx::fcontext_t ctx = nullptr;
  Stack stack;
  const char* file = "";
  int line = 0;
  // A pending warp exchange.
  WarpOp op = WarpOp::sync;
  unsigned mask = 0;
  std::uint64_t value = 0, result = 0;
  int arg = 0, width = 32;
  void* asan_fake = nullptr;
};

namespace {

struct BlockRun {
  const Launch* launch = nullptr;
  uint3 block{0, 0, 0};
  std::vector<ThreadState> threads;
  std::vector<unsigned char> dynamic_shared;
  bctx::fcontext_t scheduler_ctx = nullptr;
  std::string error;  // the first misuse seen; the block is abandoned
  const void* sched_bottom = nullptr;
  std::size_t sched_size = 0;
  void* sched_fake = nullptr;
};

thread_local BlockRun* t_block = nullptr;

std::atomic<int> g_schedule{static_cast<int>(Schedule::forward)};
std::atomic<std::uint64_t> g_seed{1};
std::atomic<int> g_workers{0};

std::string dim_str(uint3 d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

std::string site(const char* file, int line) {
  const char* slash = std::strrchr(file, '/');
  return std::string(slash ? slash + 1 : file) + ":" + std::to_string(line);
}

std::string where(const BlockRun& b, const ThreadState& t) {
  return "kernel " + b.launch->name + " block " + dim_str(b.block) + " thread " + dim_str(t.idx);
}

void asan_start(void** fake, const void* bottom, std::size_t size) {
#ifdef DALESIM_SIMT_ASAN
  __sanitizer_start_switch_fiber(fake, bottom, size);
#else
  (void)fake, (void)bottom, (void)size;
#endif
}

void asan_finish(void* fake, const void** bottom, std::size_t* size) {
#ifdef DALESIM_SIMT_ASAN
  __sanitizer_finish_switch_fiber(fake, bottom, size);
#else
  (void)fake, (void)bottom, (void)size;
#endif
}

// From a fiber back to its block's scheduler; returns when the scheduler resumes this fiber.
DALESIM_NO_ASAN void yield_to_scheduler(ThreadState* t) {
  BlockRun* b = t_block;
  const bool finishing = t->state == State::done;
  asan_start(finishing ? nullptr : &t->asan_fake, b->sched_bottom, b->sched_size);
  const bctx::transfer_t back = bctx::jump_fcontext(b->scheduler_ctx, t);
  b->scheduler_ctx = back.fctx;
  asan_finish(t->asan_fake, nullptr, nullptr);
}

DALESIM_NO_ASAN void fiber_entry(bctx::transfer_t from) {
  auto* t = static_cast<ThreadState*>(from.data);
  BlockRun* b = t_block;
  b->scheduler_ctx = from.fctx;
  asan_finish(nullptr, &b->sched_bottom, &b->sched_size);
  try {
    b->launch->body();
  } catch (const std::exception& e) {
    if (b->error.empty()) b->error = where(*b, *t) + ": threw " + e.what();
  } catch (...) {
    if (b->error.empty()) b->error = where(*b, *t) + ": threw an exception";
  }
  t->state = State::done;
  yield_to_scheduler(t);
  std::abort();  // a finished fiber is never resumed
}

void resume(BlockRun& b, ThreadState& t) {
  if (!t.started) {
    t.started = true;
    t.stack = take_stack();
    t.ctx = bctx::make_fcontext(t.stack.base + t.stack.size, t.stack.size, fiber_entry);
  }
  t_thread = &t;
  asan_start(&b.sched_fake, t.stack.base, t.stack.size);
  const bctx::transfer_t r = bctx::jump_fcontext(t.ctx, &t);
  asan_finish(b.sched_fake, nullptr, nullptr);
  t_thread = nullptr;
  t.ctx = r.fctx;
  if (t.state == State::done) {
#ifdef DALESIM_SIMT_ASAN
    if (!b.error.empty()) __asan_unpoison_memory_region(t.stack.base, t.stack.size);  // stopped mid-kernel
#endif
    t_free_stacks.push_back(t.stack);
  }
}

std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void make_order(std::vector<int>& order, std::uint64_t block_linear, int phase) {
  const int n = static_cast<int>(order.size());
  for (int i = 0; i < n; ++i) order[i] = i;
  const auto s = static_cast<Schedule>(g_schedule.load());
  if (s == Schedule::reverse) std::reverse(order.begin(), order.end());
  if (s == Schedule::shuffle) {
    std::uint64_t state = g_seed.load() ^ (block_linear * 0x100000001b3ULL) ^ (static_cast<std::uint64_t>(phase) << 40);
    for (int i = n - 1; i > 0; --i) std::swap(order[i], order[splitmix(state) % static_cast<std::uint64_t>(i + 1)]);
  }
}

// Completes every warp exchange whose lanes have all arrived; returns whether any did. A lane of
// the mask that has returned, or waits elsewhere, is an error once nothing else can move.
bool resolve_warps(BlockRun& b) {
  bool any = false;
  const int n = static_cast<int>(b.threads.size());
  for (int w0 = 0; w0 < n; w0 += 32) {
    const int lanes = std::min(32, n - w0);
    int first = -1;
    for (int l = 0; l < lanes; ++l)
      if (b.threads[w0 + l].state == State::at_warp) {
        first = l;
        break;
      }
    if (first < 0) continue;
    const ThreadState& f = b.threads[w0 + first];
    bool complete = true;
    for (int l = 0; l < lanes; ++l) {
      if (!(f.mask >> l & 1u)) continue;
      const ThreadState& t = b.threads[w0 + l];
      if (t.state != State::at_warp || t.file != f.file || t.line != f.line) complete = false;
    }
    if (!complete) continue;
    std::uint32_t votes = 0;
    for (int l = 0; l < lanes; ++l)
      if ((f.mask >> l & 1u) && b.threads[w0 + l].value) votes |= 1u << l;
    for (int l = 0; l < lanes; ++l) {
      if (!(f.mask >> l & 1u)) continue;
      ThreadState& t = b.threads[w0 + l];
      const int w = t.width, seg = l / w * w, lane = l % w;
      int src = l;
      switch (t.op) {
        case WarpOp::idx: src = seg + ((t.arg % w) + w) % w; break;
        case WarpOp::up: src = lane - t.arg >= 0 ? l - t.arg : l; break;
        case WarpOp::down: src = lane + t.arg < w ? l + t.arg : l; break;
        case WarpOp::bfly: src = seg + ((lane ^ t.arg) % w); break;
        default: break;
      }
      if (src >= lanes) src = l;
      if (t.op == WarpOp::ballot) t.result = votes & f.mask;
      else if (t.op == WarpOp::any) t.result = (votes & f.mask) != 0;
      else if (t.op == WarpOp::all) t.result = (votes & f.mask) == (f.mask & ((lanes == 32) ? ~0u : ((1u << lanes) - 1)));
      else t.result = b.threads[w0 + src].value;
      t.state = State::ready;
    }
    any = true;
  }
  return any;
}

// Nothing can run: say why, naming one thread of each kind.
std::string stuck(const BlockRun& b) {
  const ThreadState *barrier = nullptr, *other_barrier = nullptr, *done = nullptr, *warp = nullptr;
  int n_barrier = 0;
  for (const ThreadState& t : b.threads) {
    if (t.state == State::at_barrier) {
      ++n_barrier;
      if (!barrier) barrier = &t;
      else if ((t.file != barrier->file || t.line != barrier->line) && !other_barrier) other_barrier = &t;
    }
    if (t.state == State::done && !done) done = &t;
    if (t.state == State::at_warp && !warp) warp = &t;
  }
  if (warp)
    return where(b, *warp) + ": waits at a warp primitive (" + site(warp->file, warp->line) +
           ") that not every lane of its mask reaches" + (done ? " (thread " + dim_str(done->idx) + " returned)" : "");
  if (other_barrier)
    return "kernel " + b.launch->name + " block " + dim_str(b.block) + ": threads wait at different __syncthreads: thread " +
           dim_str(barrier->idx) + " at " + site(barrier->file, barrier->line) + ", thread " + dim_str(other_barrier->idx) +
           " at " + site(other_barrier->file, other_barrier->line);
  return where(b, *done) + " returned while " + std::to_string(n_barrier) + " threads of the block wait at __syncthreads (" +
         site(barrier->file, barrier->line) + "): a barrier not reached by every thread";
}

// Runs one block to completion; returns the error, empty when none.
std::string run_block(const Launch& l, uint3 block, std::uint64_t linear) {
  BlockRun b;
  b.launch = &l;
  b.block = block;
  const uint3 bd{l.block.x, l.block.y, l.block.z};
  const int n = static_cast<int>(bd.x * bd.y * bd.z);
  b.threads.resize(n);
  for (int i = 0; i < n; ++i) {
    ThreadState& t = b.threads[i];
    t.linear = i;
    t.idx = uint3{static_cast<unsigned>(i % bd.x), static_cast<unsigned>(i / bd.x % bd.y), static_cast<unsigned>(i / (bd.x * bd.y))};
  }
  b.dynamic_shared.assign(l.shared_bytes, 0xcd);  // a heap block: ASan sees overruns of dynamic shared memory
  t_block = &b;
  t_block_idx = block;
  t_block_dim = bd;
  t_grid_dim = uint3{l.grid.x, l.grid.y, l.grid.z};
  std::vector<int> order(n);
  int phase = 0;
  for (;;) {
    make_order(order, linear, phase);
    for (int i : order) {
      ThreadState& t = b.threads[i];
      if (t.state != State::ready) continue;
      resume(b, t);  // runs until the thread waits or returns
      if (!b.error.empty()) break;
    }
    if (!b.error.empty()) break;
    if (resolve_warps(b)) continue;  // threads released from a warp exchange go on in this phase
    int n_done = 0, n_barrier = 0;
    for (const ThreadState& t : b.threads) {
      n_done += t.state == State::done;
      n_barrier += t.state == State::at_barrier;
    }
    if (n_done == n) break;
    const ThreadState* first = nullptr;
    bool same = true;
    for (const ThreadState& t : b.threads)
      if (t.state == State::at_barrier) {
        if (!first) first = &t;
        else same &= t.file == first->file && t.line == first->line;
      }
    if (n_barrier != n || !same) {
      b.error = stuck(b);
      break;
    }
    for (ThreadState& t : b.threads) t.state = State::ready;
    ++phase;
  }
  // An abandoned block leaves fibers suspended: their stacks go back to the pool (kernel frames
  // hold only trivially destructible values).
  for (ThreadState& t : b.threads)
    if (t.started && t.state != State::done) {
#ifdef DALESIM_SIMT_ASAN
      __asan_unpoison_memory_region(t.stack.base, t.stack.size);  // the kernel's frames never returned
#endif
      t_free_stacks.push_back(t.stack);
    }
  t_block = nullptr;
  return b.error;
}

// A fixed pool of OS threads that run the blocks of one launch; the calling thread helps.
class Pool {
 public:
  explicit Pool(int n) {
    for (int i = 0; i < n; ++i) workers_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void run(std::uint64_t n_tasks, const std::function<void(std::uint64_t)>& fn) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = &fn;
      n_tasks_ = n_tasks;
      next_ = 0;
      busy_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    cv_.notify_all();
    drain();
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [this] { return busy_ == 0; });
    fn_ = nullptr;
  }

 private:
  void drain() {
    for (;;) {
      const std::uint64_t i = next_.fetch_add(1);
      if (i >= n_tasks_) return;
      (*fn_)(i);
    }
  }
  void work() {
    std::uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      drain();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --busy_;
      }
      done_cv_.notify_all();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(std::uint64_t)>* fn_ = nullptr;
  std::uint64_t n_tasks_ = 0, generation_ = 0;
  std::atomic<std::uint64_t> next_{0};
  int busy_ = 0;
  bool stop_ = false;
};

int default_workers() {
  if (const char* env = std::getenv("DALESIM_SIMT_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(hw, 1u, 4u));
}

Pool& pool() {
  static std::mutex mutex;
  static std::unique_ptr<Pool> p;
  std::lock_guard<std::mutex> lock(mutex);
  const int want = g_workers.load() > 0 ? g_workers.load() : default_workers();
  if (!p || p->size() != want) {
    p.reset();
    p = std::make_unique<Pool>(want - 1);
  }
  return *p;
}

struct ScheduleFromEnv {
  ScheduleFromEnv() {
    const char* env = std::getenv("DALESIM_SIMT_SCHEDULE");
    if (!env) return;
    const std::string s(env);
    if (s == "reverse") set_schedule(Schedule::reverse);
    else if (s.rfind("shuffle", 0) == 0) set_schedule(Schedule::shuffle, s.size() > 8 ? std::strtoull(s.c_str() + 8, nullptr, 10) : 1);
    else if (s != "forward") std::fprintf(stderr, "DALESIM_SIMT_SCHEDULE=%s: expected forward, reverse or shuffle[:seed]\n", env);
  }
} schedule_from_env;

#ifdef DALESIM_SIMT_ASAN
// On an ASan report, say which CUDA thread was running.
struct DeathNote {
  DeathNote() {
    __sanitizer_set_death_callback([] {
      if (t_block && t_thread)
        std::fprintf(stderr, "dalesim simt: the fault above was raised by %s\n", where(*t_block, *t_thread).c_str());
    });
  }
} death_note;
#endif

}  // namespace

thread_local ThreadState* t_thread = nullptr;
thread_local uint3 t_block_idx{0, 0, 0}, t_block_dim{1, 1, 1}, t_grid_dim{1, 1, 1};

const uint3& thread_idx() { return t_thread->idx; }

void set_schedule(Schedule s, std::uint64_t seed) {
  g_schedule = static_cast<int>(s);
  g_seed = seed;
}
Schedule schedule() { return static_cast<Schedule>(g_schedule.load()); }
void set_worker_threads(int n) { g_workers = n; }

DALESIM_NO_ASAN void syncthreads(const char* file, int line) {
  ThreadState* t = t_thread;
  t->state = State::at_barrier;
  t->file = file;
  t->line = line;
  yield_to_scheduler(t);
}

DALESIM_NO_ASAN std::uint64_t warp_exchange(WarpOp op, unsigned mask, std::uint64_t value, int lane_arg, int width,
                                            const char* file, int line) {
  ThreadState* t = t_thread;
  BlockRun* b = t_block;
  const int lane = t->linear % 32;
  if (!(mask >> lane & 1u) || (width != 1 && width != 2 && width != 4 && width != 8 && width != 16 && width != 32)) {
    if (b->error.empty())
      b->error = where(*b, *t) + ": warp primitive at " + site(file, line) + " with mask " + std::to_string(mask) +
                 " not naming its own lane " + std::to_string(lane) + " or width " + std::to_string(width) + " not a power of 2 <= 32";
    t->state = State::done;
    yield_to_scheduler(t);
  }
  t->state = State::at_warp;
  t->op = op;
  t->mask = mask;
  t->value = value;
  t->arg = lane_arg;
  t->width = width;
  t->file = file;
  t->line = line;
  yield_to_scheduler(t);
  return t->result;
}

void* dynamic_shared_memory() { return t_block->dynamic_shared.data(); }

std::string execute_launch(const Launch& l) {
  const std::uint64_t gx = l.grid.x, gy = l.grid.y, gz = l.grid.z, n = gx * gy * gz;
  std::mutex mutex;
  std::uint64_t first_bad = n;
  std::string error;
  pool().run(n, [&](std::uint64_t i) {
    const uint3 block{static_cast<unsigned>(i % gx), static_cast<unsigned>(i / gx % gy), static_cast<unsigned>(i / (gx * gy))};
    std::string e = run_block(l, block, i);
    if (e.empty()) return;
    std::lock_guard<std::mutex> lock(mutex);
    if (i < first_bad) {
      first_bad = i;
      error = std::move(e);
    }
  });
  return error;
}

}  // namespace dalesim::simt
