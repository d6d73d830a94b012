// The CUDA runtime subset of the host SIMT runtime: an H100-like device, memory, lazily executed
// streams, events and graphs recorded by stream capture. Calls that a real device would refuse
// are refused here too, each with a message naming what was wrong (cudaGetErrorString).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "cuda/simt/scheduler.hpp"

namespace dalesim::simt {

namespace {

// sm_90 limits (H100): what a launch is checked against.
constexpr unsigned kMaxThreadsPerBlock = 1024, kMaxBlockX = 1024, kMaxBlockY = 1024, kMaxBlockZ = 64;
constexpr unsigned long long kMaxGridX = 2147483647ULL, kMaxGridYZ = 65535;
constexpr std::size_t kSharedDefault = 48 << 10, kSharedOptin = 227 << 10;

struct Op {
  enum Kind { kernel, copy, set, host, event } kind = kernel;
  Launch launch;
  void* dst = nullptr;
  const void* src = nullptr;
  std::size_t bytes = 0;
  int value = 0;
  bool check_source = false;  // a host source: it must not change before the copy runs
  std::uint64_t source_hash = 0;
  std::function<cudaError_t()> work;
  std::string what;
  Event* ev = nullptr;
  std::uint64_t ev_seq = 0;
};

}  // namespace

struct Stream {
  std::deque<Op> queue;
  unsigned flags = 0;
  Graph* capture = nullptr;  // the graph being captured, if any
  bool capture_invalid = false;
  cudaStreamCaptureMode capture_mode = cudaStreamCaptureModeGlobal;
  std::thread::id capture_thread;
};

struct Event {
  Stream* stream = nullptr;
  std::uint64_t recorded = 0, completed = 0;
};

struct Graph {
  std::vector<Op> ops;
};

namespace {

std::recursive_mutex g_mutex;
using Lock = std::lock_guard<std::recursive_mutex>;
Stream g_null_stream;
std::set<Stream*> g_streams;
std::map<const char*, std::size_t, std::less<>> g_device;  // device allocations: begin -> bytes
std::set<void*> g_pinned;
std::map<const void*, int> g_max_dynamic_shared;
cudaError_t g_sticky = cudaSuccess;
thread_local cudaError_t t_last = cudaSuccess;
std::map<int, std::string> g_detail, g_message;

Stream* resolve(cudaStream_t s) { return s ? s : &g_null_stream; }

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

std::uint64_t hash_bytes(const void* p, std::size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  std::uint64_t h = 1469598103934665603ULL;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

// A capture this thread has open (global or thread-local mode) makes "unsafe" calls illegal, as on
// a device; the capture is then invalidated.
Stream* open_capture() {
  for (Stream* s : g_streams)
    if (s->capture && s->capture_mode != cudaStreamCaptureModeRelaxed && s->capture_thread == std::this_thread::get_id())
      return s;
  return nullptr;
}

cudaError_t refuse_in_capture(const char* call) {
  Stream* s = open_capture();
  if (!s) return cudaSuccess;
  for (Stream* t : g_streams)
    if (t->capture) t->capture_invalid = true;
  return fail(cudaErrorStreamCaptureUnsupported,
              std::string(call) + " while stream " + hex(s) + " is being captured into a graph (not allowed in a capture)");
}

bool inside_device(const void* p, std::size_t bytes) {
  const void* begin;
  std::size_t size;
  if (!find_allocation(p, &begin, &size)) return false;
  return static_cast<const char*>(p) + bytes <= static_cast<const char*>(begin) + size;
}

cudaError_t check_range(const void* p, std::size_t bytes, bool device, const char* call, const char* which) {
  if (bytes == 0) return cudaSuccess;
  const void* begin;
  std::size_t size;
  const bool in_device = find_allocation(p, &begin, &size);
  if (device && !in_device)
    return fail(cudaErrorInvalidValue, std::string(call) + ": " + which + " " + hex(p) + " is not device memory");
  if (device && static_cast<const char*>(p) + bytes > static_cast<const char*>(begin) + size)
    return fail(cudaErrorInvalidValue, std::string(call) + ": " + which + " [" + hex(p) + ", +" + std::to_string(bytes) +
                                           " bytes) runs past the end of its allocation of " + std::to_string(size) +
                                           " bytes at " + hex(begin));
  if (!device && in_device)
    return fail(cudaErrorInvalidValue, std::string(call) + ": " + which + " " + hex(p) +
                                           " is device memory but the copy's kind says host memory");
  return cudaSuccess;
}

// Runs one queued operation; errors from kernels are sticky, as a device's are.
cudaError_t run_op(Op& op) {
  switch (op.kind) {
    case Op::kernel: {
      const std::string err = execute_launch(op.launch);
      if (!err.empty()) {
        g_sticky = cudaErrorLaunchFailure;
        return fail(cudaErrorLaunchFailure, err);
      }
      return cudaSuccess;
    }
    case Op::copy:
      if (op.check_source && hash_bytes(op.src, op.bytes) != op.source_hash)
        return fail(cudaErrorInvalidValue, "cudaMemcpyAsync of " + std::to_string(op.bytes) + " bytes from host " + hex(op.src) +
                                               ": the host buffer was rewritten after the call and before the copy ran "
                                               "(a staging buffer reused without synchronising its stream first)");
      std::memmove(op.dst, op.src, op.bytes);
      return cudaSuccess;
    case Op::set:
      std::memset(op.dst, op.value, op.bytes);
      return cudaSuccess;
    case Op::host:
      return op.work();
    case Op::event:
      op.ev->completed = std::max(op.ev->completed, op.ev_seq);
      return cudaSuccess;
  }
  return cudaSuccess;
}

// Executes a stream's queued work in order, up to and including the event `until` (all of it when
// null). The first failure drops what remains, as a failed context would never run it.
cudaError_t flush(Stream* s, const Event* until = nullptr, std::uint64_t seq = 0) {
  while (!s->queue.empty()) {
    if (until && until->completed >= seq) break;
    Op op = std::move(s->queue.front());
    s->queue.pop_front();
    const cudaError_t err = run_op(op);
    if (err != cudaSuccess) {
      s->queue.clear();
      return err;
    }
  }
  return g_sticky;
}

cudaError_t flush_all() {
  cudaError_t first = flush(&g_null_stream);
  for (Stream* s : g_streams) {
    const cudaError_t e = flush(s);
    if (first == cudaSuccess) first = e;
  }
  return first;
}

// Queues an operation on the stream, or records it into the stream's capture.
cudaError_t enqueue(Stream* s, Op op) {
  if (g_sticky != cudaSuccess) return g_sticky;
  if (s == &g_null_stream && open_capture())
    return fail(cudaErrorStreamCaptureUnsupported, "work queued on the legacy default stream while stream " +
                                                       hex(open_capture()) + " is being captured");
  if (s->capture) {
    if (op.kind == Op::copy) op.check_source = false;  // a graph's copy reads its source when replayed
    s->capture->ops.push_back(std::move(op));
  } else {
    s->queue.push_back(std::move(op));
  }
  return cudaSuccess;
}

const char* error_name(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
  }
  return "cudaErrorUnknown";
}

const char* error_meaning(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    default: return error_name(e);
  }
}

}  // namespace

