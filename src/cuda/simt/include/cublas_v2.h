// Host builds of src/cuda/ include this in place of cuBLAS's header (src/cuda/simt/cublas.cpp).
#pragma once

#include "cuda/simt/cublas.hpp"
