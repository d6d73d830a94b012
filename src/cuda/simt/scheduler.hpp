// The part of the host SIMT runtime that executes a kernel launch (scheduler.cpp).
#pragma once

#include <string>

#include "cuda/simt/runtime.hpp"

namespace dalesim::simt {

// Runs every block of the launch; returns the first error (lowest block), empty when none.
std::string execute_launch(const Launch& launch);

}  // namespace dalesim::simt