cudaError_t fail(cudaError_t err, const std::string& detail) {
  Lock lock(g_mutex);
  g_detail[err] = detail;
  t_last = err;
  return err;
}

bool find_allocation(const void* p, const void** begin, std::size_t* bytes) {
  Lock lock(g_mutex);
  auto it = g_device.upper_bound(static_cast<const char*>(p));
  if (it == g_device.begin()) return false;
  --it;
  if (static_cast<const char*>(p) >= it->first + std::max<std::size_t>(it->second, 1)) return false;
  *begin = it->first;
  *bytes = it->second;
  return true;
}

bool is_capturing(cudaStream_t stream) {
  Lock lock(g_mutex);
  return resolve(stream)->capture != nullptr;
}

cudaError_t enqueue_launch(Launch l, cudaStream_t stream) {
  Lock lock(g_mutex);
  if (g_sticky != cudaSuccess) return t_last = g_sticky;
  const dim3 b = l.block, g = l.grid;
  const std::string k = "kernel " + l.name + ": ";
  auto d3 = [](dim3 d) { return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")"; };
  const unsigned long long threads = 1ULL * b.x * b.y * b.z;
  if (b.x == 0 || b.y == 0 || b.z == 0 || g.x == 0 || g.y == 0 || g.z == 0)
    return fail(cudaErrorInvalidConfiguration, k + "grid " + d3(g) + " or block " + d3(b) + " has a zero dimension");
  if (threads > kMaxThreadsPerBlock || b.x > kMaxBlockX || b.y > kMaxBlockY || b.z > kMaxBlockZ)
    return fail(cudaErrorInvalidConfiguration, k + "block " + d3(b) + " has " + std::to_string(threads) +
                                                   " threads; sm_90 allows 1024 per block and (1024, 1024, 64) per dimension");
  if (g.x > kMaxGridX || g.y > kMaxGridYZ || g.z > kMaxGridYZ)
    return fail(cudaErrorInvalidConfiguration,
                k + "grid " + d3(g) + " exceeds sm_90's limits (2147483647, 65535, 65535)");
  const auto attr = g_max_dynamic_shared.find(l.func);
  const std::size_t allowed = attr == g_max_dynamic_shared.end() ? kSharedDefault : static_cast<std::size_t>(attr->second);
  if (l.shared_bytes > allowed)
    return fail(cudaErrorInvalidValue,
                k + std::to_string(l.shared_bytes) + " bytes of dynamic shared memory; " + std::to_string(allowed) +
                    " allowed" + (attr == g_max_dynamic_shared.end()
                                      ? " (more than 48 KiB needs cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize), up to 227 KiB)"
                                      : ""));
  Op op;
  op.kind = Op::kernel;
  op.launch = std::move(l);
  const cudaError_t err = enqueue(resolve(stream), std::move(op));
  if (err != cudaSuccess) t_last = err;
  return err;
}

