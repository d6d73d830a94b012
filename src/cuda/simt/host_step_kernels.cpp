// The host build of src/cuda/step_kernels.cu: the same source, compiled as C++ against the host SIMT runtime.
#include "cuda/step_kernels.cu"
