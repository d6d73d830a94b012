// The host build of src/cuda/recurrent_v2.cu: the same source, compiled as C++ against the host SIMT runtime.
#include "cuda/recurrent_v2.cu"
