// The host build of src/cuda/cuda_backend.cu: the same source, compiled as C++ against the host SIMT runtime.
#include "cuda/cuda_backend.cu"
