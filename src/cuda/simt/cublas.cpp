// Host cuBLAS (cublas.hpp): each product is queued on the handle's stream and runs there in order,
// lazily like every other operation. Arguments are checked as cuBLAS checks them, operands against
// their device allocations, and a product captured into a graph must use a workspace the caller
// set (cuBLAS must not allocate during a capture; cublasSetStream resets the workspace).
#include <cmath>
#include <map>
#include <mutex>
#include <string>

#include "cuda/simt/cublas.hpp"

namespace dalesim::simt {

struct BlasHandle {
  cudaStream_t stream = nullptr;
  void* workspace = nullptr;  // null: the library's default pool
  std::size_t workspace_bytes = 0;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace {

std::mutex g_mutex;
std::map<int, std::string> g_detail, g_message;

cublasStatus_t blas_fail(cublasStatus_t st, const std::string& detail) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_detail[st] = detail;
  return st;
}

// The extent of a column-major rows x cols operand with leading dimension ld, over `batch` strides.
bool operand_inside(const float* p, int rows, int cols, int ld, long long stride, int batch) {
  if (rows == 0 || cols == 0 || batch == 0) return true;
  const long long last = (batch - 1) * stride + static_cast<long long>(cols - 1) * ld + (rows - 1);
  const void* begin;
  std::size_t bytes;
  if (!find_allocation(p, &begin, &bytes)) return false;
  const char* end = static_cast<const char*>(begin) + bytes;
  return stride >= 0 && reinterpret_cast<const char*>(p + last + 1) <= end;
}

}  // namespace

}  // namespace dalesim::simt

using dalesim::simt::BlasHandle;
using dalesim::simt::blas_fail;

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  if (dalesim::simt::is_capturing(nullptr)) return blas_fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasCreate during a capture");
  *handle = new BlasHandle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (!handle) return blas_fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasDestroy of a null handle");
  cudaStreamSynchronize(handle->stream);
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (!handle) return blas_fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSetStream on a null handle");
  handle->stream = stream;
  handle->workspace = nullptr;  // "unconditionally resets the cuBLAS library workspace back to the default workspace pool"
  handle->workspace_bytes = 0;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream) {
  if (!handle) return blas_fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasGetStream on a null handle");
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, std::size_t bytes) {
  if (!handle) return blas_fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSetWorkspace on a null handle");
  const void* begin;
  std::size_t size;
  if (bytes && (!dalesim::simt::find_allocation(workspace, &begin, &size) ||
                static_cast<const char*>(workspace) + bytes > static_cast<const char*>(begin) + size))
    return blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasSetWorkspace: the workspace is not device memory of that size");
  handle->workspace = workspace;
  handle->workspace_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!handle) return blas_fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSetMathMode on a null handle");
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusName(cublasStatus_t st) {
  switch (st) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t st) {
  using namespace dalesim::simt;
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string& m = g_message[st];
  m = st == CUBLAS_STATUS_SUCCESS ? "success" : st == CUBLAS_STATUS_INVALID_VALUE ? "an invalid numeric value was used as an argument"
      : st == CUBLAS_STATUS_NOT_SUPPORTED ? "the functionality requested is not supported" : cublasGetStatusName(st);
  const auto d = g_detail.find(st);
  if (d != g_detail.end()) m += " [host cuBLAS: " + d->second + "]";
  return m.c_str();
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                         const float* alpha, const float* A, int lda, long long sA, const float* B, int ldb,
                                         long long sB, const float* beta, float* C, int ldc, long long sC, int batch) {
  using dalesim::simt::operand_inside;
  if (!h) return blas_fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSgemmStridedBatched on a null handle");
  const std::string args = "(m=" + std::to_string(m) + ", n=" + std::to_string(n) + ", k=" + std::to_string(k) +
                           ", lda=" + std::to_string(lda) + ", ldb=" + std::to_string(ldb) + ", ldc=" + std::to_string(ldc) +
                           ", batch=" + std::to_string(batch) + ")";
  const int a_rows = ta == CUBLAS_OP_N ? m : k, a_cols = ta == CUBLAS_OP_N ? k : m;
  const int b_rows = tb == CUBLAS_OP_N ? k : n, b_cols = tb == CUBLAS_OP_N ? n : k;
  if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) || ldc < std::max(1, m))
    return blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasSgemmStridedBatched " + args + ": a size is negative or a leading dimension too small");
  if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
  const float a = *alpha, b = *beta;  // host pointer mode: read at the call
  if (!operand_inside(A, a_rows, a_cols, lda, sA, k ? batch : 0) || !operand_inside(B, b_rows, b_cols, ldb, sB, k ? batch : 0) ||
      !operand_inside(C, m, n, ldc, sC, batch))
    return blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasSgemmStridedBatched " + args +
                                                      ": an operand's strided extent runs outside its device allocation");
  if (dalesim::simt::is_capturing(h->stream) && !h->workspace)
    return blas_fail(CUBLAS_STATUS_NOT_SUPPORTED,
                     "cublasSgemmStridedBatched captured into a graph with the default workspace pool: set a workspace with "
                     "cublasSetWorkspace after cublasSetStream (which resets it)");
  const cudaError_t err = dalesim::simt::enqueue_host_work(h->stream, "cublasSgemmStridedBatched", [=] {
    for (int r = 0; r < batch; ++r) {
      const float* Ar = A + r * sA;
      const float* Br = B + r * sB;
      float* Cr = C + r * sC;
      for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
          float acc = 0.f;
          for (int l = 0; l < k; ++l) {
            const float av = ta == CUBLAS_OP_N ? Ar[i + static_cast<long long>(l) * lda] : Ar[l + static_cast<long long>(i) * lda];
            const float bv = tb == CUBLAS_OP_N ? Br[l + static_cast<long long>(j) * ldb] : Br[j + static_cast<long long>(l) * ldb];
            acc = std::fma(av, bv, acc);
          }
          float& c = Cr[i + static_cast<long long>(j) * ldc];
          c = b == 0.f ? a * acc : a * acc + b * c;  // C is not read when beta is 0
        }
    }
    return cudaSuccess;
  });
  return err == cudaSuccess ? CUBLAS_STATUS_SUCCESS : blas_fail(CUBLAS_STATUS_EXECUTION_FAILED, cudaGetErrorString(err));
}
