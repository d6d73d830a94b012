// The host build of src/cuda/device_query.cu: the same source, compiled as C++ against the host SIMT runtime.
#include "cuda/device_query.cu"
