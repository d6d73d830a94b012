// Host builds of src/cuda/ (the host SIMT runtime) include this in place of the CUDA toolkit's
// header: the same names, implemented on the CPU by src/cuda/simt/.
#pragma once

#include "cuda/simt/runtime.hpp"
