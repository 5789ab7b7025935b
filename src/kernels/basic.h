// The kernels the tensor core itself needs: fill, dtype conversion and accumulation. Written
// once for both devices (kernels/dispatch.h); registered in cpu/basic.cpp and cuda/basic.cu.
//   Fill:    out[i] = value                  (overwrites)
//   Convert: out[i] = (To)inp[i], To named by `to` (overwrites)
//   Axpy:    out[i] += alpha * inp[i]        (accumulates)
#pragma once
#include <cstdint>

#include "kernels/dispatch.h"

namespace prm {

template <class Loop>
struct Fill {
  template <typename T>
  static void run(T* out, T value, int64_t n) {
    Loop::for_each(n, PRM_LAMBDA(int64_t i) { out[i] = value; });
  }
};

template <class Loop>
struct Convert {
  template <typename T>
  static void run(void* out, DType to, const T* inp, int64_t n) {
    switch (to) {
      case DType::f32: return convert_to(static_cast<float*>(out), inp, n);
      case DType::f64: return convert_to(static_cast<double*>(out), inp, n);
      case DType::i64: return convert_to(static_cast<int64_t*>(out), inp, n);
    }
  }
  template <typename To, typename From>
  static void convert_to(To* out, const From* inp, int64_t n) {
    Loop::for_each(n, PRM_LAMBDA(int64_t i) { out[i] = static_cast<To>(inp[i]); });
  }
};

template <class Loop>
struct Axpy {
  template <typename T>
  static void run(T* out, T alpha, const T* inp, int64_t n) {
    Loop::for_each(n, PRM_LAMBDA(int64_t i) { out[i] += alpha * inp[i]; });
  }
};

}  // namespace prm
