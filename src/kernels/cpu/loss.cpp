// CPU twins of the loss kernels (kernels/loss.h); the math is loss_math.h.
#include "kernels/loss.h"

#include "kernels/cpu/parallel.h"
#include "kernels/loss_math.h"

namespace prm::cpu {

template <typename T>
void bce_with_logits(T* out, const T* logits, const T* targets, int64_t n) {
  parallel_for(n, [=](int64_t i) {
    out[i] = bce_with_logits_at(logits[i], targets[i]);
  });
}

template <typename T>
void bce_with_logits_backward(T* dlogits, const T* dloss, const T* logits, const T* targets,
                              T scale, int64_t n) {
  parallel_for(n, [=](int64_t i) {
    dlogits[i] = bce_with_logits_grad(logits[i], targets[i], dloss[0] * scale);
  });
}

template void bce_with_logits<float>(float*, const float*, const float*, int64_t);
template void bce_with_logits<double>(double*, const double*, const double*, int64_t);
template void bce_with_logits_backward<float>(float*, const float*, const float*, const float*,
                                              float, int64_t);
template void bce_with_logits_backward<double>(double*, const double*, const double*,
                                               const double*, double, int64_t);

}  // namespace prm::cpu