cudaError_t enqueue_host_work(cudaStream_t stream, const char* what, std::function<cudaError_t()> work) {
  Lock lock(g_mutex);
  Op op;
  op.kind = Op::host;
  op.work = std::move(work);
  op.what = what;
  return enqueue(resolve(stream), std::move(op));
}

}  // namespace dalesim::simt

using namespace dalesim::simt;

const char* cudaGetErrorName(cudaError_t err) { return error_name(err); }

const char* cudaGetErrorString(cudaError_t err) {
  Lock lock(g_mutex);
  std::string& m = g_message[err];
  m = error_meaning(err);
  const auto d = g_detail.find(err);
  if (d != g_detail.end()) m += " [host SIMT runtime: " + d->second + "]";
  return m.c_str();
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = t_last;
  t_last = g_sticky;
  return e;
}
cudaError_t cudaPeekAtLastError() { return t_last; }

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice, "device " + std::to_string(device) + " (the host runtime has device 0 only)");
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "NVIDIA H100 (emulated by the dalesim host SIMT runtime)");
  p->totalGlobalMem = 80ULL << 30;
  p->sharedMemPerBlock = kSharedDefault;
  p->sharedMemPerBlockOptin = kSharedOptin;
  p->sharedMemPerMultiprocessor = 228 << 10;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = kMaxThreadsPerBlock;
  p->maxThreadsDim[0] = kMaxBlockX;
  p->maxThreadsDim[1] = kMaxBlockY;
  p->maxThreadsDim[2] = kMaxBlockZ;
  p->maxGridSize[0] = static_cast<int>(kMaxGridX);
  p->maxGridSize[1] = p->maxGridSize[2] = static_cast<int>(kMaxGridYZ);
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 132;
  p->maxThreadsPerMultiProcessor = 2048;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  switch (attr) {
    case cudaDevAttrClockRate: *value = 1980000; return cudaSuccess;  // kHz, H100 SXM boost
    case cudaDevAttrMultiProcessorCount: *value = 132; return cudaSuccess;
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute not modelled");
}

cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice, "cudaSetDevice(" + std::to_string(device) + ")");
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  Lock lock(g_mutex);
  if (const cudaError_t e = refuse_in_capture("cudaDeviceSynchronize")) return e;
  return flush_all();
}

