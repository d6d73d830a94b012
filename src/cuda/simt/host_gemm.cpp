// The host build of src/cuda/gemm.cu: the same source, compiled as C++ against the host SIMT runtime.
#include "cuda/gemm.cu"
