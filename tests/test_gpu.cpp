// GPU tests (CTest label `gpu`): skipped, naming the CUDA error, when no device is usable.
#include <gtest/gtest.h>

#include "dalesim/backend.hpp"

namespace dalesim {
namespace {

class Gpu : public ::testing::Test {
 protected:
  void SetUp() override {
    device_ = query_cuda_device();
    if (!device_.usable) GTEST_SKIP() << "no usable CUDA device: " << device_.reason;
  }
  CudaDeviceInfo device_;
};

TEST_F(Gpu, DeviceQueryNamesTheDevice) { EXPECT_FALSE(device_.name.empty()); }

TEST_F(Gpu, AutoSaysWhichBackendItChose) {
  std::string why;
  const auto backend = make_backend("auto", BackendOptions{}, &why);
  ASSERT_NE(backend, nullptr);
  EXPECT_NE(why.find(device_.name), std::string::npos) << why;
}

// Without a device, `auto` must fall back to the CPU and say why; runs everywhere.
TEST(GpuFallback, AutoFallsBackToCpuWithTheReason) {
  const CudaDeviceInfo dev = query_cuda_device();
  std::string why;
  const auto backend = make_backend("auto", BackendOptions{}, &why);
  if (dev.usable) GTEST_SKIP() << "a CUDA device is present: " << dev.name;
  EXPECT_EQ(backend->name(), "cpu");
  EXPECT_NE(why.find(dev.reason), std::string::npos) << why;
  EXPECT_THROW(make_backend("cuda", BackendOptions{}, &why), std::runtime_error);
}

}  // namespace
}  // namespace dalesim
