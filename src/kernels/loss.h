// Loss kernels. CPU twins in cpu/loss.cpp, CUDA twins in cuda/loss.cu, same signatures; the math
// is loss_math.h. Both WRITE their output.
//   bce_with_logits:          out[i] = max(x,0) - x y + log1p(exp(-|x|)), x = logits[i],
//                             y = targets[i] (the op then takes the mean)
//   bce_with_logits_backward: dlogits[i] = dloss[0] * scale * (sigmoid(x) - y); dloss points at
//                             the scalar upstream gradient on the same device (read in the
//                             kernel, so there is no host round trip), scale = 1/n of the mean.
#pragma once
#include <cstdint>

namespace prm::cpu {
template <typename T>
void bce_with_logits(T* out, const T* logits, const T* targets, int64_t n);
template <typename T>
void bce_with_logits_backward(T* dlogits, const T* dloss, const T* logits, const T* targets,
                              T scale, int64_t n);
}  // namespace prm::cpu

namespace prm::cuda {
template <typename T>
void bce_with_logits(T* out, const T* logits, const T* targets, int64_t n);
template <typename T>
void bce_with_logits_backward(T* dlogits, const T* dloss, const T* logits, const T* targets,
                              T scale, int64_t n);
}  // namespace prm::cuda
