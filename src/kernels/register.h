// Included only by the device translation units (kernels/cpu/*.cpp, kernels/cuda/*.cu): defines
// the kernel entries that kernels/dispatch.h declares, and the macro that instantiates them.
//
//   PRM_REGISTER_KERNELS(CpuLoop, MaxPool2dForward, MaxPool2dBackward)   // float and double
//   PRM_REGISTER_KERNEL(CpuLoop, Fill, int64_t)                          // one scalar type
#pragma once
#include "kernels/dispatch.h"

namespace prm {

template <template <class> class K, class Loop, typename T>
KernelFn<K, T> kernel_entry() {
  return &K<Loop>::template run<T>;
}

}  // namespace prm

#define PRM_REGISTER_KERNEL(LOOP, KERNEL, T) \
  template ::prm::KernelFn<::prm::KERNEL, T> prm::kernel_entry<::prm::KERNEL, ::prm::LOOP, T>();

#define PRM_REGISTER_FLOAT_KERNEL_(LOOP, KERNEL) \
  PRM_REGISTER_KERNEL(LOOP, KERNEL, float) PRM_REGISTER_KERNEL(LOOP, KERNEL, double)

// PRM_REGISTER_KERNELS(LOOP, K1, ..., K8): float and double entries of up to 8 kernels.
#define PRM_REG_1_(L, K) PRM_REGISTER_FLOAT_KERNEL_(L, K)
#define PRM_REG_2_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_1_(L, __VA_ARGS__)
#define PRM_REG_3_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_2_(L, __VA_ARGS__)
#define PRM_REG_4_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_3_(L, __VA_ARGS__)
#define PRM_REG_5_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_4_(L, __VA_ARGS__)
#define PRM_REG_6_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_5_(L, __VA_ARGS__)
#define PRM_REG_7_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_6_(L, __VA_ARGS__)
#define PRM_REG_8_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_7_(L, __VA_ARGS__)
#define PRM_REG_PICK_(_1, _2, _3, _4, _5, _6, _7, _8, NAME, ...) NAME
#define PRM_REGISTER_KERNELS(L, ...)                                                        \
  PRM_REG_PICK_(__VA_ARGS__, PRM_REG_8_, PRM_REG_7_, PRM_REG_6_, PRM_REG_5_, PRM_REG_4_,   \
                PRM_REG_3_, PRM_REG_2_, PRM_REG_1_, unused)(L, __VA_ARGS__)