// Clears a sticky error and drops queued work (as a new context would); allocations stay valid,
// so that tests of planted faults can go on in the same process.
cudaError_t cudaDeviceReset() {
  Lock lock(g_mutex);
  g_null_stream.queue.clear();
  for (Stream* s : g_streams) {
    s->queue.clear();
    if (s->capture) {
      delete s->capture;
      s->capture = nullptr;
    }
  }
  g_sticky = cudaSuccess;
  t_last = cudaSuccess;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, std::size_t bytes) {
  Lock lock(g_mutex);
  *ptr = nullptr;
  if (const cudaError_t e = refuse_in_capture("cudaMalloc")) return e;
  if (bytes == 0) return cudaSuccess;
  void* p = nullptr;
  if (posix_memalign(&p, 256, bytes) != 0) return fail(cudaErrorMemoryAllocation, "cudaMalloc of " + std::to_string(bytes) + " bytes");
  // Fresh device memory is not zero: all-ones bytes read as NaN (float, double) and -1 (integers),
  // so a kernel that reads what nothing wrote shows it.
  std::memset(p, 0xff, bytes);
  g_device[static_cast<const char*>(p)] = bytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  Lock lock(g_mutex);
  if (!ptr) return cudaSuccess;
  if (const cudaError_t e = refuse_in_capture("cudaFree")) return e;
  const auto it = g_device.find(static_cast<const char*>(ptr));
  if (it == g_device.end()) return fail(cudaErrorInvalidValue, "cudaFree(" + hex(ptr) + "): not the start of a device allocation");
  flush_all();  // cudaFree synchronises the device
  g_device.erase(it);
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, std::size_t bytes) {
  Lock lock(g_mutex);
  *ptr = nullptr;
  if (const cudaError_t e = refuse_in_capture("cudaMallocHost")) return e;
  if (bytes == 0) return cudaSuccess;
  void* p = nullptr;
  if (posix_memalign(&p, 256, bytes) != 0) return fail(cudaErrorMemoryAllocation, "cudaMallocHost");
  g_pinned.insert(p);
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
  Lock lock(g_mutex);
  if (!ptr) return cudaSuccess;
  if (const cudaError_t e = refuse_in_capture("cudaFreeHost")) return e;
  if (!g_pinned.erase(ptr)) return fail(cudaErrorInvalidValue, "cudaFreeHost(" + hex(ptr) + "): not pinned memory");
  flush_all();
  std::free(ptr);
  return cudaSuccess;
}

namespace {

cudaError_t make_copy(Op& op, void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, const char* call) {
  if (kind == cudaMemcpyDefault)
    kind = static_cast<cudaMemcpyKind>((inside_device(src, 1) ? 2 : 0) + (inside_device(dst, 1) ? 1 : 0));
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind < 0 || kind > cudaMemcpyDefault) return fail(cudaErrorInvalidMemcpyDirection, call);
  if (const cudaError_t e = check_range(dst, bytes, dst_dev, call, "destination")) return e;
  if (const cudaError_t e = check_range(src, bytes, src_dev, call, "source")) return e;
  op.kind = Op::copy;
  op.dst = dst;
  op.src = src;
  op.bytes = bytes;
  op.check_source = !src_dev;
  if (op.check_source) op.source_hash = hash_bytes(src, bytes);
  return cudaSuccess;
}

}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  Lock lock(g_mutex);
  if (const cudaError_t e = refuse_in_capture("cudaMemcpy (synchronous)")) return e;
  Op op;
  if (const cudaError_t e = make_copy(op, dst, src, bytes, kind, "cudaMemcpy")) return e;
  if (const cudaError_t e = flush(&g_null_stream)) return t_last = e;  // the legacy stream's earlier work first
  return run_op(op);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  Lock lock(g_mutex);
  Op op;
  if (const cudaError_t e = make_copy(op, dst, src, bytes, kind, "cudaMemcpyAsync")) return e;
  if (bytes == 0) return cudaSuccess;
  return enqueue(resolve(s), std::move(op));
}

cudaError_t cudaMemset(void* dst, int value, std::size_t bytes) {
  Lock lock(g_mutex);
  if (const cudaError_t e = refuse_in_capture("cudaMemset (synchronous)")) return e;
  if (const cudaError_t e = check_range(dst, bytes, true, "cudaMemset", "destination")) return e;
  if (const cudaError_t e = flush(&g_null_stream)) return e;
  std::memset(dst, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t bytes, cudaStream_t s) {
  Lock lock(g_mutex);
  if (const cudaError_t e = check_range(dst, bytes, true, "cudaMemsetAsync", "destination")) return e;
  Op op;
  op.kind = Op::set;
  op.dst = dst;
  op.value = value;
  op.bytes = bytes;
  return enqueue(resolve(s), std::move(op));
}

cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags) {
  Lock lock(g_mutex);
  auto* st = new Stream;
  st->flags = flags;
  g_streams.insert(st);
  *s = st;
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
  Lock lock(g_mutex);
  if (!s || !g_streams.count(s)) return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy of an unknown stream");
  flush(s);  // queued work still completes, as on a device
  g_streams.erase(s);
  delete s->capture;
  delete s;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  Lock lock(g_mutex);
  Stream* st = resolve(s);
  if (st->capture) {
    st->capture_invalid = true;
    return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize on stream " + hex(st) + " while it is being captured");
  }
  if (const cudaError_t e = refuse_in_capture("cudaStreamSynchronize")) return e;
  if (st != &g_null_stream && !(st->flags & cudaStreamNonBlocking)) flush(&g_null_stream);
  return flush(st);
}

