// The CPU's one-sweep training batch norm (cpu::batch_norm_train_forward / _backward,
// kernels/batch_norm.h) against the kernels it strings together, each launched on its own
// (BatchNormStats, BatchNormFinalize, BatchNormApply; BatchNormBackwardReduce,
// BatchNormBackwardInput): bit for bit, for every epilogue and affine setting, in both float
// types, on shapes with a batch, odd plane sizes, planes longer than one block of the
// statistics, and [N, C] input.
#include <cstring>
#include <random>

#include "helpers.h"
#include "kernels/batch_norm.h"
#include "tensor/tensor.h"

using namespace prm;

namespace {

template <typename T>
std::vector<T> random_values(int64_t n, std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> v(static_cast<size_t>(n));
  for (T& x : v) x = static_cast<T>(u(rng));
  return v;
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), sizeof(T) * a.size()) == 0);
}

struct SweepCase {
  int64_t N, C, HW;
  bool affine, residual, relu;
};

template <typename T>
void check_sweep(const SweepCase& k) {
  CAPTURE(k.N);
  CAPTURE(k.C);
  CAPTURE(k.HW);
  CAPTURE(k.affine);
  CAPTURE(k.residual);
  CAPTURE(k.relu);
  std::mt19937_64 rng(static_cast<uint64_t>(k.N * 1000 + k.C * 10 + k.HW));
  const int64_t n = k.N * k.C * k.HW, C = k.C;
  // A mean far from zero next to a small spread, as after a ReLU'd layer with a bias.
  const std::vector<T> x = random_values<T>(n, rng, 2.0, 3.5);
  const std::vector<T> weight = random_values<T>(C, rng, -1.5, 1.5);
  const std::vector<T> bias = random_values<T>(C, rng, -1.0, 1.0);
  const std::vector<T> residual = random_values<T>(n, rng, -2.0, 2.0);
  const std::vector<T> dout = random_values<T>(n, rng, -1.0, 1.0);
  const std::vector<T> rm0 = random_values<T>(C, rng, -0.5, 0.5);
  const std::vector<T> rv0 = random_values<T>(C, rng, 0.5, 2.0);
  const T* w = k.affine ? weight.data() : nullptr;
  const T* b = k.affine ? bias.data() : nullptr;
  const T* res = k.residual ? residual.data() : nullptr;
  const double momentum = 0.1, eps = 1e-5;
  const Device cpu = Device::cpu;

  // The kernels one by one.
  std::vector<T> mean1(C), var1(C), inv1(C), rm1 = rm0, rv1 = rv0, out1(n);
  launch<BatchNormStats, T>(cpu, mean1.data(), var1.data(), x.data(), k.N, C, k.HW);
  launch<BatchNormFinalize, T>(cpu, inv1.data(), rm1.data(), rv1.data(), mean1.data(),
                               var1.data(), C, k.N * k.HW, momentum, eps);
  launch<BatchNormApply, T>(cpu, out1.data(), x.data(), mean1.data(), inv1.data(), w, b, res,
                            k.relu, k.N, C, k.HW);
  // The sweep.
  std::vector<T> mean2(C), var2(C), inv2(C), rm2 = rm0, rv2 = rv0, out2(n);
  cpu::batch_norm_train_forward(out2.data(), mean2.data(), var2.data(), inv2.data(), rm2.data(),
                                rv2.data(), x.data(), w, b, res, k.relu, k.N, C, k.HW, momentum,
                                eps);
  CHECK(same_bits(mean1, mean2));
  CHECK(same_bits(var1, var2));
  CHECK(same_bits(inv1, inv2));
  CHECK(same_bits(rm1, rm2));
  CHECK(same_bits(rv1, rv2));
  CHECK(same_bits(out1, out2));

  // Backward, gated by the forward's output when there is a ReLU.
  const T* gate = k.relu ? out1.data() : nullptr;
  std::vector<T> sg1(C), sgx1(C), dx1(n), dres1(k.residual ? n : 0);
  launch<BatchNormBackwardReduce, T>(cpu, sg1.data(), sgx1.data(), dout.data(), gate, x.data(),
                                     mean1.data(), inv1.data(), k.N, C, k.HW);
  launch<BatchNormBackwardInput, T>(cpu, dx1.data(), k.residual ? dres1.data() : nullptr,
                                    dout.data(), gate, x.data(), mean1.data(), inv1.data(), w,
                                    sg1.data(), sgx1.data(), true, k.N, C, k.HW, k.N * k.HW);
  std::vector<T> sg2(C), sgx2(C), dx2(n), dres2(k.residual ? n : 0);
  cpu::batch_norm_train_backward(dx2.data(), k.residual ? dres2.data() : nullptr, sg2.data(),
                                 sgx2.data(), dout.data(), gate, x.data(), mean1.data(),
                                 inv1.data(), w, k.N, C, k.HW);
  CHECK(same_bits(sg1, sg2));
  CHECK(same_bits(sgx1, sgx2));
  CHECK(same_bits(dx1, dx2));
  CHECK(same_bits(dres1, dres2));
}

}  // namespace

TEST_CASE("batch_norm one-sweep CPU training kernels: the separate kernels' numbers, bit for bit") {
  // Shapes: a batch with odd planes; planes of several statistics blocks (256) and a partial
  // one; enough work to start the threads; [N, C] (HW = 1).
  const SweepCase shapes[] = {{3, 5, 7, false, false, false},
                              {2, 3, 600, false, false, false},
                              {1, 48, 1100, false, false, false},
                              {17, 9, 1, false, false, false}};
  for (SweepCase k : shapes)
    for (int flags = 0; flags < 8; ++flags) {
      k.affine = flags & 1;
      k.residual = flags & 2;
      k.relu = flags & 4;
      check_sweep<float>(k);
      check_sweep<double>(k);
    }
}
