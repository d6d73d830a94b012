// The host SIMT runtime: the subset of the CUDA runtime and of the CUDA C++ kernel language that
// src/cuda/ uses, so that the backend's own .cu sources compile as host C++ and run on the CPU.
// Each CUDA thread is a fiber; a block's threads run on one OS thread, blocks on a small pool.
// Streams run lazily (at the next synchronisation), graphs record launches with their arguments.
// Included through the shim headers in include/ (cuda_runtime.h, cublas_v2.h); docs/cuda.md says
// what running kernels this way proves and what it does not.
#pragma once

#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda/simt/control.hpp"

#ifndef DALESIM_SIMT_HOST
#define DALESIM_SIMT_HOST 1
#endif

// ---- the kernel language -------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
#define __launch_bounds__(...)
// Static shared memory: one instance per OS thread, and a block runs whole on one OS thread.
#define __shared__ static thread_local

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x = 1, y = 1, z = 1;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

namespace dalesim::simt {

// What the code of one CUDA thread sees; set by the scheduler before every switch into a fiber.
struct ThreadState;
extern thread_local ThreadState* t_thread;
extern thread_local uint3 t_block_idx, t_block_dim, t_grid_dim;
const uint3& thread_idx();

// __syncthreads: every live thread of the block waits here; the site names it in error messages.
void syncthreads(const char* file, int line);
// Warp exchange: the calling lane posts `value`; returns the value of lane `src` (of the lanes in
// `mask`, all of which must arrive at the same site). `op` picks the lane: see warp.cpp.
enum class WarpOp { sync, idx, up, down, bfly, ballot, any, all };
std::uint64_t warp_exchange(WarpOp op, unsigned mask, std::uint64_t value, int lane_arg, int width, const char* file,
                            int line);
// Dynamic shared memory of the running block (the launch's shared_bytes).
void* dynamic_shared_memory();

template <class T>
T warp_shuffle(WarpOp op, unsigned mask, T v, int arg, int width, const char* file, int line) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type over 8 bytes");
  std::uint64_t bits = 0;
  __builtin_memcpy(&bits, &v, sizeof(T));
  bits = warp_exchange(op, mask, bits, arg, width, file, line);
  T out;
  __builtin_memcpy(&out, &bits, sizeof(T));
  return out;
}

}  // namespace dalesim::simt

#define threadIdx (::dalesim::simt::thread_idx())
#define blockIdx (::dalesim::simt::t_block_idx)
#define blockDim (::dalesim::simt::t_block_dim)
#define gridDim (::dalesim::simt::t_grid_dim)

#define __syncthreads() ::dalesim::simt::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) \
  ((void)::dalesim::simt::warp_exchange(::dalesim::simt::WarpOp::sync, (__VA_ARGS__ + 0) ? (__VA_ARGS__ + 0) : 0xffffffffu, 0, 0, 32, __FILE__, __LINE__))
#define __shfl_sync(mask, v, lane, ...) \
  ::dalesim::simt::warp_shuffle(::dalesim::simt::WarpOp::idx, mask, v, lane, (__VA_ARGS__ + 0) ? (__VA_ARGS__ + 0) : 32, __FILE__, __LINE__)
#define __shfl_up_sync(mask, v, delta, ...) \
  ::dalesim::simt::warp_shuffle(::dalesim::simt::WarpOp::up, mask, v, delta, (__VA_ARGS__ + 0) ? (__VA_ARGS__ + 0) : 32, __FILE__, __LINE__)
#define __shfl_down_sync(mask, v, delta, ...) \
  ::dalesim::simt::warp_shuffle(::dalesim::simt::WarpOp::down, mask, v, delta, (__VA_ARGS__ + 0) ? (__VA_ARGS__ + 0) : 32, __FILE__, __LINE__)
#define __shfl_xor_sync(mask, v, lane_mask, ...) \
  ::dalesim::simt::warp_shuffle(::dalesim::simt::WarpOp::bfly, mask, v, lane_mask, (__VA_ARGS__ + 0) ? (__VA_ARGS__ + 0) : 32, __FILE__, __LINE__)
#define __ballot_sync(mask, pred) \
  static_cast<unsigned>(::dalesim::simt::warp_exchange(::dalesim::simt::WarpOp::ballot, mask, (pred) ? 1 : 0, 0, 32, __FILE__, __LINE__))
#define __any_sync(mask, pred) \
  static_cast<int>(::dalesim::simt::warp_exchange(::dalesim::simt::WarpOp::any, mask, (pred) ? 1 : 0, 0, 32, __FILE__, __LINE__))