cudaError_t cudaStreamQuery(cudaStream_t s) {
  Lock lock(g_mutex);
  if (const cudaError_t e = refuse_in_capture("cudaStreamQuery")) return e;
  // Lazily executed work is never "done" until someone waits for it.
  return resolve(s)->queue.empty() ? g_sticky : cudaErrorNotReady;
}

cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int) {
  *e = new Event;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  Lock lock(g_mutex);
  Stream* st = resolve(s);
  if (st->capture) return fail(cudaErrorStreamCaptureUnsupported, "cudaEventRecord inside a capture is not modelled by the host runtime");
  e->stream = st;
  Op op;
  op.kind = Op::event;
  op.ev = e;
  op.ev_seq = ++e->recorded;
  return enqueue(st, std::move(op));
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  Lock lock(g_mutex);
  if (const cudaError_t err = refuse_in_capture("cudaEventSynchronize")) return err;
  if (!e->stream) return cudaSuccess;
  return flush(e->stream, e, e->recorded);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int) {
  Lock lock(g_mutex);
  Stream* other = e->stream;
  if (!other) return cudaSuccess;
  const std::uint64_t seq = e->recorded;
  Op op;
  op.kind = Op::host;
  op.what = "cudaStreamWaitEvent";
  op.work = [other, e, seq] { return flush(other, e, seq); };
  return enqueue(resolve(s), std::move(op));
}

// There is no device clock: elapsed times are those of the host executing the work lazily, which
// says nothing about a GPU. 0 is returned so that no one mistakes it for a measurement.
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t, cudaEvent_t) {
  *ms = 0.f;
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
  Lock lock(g_mutex);
  if (!s) return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamBeginCapture on the legacy default stream");
  if (s->capture) return fail(cudaErrorIllegalAddress, "cudaStreamBeginCapture on a stream already capturing");
  // Work queued before the capture began still runs first, at the stream's next synchronisation.
  s->capture = new Graph;
  s->capture_invalid = false;
  s->capture_mode = mode;
  s->capture_thread = std::this_thread::get_id();
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph) {
  Lock lock(g_mutex);
  *graph = nullptr;
  if (!s || !s->capture) return fail(cudaErrorIllegalAddress, "cudaStreamEndCapture on a stream that is not capturing");
  if (s->capture_thread != std::this_thread::get_id())
    return fail(cudaErrorStreamCaptureWrongThread, "cudaStreamEndCapture from another thread than the one that began it");
  Graph* g = s->capture;
  s->capture = nullptr;
  if (s->capture_invalid) {
    delete g;
    return fail(cudaErrorStreamCaptureInvalidated, "the capture was invalidated by an illegal call during it (" +
                                                        g_detail[cudaErrorStreamCaptureUnsupported] + ")");
  }
  *graph = g;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status) {
  Lock lock(g_mutex);
  Stream* st = resolve(s);
  *status = !st->capture ? cudaStreamCaptureStatusNone
                         : st->capture_invalid ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (!graph) return fail(cudaErrorInvalidValue, "cudaGraphInstantiate of a null graph");
  *exec = new Graph(*graph);  // kernel arguments were copied at capture; instantiation copies the nodes
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  Lock lock(g_mutex);
  if (!exec) return fail(cudaErrorInvalidValue, "cudaGraphLaunch of a null graph");
  Stream* st = resolve(s);
  for (const Op& op : exec->ops)
    if (const cudaError_t e = enqueue(st, op)) return e;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  Lock lock(g_mutex);
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: attribute not modelled");
  if (value < 0 || static_cast<std::size_t>(value) > kSharedOptin)
    return fail(cudaErrorInvalidValue, "cudaFuncAttributeMaxDynamicSharedMemorySize = " + std::to_string(value) +
                                           "; sm_90 allows at most 232448 bytes (227 KiB)");
  g_max_dynamic_shared[func] = value;
  return cudaSuccess;
}
