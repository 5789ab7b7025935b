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

// PRM_REGISTER_KERNELS(LOOP, K1, ..., K16): float and double entries of up to 16 kernels. A list
// of 17 to 24 stops the build with a static_assert saying so (split the list into two calls);
// longer lists than that cannot be counted by the preprocessor and fail less clearly.
#define PRM_REG_1_(L, K) PRM_REGISTER_FLOAT_KERNEL_(L, K)
#define PRM_REG_2_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_1_(L, __VA_ARGS__)
#define PRM_REG_3_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_2_(L, __VA_ARGS__)
#define PRM_REG_4_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_3_(L, __VA_ARGS__)
#define PRM_REG_5_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_4_(L, __VA_ARGS__)
#define PRM_REG_6_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_5_(L, __VA_ARGS__)
#define PRM_REG_7_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_6_(L, __VA_ARGS__)
#define PRM_REG_8_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_7_(L, __VA_ARGS__)
#define PRM_REG_9_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_8_(L, __VA_ARGS__)
#define PRM_REG_10_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_9_(L, __VA_ARGS__)
#define PRM_REG_11_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_10_(L, __VA_ARGS__)
#define PRM_REG_12_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_11_(L, __VA_ARGS__)
#define PRM_REG_13_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_12_(L, __VA_ARGS__)
#define PRM_REG_14_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_13_(L, __VA_ARGS__)
#define PRM_REG_15_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_14_(L, __VA_ARGS__)
#define PRM_REG_16_(L, K, ...) PRM_REG_1_(L, K) PRM_REG_15_(L, __VA_ARGS__)
#define PRM_REG_TOO_MANY_(L, ...) \
  static_assert(false, "PRM_REGISTER_KERNELS takes at most 16 kernels: split the list into two calls");
#define PRM_REG_PICK_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, \
                      _18, _19, _20, _21, _22, _23, _24, NAME, ...)                                \
  NAME
#define PRM_REGISTER_KERNELS(L, ...)                                                             \
  PRM_REG_PICK_(__VA_ARGS__, PRM_REG_TOO_MANY_, PRM_REG_TOO_MANY_, PRM_REG_TOO_MANY_,            \
                PRM_REG_TOO_MANY_, PRM_REG_TOO_MANY_, PRM_REG_TOO_MANY_, PRM_REG_TOO_MANY_,      \
                PRM_REG_TOO_MANY_, PRM_REG_16_, PRM_REG_15_, PRM_REG_14_, PRM_REG_13_, PRM_REG_12_, \
                PRM_REG_11_, PRM_REG_10_, PRM_REG_9_, PRM_REG_8_, PRM_REG_7_, PRM_REG_6_,        \
                PRM_REG_5_, PRM_REG_4_, PRM_REG_3_, PRM_REG_2_, PRM_REG_1_, unused)(L, __VA_ARGS__)