#define __all_sync(mask, pred) \
  static_cast<int>(::dalesim::simt::warp_exchange(::dalesim::simt::WarpOp::all, mask, (pred) ? 1 : 0, 0, 32, __FILE__, __LINE__))

// ---- the runtime API ------------------------------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureWrongThread = 908,
};

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1, cudaStreamCaptureModeRelaxed = 2 };
enum cudaStreamCaptureStatus { cudaStreamCaptureStatusNone = 0, cudaStreamCaptureStatusActive = 1, cudaStreamCaptureStatusInvalidated = 2 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaDeviceAttr { cudaDevAttrMaxThreadsPerBlock = 1, cudaDevAttrClockRate = 13, cudaDevAttrMultiProcessorCount = 16 };

constexpr unsigned int cudaStreamDefault = 0x0, cudaStreamNonBlocking = 0x1;
constexpr unsigned int cudaEventDefault = 0x0, cudaEventDisableTiming = 0x2;

struct cudaDeviceProp {
  char name[256];
  std::size_t totalGlobalMem;
  std::size_t sharedMemPerBlock;       // static + dynamic without the opt-in attribute
  std::size_t sharedMemPerBlockOptin;  // dynamic with cudaFuncAttributeMaxDynamicSharedMemorySize
  std::size_t sharedMemPerMultiprocessor;
  int regsPerBlock, warpSize, maxThreadsPerBlock, maxThreadsDim[3], maxGridSize[3];
  int major, minor, multiProcessorCount, maxThreadsPerMultiProcessor;
};

constexpr int warpSize = 32;

namespace dalesim::simt {
struct Stream;
struct Event;
struct Graph;
}  // namespace dalesim::simt
using cudaStream_t = dalesim::simt::Stream*;
using cudaEvent_t = dalesim::simt::Event*;
using cudaGraph_t = dalesim::simt::Graph*;
using cudaGraphExec_t = dalesim::simt::Graph*;

const char* cudaGetErrorName(cudaError_t err);
// The error's meaning, followed by what the host runtime saw when it raised it (kernel, block, thread).
const char* cudaGetErrorString(cudaError_t err);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();

cudaError_t cudaMalloc(void** ptr, std::size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocHost(void** ptr, std::size_t bytes);
cudaError_t cudaFreeHost(void* ptr);
// The typed overloads the CUDA toolkit's header also declares.
template <class T>
cudaError_t cudaMalloc(T** ptr, std::size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
template <class T>
cudaError_t cudaMallocHost(T** ptr, std::size_t bytes) {
  return cudaMallocHost(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* dst, int value, std::size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t bytes, cudaStream_t s = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value);
template <class F>
cudaError_t cudaFuncSetAttribute(F* func, cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(func), attr, value);
}

namespace dalesim::simt {

// One kernel launch: its name, the kernel's address (for cudaFuncSetAttribute), and the body one
// CUDA thread runs, holding the arguments copied at the launch (or at capture, as a graph does).
struct Launch {
  std::string name;
  const void* func = nullptr;
  dim3 grid, block;
  std::size_t shared_bytes = 0;
  std::function<void()> body;
};

// Checks the configuration against sm_90's limits and queues the launch on the stream (or records
// it into the stream's capture). Errors are returned as cudaGetLastError would report them.
cudaError_t enqueue_launch(Launch launch, cudaStream_t stream);

template <class... Params, class... Args>
cudaError_t launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t shared_bytes,
                   cudaStream_t stream, Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "kernel launched with the wrong number of arguments");
  Launch l;
  l.name = name;
  l.func = reinterpret_cast<const void*>(kernel);
  l.grid = grid;
  l.block = block;
  l.shared_bytes = shared_bytes;
  // Arguments converted to the parameter types and copied now, as a CUDA launch copies them.
  l.body = [kernel, saved = std::tuple<std::decay_t<Params>...>(std::forward<Args>(args)...)]() {
    std::apply(kernel, saved);
  };
  return enqueue_launch(std::move(l), stream);
}

// A host function queued on a stream, run in order at its next synchronisation (the host cuBLAS
// queues its products this way). `what` names it in error messages.
cudaError_t enqueue_host_work(cudaStream_t stream, const char* what, std::function<cudaError_t()> work);
// Whether the stream is being captured, and whether this thread has any capture open.
bool is_capturing(cudaStream_t stream);
// Records an error raised by the runtime with its detail; returns `err`.
cudaError_t fail(cudaError_t err, const std::string& detail);
// Device allocations: [begin, begin + bytes) of the allocation holding p, or false.
bool find_allocation(const void* p, const void** begin, std::size_t* bytes);

}  // namespace dalesim::simt
