// ConstantWeights (tensor/ops/conv2d.h): inside a scope the CPU convolution forward packs each
// weight tensor once and reuses the pack. The numbers must be those without a scope, to the bit,
// on the first call (which packs) and the later ones (which reuse), for each way the forward
// runs (a 1x1 GEMM, the implicit-im2col GEMM with strides and large windows, Winograd) and the
// fused inference batch norm; two weight tensors of one shape must not share a pack (nor a new
// tensor a freed one's); the packs are held while any scope lives and freed after the last.
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "helpers.h"
#include "kernels/cpu_isa.h"
#include "tensor/ops/batch_norm.h"
#include "tensor/ops/conv2d.h"

using namespace prm;

namespace {

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.numel() * dtype_size(a.dtype())) == 0;
}

struct ConvCase {
  const char* name;
  int64_t C, O, H, k, stride, pad;
};

// 1x1; 3x3 with few channels (the implicit GEMM); 3x3 with 64 channels and 256 tiles (Winograd);
// 3x3 stride 2; 7x7 stride 2 (the stem's shape, smaller).
const ConvCase kCases[] = {{"1x1", 40, 72, 19, 1, 1, 0},
                           {"3x3 direct", 8, 24, 17, 3, 1, 1},
                           {"3x3 winograd", 64, 64, 32, 3, 1, 1},
                           {"3x3 stride 2", 24, 40, 21, 3, 2, 1},
                           {"7x7 stride 2", 3, 16, 30, 7, 2, 3}};

}  // namespace

TEST_CASE("ConstantWeights: the forward's bits without a scope, on the packing call and after") {
  std::mt19937_64 rng(3);
  for (DType dtype : {DType::f32, DType::f64})
    for (const ConvCase& c : kCases) {
      CAPTURE(c.name);
      CAPTURE(dtype_name(dtype));
      Conv2dOptions opt;
      opt.stride = c.stride;
      opt.padding = c.pad;
      const Tensor x = Tensor::randn({2, c.C, c.H, c.H}, rng, dtype);
      const Tensor w = Tensor::randn({c.O, c.C, c.k, c.k}, rng, dtype);
      const Tensor gamma = Tensor::randn({c.O}, rng, dtype), beta = Tensor::randn({c.O}, rng, dtype);
      const Tensor mean = Tensor::randn({c.O}, rng, dtype);
      const Tensor var = Tensor::full({c.O}, 0.7, dtype);
      BatchNormEpilogue epilogue;
      epilogue.relu = true;
      const Tensor y_ref = conv2d_forward(x, w, Tensor(), opt);
      const Tensor bn_ref =
          conv2d_batch_norm_eval_forward(x, w, opt, gamma, beta, mean, var, 1e-5, epilogue);
      CHECK(ConstantWeights::packed_bytes() == 0);
      {
        const ConstantWeights scope;
        for (int call = 0; call < 2; ++call) {
          CAPTURE(call);
          CHECK(same_bits(conv2d_forward(x, w, Tensor(), opt), y_ref));
          CHECK(same_bits(
              conv2d_batch_norm_eval_forward(x, w, opt, gamma, beta, mean, var, 1e-5, epilogue),
              bn_ref));
          if (c.k == 1)  // 72 rows, a multiple of every path's MR (8, 6, 4): no padding
            CHECK(ConstantWeights::packed_bytes() == dtype_size(dtype) * w.numel());
          else
            CHECK(ConstantWeights::packed_bytes() >= dtype_size(dtype) * w.numel());
        }
      }
      CHECK(ConstantWeights::packed_bytes() == 0);
    }
}

TEST_CASE("ConstantWeights: each weight tensor its own pack, a new tensor never an old one's") {
  std::mt19937_64 rng(4);
  for (const ConvCase& c : kCases) {
    CAPTURE(c.name);
    Conv2dOptions opt;
    opt.stride = c.stride;
    opt.padding = c.pad;
    const Tensor x = Tensor::randn({1, c.C, c.H, c.H}, rng);
    const Tensor w1 = Tensor::randn({c.O, c.C, c.k, c.k}, rng);
    const Tensor w2 = Tensor::randn({c.O, c.C, c.k, c.k}, rng);
    const Tensor y1 = conv2d_forward(x, w1, Tensor(), opt);
    const Tensor y2 = conv2d_forward(x, w2, Tensor(), opt);
    const ConstantWeights scope;
    CHECK(same_bits(conv2d_forward(x, w1, Tensor(), opt), y1));
    const size_t one = ConstantWeights::packed_bytes();
    CHECK(same_bits(conv2d_forward(x, w2, Tensor(), opt), y2));
    CHECK(ConstantWeights::packed_bytes() == 2 * one);
    CHECK(same_bits(conv2d_forward(x, w1, Tensor(), opt), y1));
    // A weight tensor made, used and dropped; then another of the same shape and other values:
    // the dropped one's pack keeps its storage, so the new one cannot be mistaken for it.
    for (int round = 0; round < 3; ++round) {
      const Tensor w = Tensor::randn({c.O, c.C, c.k, c.k}, rng);
      const Tensor expected = [&] {
        Tensor copy = Tensor::empty(w.shape(), w.dtype());
        std::memcpy(copy.raw_data(), w.raw_data(), w.numel() * sizeof(float));
        return copy;
      }();
      const Tensor y = conv2d_forward(x, w, Tensor(), opt);
      CHECK(same_bits(y, conv2d_forward(x, expected, Tensor(), opt)));
    }
  }
}

TEST_CASE("ConstantWeights: nested scopes keep the packs until the last ends; another ISA repacks") {
  std::mt19937_64 rng(5);
  const ConvCase& c = kCases[2];  // Winograd's
  Conv2dOptions opt;
  opt.padding = 1;
  const Tensor x = Tensor::randn({1, c.C, c.H, c.H}, rng);
  const Tensor w = Tensor::randn({c.O, c.C, 3, 3}, rng);
  const Tensor y_ref = conv2d_forward(x, w, Tensor(), opt);
  // Each other path's numbers, without a scope.
  const CpuIsa saved = cpu_isa_active();
  std::vector<std::pair<CpuIsa, Tensor>> other_paths;
  for (CpuIsa isa : {CpuIsa::avx2, CpuIsa::scalar}) {
    if (!cpu_isa_supported(isa) || isa == saved) continue;
    set_cpu_isa(isa);
    other_paths.emplace_back(isa, conv2d_forward(x, w, Tensor(), opt));
    set_cpu_isa(saved);
  }
  {
    const ConstantWeights outer;
    {
      const ConstantWeights inner;
      CHECK(same_bits(conv2d_forward(x, w, Tensor(), opt), y_ref));
    }
    const size_t held = ConstantWeights::packed_bytes();
    CHECK(held > 0);
    CHECK(same_bits(conv2d_forward(x, w, Tensor(), opt), y_ref));
    CHECK(ConstantWeights::packed_bytes() == held);  // reused, not packed again
    // A pack fits the path it was made on: under another, the forward packs anew, with that
    // path's numbers.
    size_t before = held;
    for (const auto& [isa, expected] : other_paths) {
      CAPTURE(cpu_isa_name(isa));
      set_cpu_isa(isa);
      CHECK(same_bits(conv2d_forward(x, w, Tensor(), opt), expected));
      CHECK(ConstantWeights::packed_bytes() > before);
      before = ConstantWeights::packed_bytes();
      set_cpu_isa(saved);
    }
    CHECK(same_bits(conv2d_forward(x, w, Tensor(), opt), y_ref));
  }
  CHECK(ConstantWeights::packed_bytes() == 0);
}
