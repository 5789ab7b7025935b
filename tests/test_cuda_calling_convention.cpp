// The kernels written once for both devices, run on the host under CUDA's calling convention.
//
// CpuLoop (kernels/cpu/loop.h) calls a for_each_run body once per whole row, f(row, 0, len), and
// each call walks its row in order. CudaLoop (kernels/cuda/loop.cuh) calls it once per ELEMENT,
// f(row, i, i + 1), all the calls at once in no particular order. A body that carries state
// across [begin, end), takes begin == 0 to mean "this call owns the row", or writes outside
// [begin, end) gives the right numbers under CpuLoop and wrong ones on a GPU, and no CPU test
// sees it. CudaLikeLoop below calls the bodies the way CudaLoop does (one element per
// for_each_run call, rows interleaved, indices in scrambled orders), serially on the host, and
// every kernel whose CUDA entry is the generic body of its header is compared, bit for bit, with
// the CPU's registered entry on random inputs and awkward shapes.
//
// Covered: the kernels registered in src/kernels/cuda/*.cu with the generic body of their header.
//   basic.cu        Fill (float, double, int64), Convert (float, double, int64 to each dtype), Axpy
//   elementwise.cu  Binary, Unary, BroadcastCopy, ReluBackward, SigmoidBackward,
//                   PowScalarBackward, CopyIntoSlice, CopyFromSlice
//   excitation.cu   MinStride, ExcitationInverse
//   im2col.cu       Im2col, Col2im, AddChannelBias
//   loss.cu         BceWithLogits, BceWithLogitsBackward
//   batch_norm.cu   BatchNormFinalize, BatchNormApply, BatchNormBackwardInput
//   peaks.cu        PeakStimulationBackward
//   pooling.cu      AdaptiveAvgPool2dForward, AdaptiveAvgPool2dBackward
//   reduce.cu       SumDims
//   sgd.cu          SgdStep
//   upsample.cu     UpsampleBilinearForward, UpsampleBilinearBackward
//   bf16.cu         RoundToBf16, ToBf16Bits (registered for float only, as here)
// Skipped: CUDA defines its own body for these in the .cu (a block reduction, a library call),
// which a host test can neither compile nor run; their parity is the GPU tests' job.
//   BatchNormStats, BatchNormBackwardReduce   block reductions per channel (cuda/batch_norm.cu)
//   MaxPool2dForward, MaxPool2dBackward       own bodies in cuda/pooling.cu
//   PeakStimulationForward                    radix-select median per block (cuda/peaks.cu)
//   SumAll                                    two-pass block tree (cuda/reduce.cu)
//   Gemm, GemmStridedBatched                  cuBLAS (cuda/gemm.cu)
//   the cuDNN convolution                     not a kernel struct (cuda/conv_cudnn.cu)
//
// The CPU side is always the registered CPU entry, launch<K, T>(Device::cpu, ...): the generic
// body under CpuLoop, or the CPU's own specialisation where cpu/*.cpp defines one (SgdStep: the
// same sgd_update_element per element in blocks; UpsampleBilinearBackward: a scatter adding the
// same terms in the same order as the gather). Naming K<CpuLoop> here would instantiate the
// generic template in place of a specialisation that lives only in a .cpp. Every comparison is
// bitwise: under either policy each output element comes from the same per-element function
// with the same operations in the same order (both specialisations included, as their comments
// say), and this file is compiled with the library's flags (-ffp-contract=off), so any
// difference is a body that depends on how it is called.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <numeric>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "helpers.h"
#include "kernels/basic.h"
#include "kernels/batch_norm.h"
#include "kernels/bf16.h"
#include "kernels/cpu/loop.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_layout.h"
#include "kernels/excitation.h"
#include "kernels/im2col.h"
#include "kernels/loss.h"
#include "kernels/peaks.h"
#include "kernels/pooling.h"
#include "kernels/reduce.h"
#include "kernels/sgd.h"
#include "kernels/upsample.h"

using namespace prm;

namespace {

// ---- the loop policy ----

// CudaLoop's calling convention on the host, one call at a time. The order of the calls is one
// of kOrders fixed scrambles of the index range (a GPU gives no order at all, and a body that is
// only right for some orders should meet one it is wrong for): 0 reversed, 1 a stride coprime to
// n (i -> (i * p + q) mod n, neighbours land far apart), 2 a shuffle with a fixed seed.
constexpr int kOrders = 3;

struct CudaLikeLoop {
  static inline int order = 0;

  // The k-th index visited, for every k in [0, n): a permutation of [0, n).
  static std::vector<int64_t> visiting_order(int64_t n) {
    std::vector<int64_t> at(static_cast<size_t>(n));
    if (order == 0) {
      for (int64_t k = 0; k < n; ++k) at[k] = n - 1 - k;
    } else if (order == 1) {
      int64_t p = n / 2 + n / 8 + 1;  // about 5/8 of n, then the next value coprime to n
      while (std::gcd(p, n) != 1) ++p;
      const int64_t q = n / 3;
      for (int64_t k = 0; k < n; ++k) at[k] = (k * (p % n) + q) % n;
    } else {
      std::iota(at.begin(), at.end(), int64_t(0));
      std::mt19937_64 rng(0x5eedULL + static_cast<uint64_t>(n));
      std::shuffle(at.begin(), at.end(), rng);
    }
    return at;
  }

  // f(i) for every i in [0, n) once, in the scrambled order; `cost` only matters on the CPU.
  template <typename F>
  static void for_each(int64_t n, F f, int64_t /*cost*/ = 1) {
    if (n <= 0) return;  // as CudaLoop: no launch
    const F& call = f;   // a CUDA thread calls the lambda as a const object too
    for (int64_t i : visiting_order(n)) call(i);
  }

  // f(row, i, i + 1) for every element of rows x [0, len), as CudaLoop, one element per call.
  // The flat index is taken column-major before scrambling, so that even the reversed order
  // interleaves the rows instead of finishing one row before the next.
  template <typename F>
  static void for_each_run(int64_t rows, int64_t len, F f) {
    if (len <= 0) return;
    for_each(rows * len, [&f, rows](int64_t k) {
      const int64_t row = k % rows, i = k / rows;
      f(row, i, i + 1);
    });
  }
};

// ---- running both ----

// The registered CPU entry (generic body or the CPU's specialisation).
template <template <class> class K, typename T, typename... Args>
void on_cpu(Args&&... args) {
  launch<K, T>(Device::cpu, std::forward<Args>(args)...);
}

// The generic body under CUDA's calling convention.
template <template <class> class K, typename T, typename... Args>
void cuda_like(Args&&... args) {
  K<CudaLikeLoop>::template run<T>(std::forward<Args>(args)...);
}

// check() once per visiting order, the order reported with any failure.
template <typename F>
void in_every_order(F check) {
  for (int order = 0; order < kOrders; ++order) {
    CudaLikeLoop::order = order;
    CAPTURE(order);
    check();
  }
}

template <typename T>
std::string show(T v) {
  std::ostringstream s;
  if constexpr (std::is_floating_point_v<T>)
    s << std::setprecision(std::numeric_limits<T>::max_digits10) << v;
  else
    s << +v;
  return s.str();
}

// got and want hold the same bits, element by element; the first difference is reported.
template <typename T>
void expect_same_bits(const std::vector<T>& got, const std::vector<T>& want, const char* what) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0) {
      std::ostringstream message;
      message << what << ": element " << i << " of " << got.size() << ": CUDA-like "
              << show(got[i]) << ", CPU " << show(want[i]);
      FAIL_CHECK(message.str());
      return;
    }
  }
  CHECK(true);  // one assertion per comparison: doctest's count is the number of comparisons
}

// ---- inputs ----

template <typename T>
std::vector<T> uniform(std::mt19937& rng, int64_t n, double lo = -2.0, double hi = 2.0) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> v(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (T& x : v) x = static_cast<T>(d(rng));
  return v;
}

// A value no kernel computes here: every overwritten output starts as it on both sides, so an
// element one side writes and the other leaves shows.
template <typename T>
constexpr T kSentinel = T(-7777.25);

template <typename T>
std::vector<T> sentinel(int64_t n) {
  return std::vector<T>(static_cast<size_t>(std::max<int64_t>(n, 0)), kSentinel<T>);
}

// The pointer of v, or null when `use` is false (the optional operands).
template <typename T>
const T* maybe(const std::vector<T>& v, bool use) {
  return use ? v.data() : nullptr;
}

// Lengths that are not multiples of 8 or 16, 1, 0, and a few long enough for the CPU's threads
// and blocks (SgdStep's 4096) to matter.
const int64_t kLengths[] = {0, 1, 2, 7, 15, 17, 33, 255, 1001, 4099, 40003};

Strides walk_of(const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides) {
  Strides s;
  s.ndim = static_cast<int>(sizes.size());
  for (int d = 0; d < s.ndim; ++d) {
    s.size[d] = sizes[d];
    s.stride[d] = strides[d];
  }
  return s;
}

int64_t numel(const std::vector<int64_t>& sizes) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  return n;
}

// Elements a walk with these (non-negative) strides can reach: the buffer it reads.
int64_t reach(const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides) {
  int64_t last = 0;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 0) return 1;
    last += (sizes[d] - 1) * strides[d];
  }
  return last + 1;
}

// Output sizes with the strides of two operands walking it: broadcasts (stride 0), a transposed
// and a strided view (the general step), single rows, size-1 dims, an empty tensor.
struct Walk2 {
  std::vector<int64_t> sizes, sa, sb;
};
const Walk2 kBinaryWalks[] = {
    {{37}, {1}, {1}},                     // flat
    {{3, 5, 7}, {35, 7, 1}, {0, 1, 0}},   // [3, 5, 7] op [5, 1]
    {{6, 13}, {13, 1}, {1, 0}},           // a run against a broadcast value
    {{6, 13}, {1, 0}, {0, 1}},            // a broadcast value against a run
    {{4, 9}, {9, 1}, {0, 1}},             // two contiguous runs, b repeated over rows
    {{5, 7}, {1, 5}, {7, 1}},             // a transposed: the general step
    {{1, 29}, {29, 1}, {0, 0}},           // one row against a scalar
    {{3, 5, 4}, {4, 0, 1}, {0, 1, 0}},    // [3, 1, 4] op [1, 5, 1]
    {{2, 3, 1, 17}, {51, 17, 17, 1}, {0, 17, 17, 1}},
    {{9, 1}, {1, 1}, {0, 0}},             // a column against a scalar
    {{11}, {2}, {1}},                     // every other element of a
    {{1, 1}, {1, 1}, {1, 1}},             // a single element
    {{0, 3}, {3, 1}, {0, 1}},             // empty
};

}  // namespace

// ---- basic.h ----

TEST_CASE_TEMPLATE("cuda calling convention: Fill, Axpy", T, float, double) {
  std::mt19937 rng(1);
  for (int64_t n : kLengths) {
    CAPTURE(n);
    const T value = static_cast<T>(0.375), alpha = static_cast<T>(-1.3);
    std::vector<T> want = sentinel<T>(n);
    on_cpu<Fill, T>(want.data(), value, n);
    in_every_order([&] {
      std::vector<T> got = sentinel<T>(n);
      cuda_like<Fill, T>(got.data(), value, n);
      expect_same_bits(got, want, "Fill");
    });
    const std::vector<T> inp = uniform<T>(rng, n), start = uniform<T>(rng, n);
    std::vector<T> acc = start;
    on_cpu<Axpy, T>(acc.data(), alpha, inp.data(), n);
    in_every_order([&] {
      std::vector<T> got = start;
      cuda_like<Axpy, T>(got.data(), alpha, inp.data(), n);
      expect_same_bits(got, acc, "Axpy");
    });
  }
}

TEST_CASE("cuda calling convention: Fill<int64>") {
  for (int64_t n : kLengths) {
    CAPTURE(n);
    std::vector<int64_t> want(n, -5), got_init(n, -5);
    on_cpu<Fill, int64_t>(want.data(), int64_t(123456789012), n);
    in_every_order([&] {
      std::vector<int64_t> got = got_init;
      cuda_like<Fill, int64_t>(got.data(), int64_t(123456789012), n);
      expect_same_bits(got, want, "Fill<int64>");
    });
  }
}

namespace {

// Convert from T to each dtype: the output as raw bytes (8 per element, enough for any dtype).
template <typename T>
void check_convert(const std::vector<T>& inp) {
  const int64_t n = static_cast<int64_t>(inp.size());
  for (DType to : {DType::f32, DType::f64, DType::i64}) {
    CAPTURE(static_cast<int>(to));
    std::vector<unsigned char> want(static_cast<size_t>(n) * 8 + 8, 0xa5);
    on_cpu<Convert, T>(static_cast<void*>(want.data()), to, inp.data(), n);
    in_every_order([&] {
      std::vector<unsigned char> got(static_cast<size_t>(n) * 8 + 8, 0xa5);
      cuda_like<Convert, T>(static_cast<void*>(got.data()), to, inp.data(), n);
      expect_same_bits(got, want, "Convert");
    });
  }
}

}  // namespace

TEST_CASE("cuda calling convention: Convert from float, double and int64") {
  std::mt19937 rng(2);
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(13), int64_t(1027)}) {
    CAPTURE(n);
    check_convert(uniform<float>(rng, n, -1e6, 1e6));  // in int64's range
    check_convert(uniform<double>(rng, n, -1e12, 1e12));
    std::vector<int64_t> ints(n);
    for (int64_t& v : ints) v = static_cast<int64_t>(rng()) * 40503 - (int64_t(1) << 40);
    check_convert(ints);
  }
}

// ---- elementwise.h ----

TEST_CASE_TEMPLATE("cuda calling convention: Binary", T, float, double) {
  std::mt19937 rng(3);
  for (const Walk2& w : kBinaryWalks) {
    const int64_t n = numel(w.sizes);
    CAPTURE(n);
    CAPTURE(w.sizes.size());
    const Strides sa = walk_of(w.sizes, w.sa), sb = walk_of(w.sizes, w.sb);
    const std::vector<T> a = uniform<T>(rng, reach(w.sizes, w.sa));
    const std::vector<T> b = uniform<T>(rng, reach(w.sizes, w.sb), 0.25, 3.0);
    for (BinaryOp op : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div}) {
      CAPTURE(static_cast<int>(op));
      std::vector<T> want = sentinel<T>(n);
      on_cpu<Binary, T>(op, want.data(), a.data(), sa, b.data(), sb, n);
      in_every_order([&] {
        std::vector<T> got = sentinel<T>(n);
        cuda_like<Binary, T>(op, got.data(), a.data(), sa, b.data(), sb, n);
        expect_same_bits(got, want, "Binary");
      });
    }
  }
}

TEST_CASE_TEMPLATE("cuda calling convention: Unary and the activation gradients", T, float,
                   double) {
  std::mt19937 rng(4);
  for (int64_t n : kLengths) {
    CAPTURE(n);
    std::vector<T> x = uniform<T>(rng, n, -6.0, 6.0);
    if (n > 2) x[1] = T(0);  // relu's kink
    const std::vector<T> positive = uniform<T>(rng, n, 0.01, 4.0);
    const std::vector<T> dout = uniform<T>(rng, n);
    for (UnaryOp op : {UnaryOp::add_scalar, UnaryOp::mul_scalar, UnaryOp::pow_scalar,
                       UnaryOp::relu, UnaryOp::sigmoid}) {
      CAPTURE(static_cast<int>(op));
      const std::vector<T>& inp = op == UnaryOp::pow_scalar ? positive : x;
      const T scalar = static_cast<T>(op == UnaryOp::pow_scalar ? 1.7 : -0.61);
      std::vector<T> want = sentinel<T>(n);
      on_cpu<Unary, T>(op, want.data(), inp.data(), scalar, n);
      in_every_order([&] {
        std::vector<T> got = sentinel<T>(n);
        cuda_like<Unary, T>(op, got.data(), inp.data(), scalar, n);
        expect_same_bits(got, want, "Unary");
      });
    }
    std::vector<T> want = sentinel<T>(n);
    on_cpu<ReluBackward, T>(want.data(), dout.data(), x.data(), n);
    in_every_order([&] {
      std::vector<T> got = sentinel<T>(n);
      cuda_like<ReluBackward, T>(got.data(), dout.data(), x.data(), n);
      expect_same_bits(got, want, "ReluBackward");
    });
    const std::vector<T> y = uniform<T>(rng, n, 0.0, 1.0);
    want = sentinel<T>(n);
    on_cpu<SigmoidBackward, T>(want.data(), dout.data(), y.data(), n);
    in_every_order([&] {
      std::vector<T> got = sentinel<T>(n);
      cuda_like<SigmoidBackward, T>(got.data(), dout.data(), y.data(), n);
      expect_same_bits(got, want, "SigmoidBackward");
    });
    for (double p : {0.0, 2.5, 3.0, -1.5}) {
      CAPTURE(p);
      want = sentinel<T>(n);
      on_cpu<PowScalarBackward, T>(want.data(), dout.data(), positive.data(), T(p), n);
      in_every_order([&] {
        std::vector<T> got = sentinel<T>(n);
        cuda_like<PowScalarBackward, T>(got.data(), dout.data(), positive.data(), T(p), n);
        expect_same_bits(got, want, "PowScalarBackward");
      });
    }
  }
}

TEST_CASE_TEMPLATE("cuda calling convention: BroadcastCopy", T, float, double) {
  std::mt19937 rng(5);
  struct Case {
    std::vector<int64_t> sizes, strides;
  };
  const Case cases[] = {
      {{5, 7}, {7, 1}},           // flat
      {{5, 7}, {1, 0}},           // each row one value (a [5, 1] expanded)
      {{3, 4, 5}, {0, 5, 1}},     // a [4, 5] repeated
      {{6, 5}, {1, 6}},           // transposed: the general step
      {{1, 1}, {1, 1}},           // one element
      {{1, 23}, {0, 0}},          // one row of one value
      {{4, 1, 3}, {0, 0, 1}},     // a [3] repeated, a size-1 dim between
      {{17, 3}, {0, 1}},          // rows of 3
      {{13, 1}, {1, 1}},          // a column: flat once the size-1 dim is dropped
      {{2, 9}, {18, 2}},          // every other element
      {{0, 4}, {4, 1}},           // empty
  };
  for (const Case& c : cases) {
    const int64_t n = numel(c.sizes);
    CAPTURE(n);
    const Strides s = walk_of(c.sizes, c.strides);
    const std::vector<T> inp = uniform<T>(rng, reach(c.sizes, c.strides));
    std::vector<T> want = sentinel<T>(n);
    on_cpu<BroadcastCopy, T>(want.data(), inp.data(), s, n);
    in_every_order([&] {
      std::vector<T> got = sentinel<T>(n);
      cuda_like<BroadcastCopy, T>(got.data(), inp.data(), s, n);
      expect_same_bits(got, want, "BroadcastCopy");
    });
  }
}

TEST_CASE_TEMPLATE("cuda calling convention: CopyIntoSlice, CopyFromSlice", T, float, double) {
  std::mt19937 rng(6);
  // (outer, slice width, whole width, offset): rows of one element, a single row, the slice
  // being the whole row, no rows, empty slices.
  struct Case {
    int64_t outer, inner_slice, inner_whole, offset;
  };
  const Case cases[] = {{7, 5, 12, 3}, {1, 9, 9, 0},  {13, 1, 4, 2}, {6, 4, 4, 0},
                        {1, 1, 1, 0},  {0, 3, 5, 1},  {5, 0, 3, 1},  {33, 17, 40, 23}};
  for (const Case& c : cases) {
    CAPTURE(c.outer);
    CAPTURE(c.inner_slice);
    CAPTURE(c.offset);
    const int64_t slice = c.outer * c.inner_slice, whole = c.outer * c.inner_whole;
    const std::vector<T> part = uniform<T>(rng, slice), full = uniform<T>(rng, whole);
    const std::vector<T> scale = uniform<T>(rng, slice), row_scale = uniform<T>(rng, c.outer);
    const std::vector<T> start = uniform<T>(rng, whole);  // the columns outside the slice stay
    for (int variant = 0; variant < 4; ++variant) {
      CAPTURE(variant);
      const T* s = maybe(scale, variant & 1);
      const T* rs = maybe(row_scale, (variant & 2) != 0);
      std::vector<T> want = start;
      on_cpu<CopyIntoSlice, T>(want.data(), part.data(), s, c.outer, c.inner_slice,
                               c.inner_whole, c.offset, rs);
      in_every_order([&] {
        std::vector<T> got = start;
        cuda_like<CopyIntoSlice, T>(got.data(), part.data(), s, c.outer, c.inner_slice,
                                    c.inner_whole, c.offset, rs);
        expect_same_bits(got, want, "CopyIntoSlice");
      });
      if (variant >= 2) continue;  // CopyFromSlice has no row scale
      want = sentinel<T>(slice);
      on_cpu<CopyFromSlice, T>(want.data(), full.data(), s, c.outer, c.inner_slice,
                               c.inner_whole, c.offset);
      in_every_order([&] {
        std::vector<T> got = sentinel<T>(slice);
        cuda_like<CopyFromSlice, T>(got.data(), full.data(), s, c.outer, c.inner_slice,
                                    c.inner_whole, c.offset);
        expect_same_bits(got, want, "CopyFromSlice");
      });
    }
  }
}

// ---- excitation.h ----

TEST_CASE_TEMPLATE("cuda calling convention: MinStride, ExcitationInverse", T, float, double) {
  std::mt19937 rng(7);
  struct Case {
    int64_t n, parts;
  };
  // parts as the op applies it (65536, 256, 1) and awkward ones; parts = n; one part.
  const Case cases[] = {{1000, 256}, {7, 7}, {5, 1}, {300, 256}, {70001, 65536},
                        {17, 3},     {1, 1}, {256, 256}};
  for (const Case& c : cases) {
    CAPTURE(c.n);
    CAPTURE(c.parts);
    const std::vector<T> inp = uniform<T>(rng, c.n, -50.0, 50.0);
    std::vector<T> want = sentinel<T>(c.parts);
    on_cpu<MinStride, T>(want.data(), inp.data(), c.n, c.parts);
    in_every_order([&] {
      std::vector<T> got = sentinel<T>(c.parts);
      cuda_like<MinStride, T>(got.data(), inp.data(), c.n, c.parts);
      expect_same_bits(got, want, "MinStride");
    });
  }
  for (int64_t n : kLengths) {
    CAPTURE(n);
    std::vector<T> z = uniform<T>(rng, n, -1.0, 1.0);
    for (int64_t i = 0; i < n; i += 5) z[i] = static_cast<T>(i % 3 == 0 ? 1e-11 : 0.0);
    std::vector<T> want = sentinel<T>(n);
    on_cpu<ExcitationInverse, T>(want.data(), z.data(), n);
    in_every_order([&] {
      std::vector<T> got = sentinel<T>(n);
      cuda_like<ExcitationInverse, T>(got.data(), z.data(), n);
      expect_same_bits(got, want, "ExcitationInverse");
    });
  }
}

// ---- im2col.h ----

namespace {

// Windows of every stride class the kernels specialise (1, 2 and the general one), padding
// wider than the kernel's reach, dilation, on images down to 1 x 1.
template <typename F>
void for_each_conv_shape(F f) {
  struct Image {
    int64_t N, C, H, W;
  };
  const Image images[] = {{1, 1, 5, 7}, {2, 3, 6, 1}, {1, 2, 1, 1}, {2, 1, 9, 4}, {1, 1, 3, 17}};
  const int64_t kernels[][2] = {{1, 1}, {3, 3}, {2, 3}};
  for (const Image& im : images)
    for (const auto& k : kernels)
      for (int64_t stride : {1, 2, 3})
        for (int64_t pad : {0, 1, 2})
          for (int64_t dilation : {1, 2}) {
            ConvWindow win;
            win.kh = k[0];
            win.kw = k[1];
            win.stride = stride;
            win.pad = pad;
            win.dilation = dilation;
            if (win.out_h(im.H) <= 0 || win.out_w(im.W) <= 0) continue;
            f(im.N, im.C, im.H, im.W, win);
          }
}

}  // namespace

TEST_CASE_TEMPLATE("cuda calling convention: Im2col, Col2im", T, float, double) {
  std::mt19937 rng(8);
  int shapes = 0;
  for_each_conv_shape([&](int64_t N, int64_t C, int64_t H, int64_t W, ConvWindow win) {
    ++shapes;
    CAPTURE(N);
    CAPTURE(C);
    CAPTURE(H);
    CAPTURE(W);
    CAPTURE(win.kh);
    CAPTURE(win.kw);
    CAPTURE(win.stride);
    CAPTURE(win.pad);
    CAPTURE(win.dilation);
    const int64_t image = N * C * H * W;
    const int64_t cols = N * C * win.kh * win.kw * win.out_h(H) * win.out_w(W);
    const std::vector<T> x = uniform<T>(rng, image);
    std::vector<T> want = sentinel<T>(cols);
    on_cpu<Im2col, T>(want.data(), x.data(), N, C, H, W, win);
    in_every_order([&] {
      std::vector<T> got = sentinel<T>(cols);
      cuda_like<Im2col, T>(got.data(), x.data(), N, C, H, W, win);
      expect_same_bits(got, want, "Im2col");
    });
    const std::vector<T> dcol = uniform<T>(rng, cols);
    const std::vector<T> scale = uniform<T>(rng, image);
    // No scale; one scale per image; one [C, H, W] scale shared by the batch (scale_image 0).
    for (int variant = 0; variant < 3; ++variant) {
      CAPTURE(variant);
      const T* s = variant == 0 ? nullptr : scale.data();
      const int64_t scale_image = variant == 1 ? C * H * W : 0;
      want = sentinel<T>(image);
      on_cpu<Col2im, T>(want.data(), dcol.data(), N, C, H, W, win, s, scale_image);
      in_every_order([&] {
        std::vector<T> got = sentinel<T>(image);
        cuda_like<Col2im, T>(got.data(), dcol.data(), N, C, H, W, win, s, scale_image);
        expect_same_bits(got, want, "Col2im");
      });
    }
  });
  CHECK(shapes > 100);
}

namespace {

// Shapes [N, C, HW] of the per-channel kernels: planes of one element, one image, one channel.
struct Planes {
  int64_t N, C, HW;
};
const Planes kPlanes[] = {{2, 3, 17}, {1, 1, 1}, {3, 5, 1}, {1, 4, 33},
                          {4, 2, 9},  {1, 1, 50}, {7, 1, 3}, {2, 3, 0}};

}  // namespace

TEST_CASE_TEMPLATE("cuda calling convention: AddChannelBias", T, float, double) {
  std::mt19937 rng(9);
  for (const Planes& p : kPlanes) {
    CAPTURE(p.N);
    CAPTURE(p.C);
    CAPTURE(p.HW);
    const int64_t n = p.N * p.C * p.HW;
    const std::vector<T> bias = uniform<T>(rng, p.C), start = uniform<T>(rng, n);
    std::vector<T> want = start;
    on_cpu<AddChannelBias, T>(want.data(), bias.data(), p.N, p.C, p.HW);
    in_every_order([&] {
      std::vector<T> got = start;
      cuda_like<AddChannelBias, T>(got.data(), bias.data(), p.N, p.C, p.HW);
      expect_same_bits(got, want, "AddChannelBias");
    });
  }
}

// ---- loss.h ----

TEST_CASE_TEMPLATE("cuda calling convention: BceWithLogits and its backward", T, float, double) {
  std::mt19937 rng(10);
  for (int64_t n : kLengths) {
    CAPTURE(n);
    const std::vector<T> logits = uniform<T>(rng, n, -30.0, 30.0);
    const std::vector<T> targets = uniform<T>(rng, n, 0.0, 1.0);
    std::vector<T> want = sentinel<T>(n);
    on_cpu<BceWithLogits, T>(want.data(), logits.data(), targets.data(), n);
    in_every_order([&] {
      std::vector<T> got = sentinel<T>(n);
      cuda_like<BceWithLogits, T>(got.data(), logits.data(), targets.data(), n);
      expect_same_bits(got, want, "BceWithLogits");
    });
    const T dloss = static_cast<T>(0.8125), scale = static_cast<T>(1.0 / std::max<int64_t>(n, 1));
    want = sentinel<T>(n);
    on_cpu<BceWithLogitsBackward, T>(want.data(), &dloss, logits.data(), targets.data(), scale, n);
    in_every_order([&] {
      std::vector<T> got = sentinel<T>(n);
      cuda_like<BceWithLogitsBackward, T>(got.data(), &dloss, logits.data(), targets.data(),
                                          scale, n);
      expect_same_bits(got, want, "BceWithLogitsBackward");
    });
  }
}

// ---- batch_norm.h ----

TEST_CASE_TEMPLATE("cuda calling convention: BatchNormFinalize", T, float, double) {
  std::mt19937 rng(11);
  for (int64_t C : {1, 7, 19}) {
    for (int64_t M : {2, 51}) {
      for (bool running : {false, true}) {
        CAPTURE(C);
        CAPTURE(M);
        CAPTURE(running);
        const std::vector<T> mean = uniform<T>(rng, C), var = uniform<T>(rng, C, 0.0, 3.0);
        const std::vector<T> rm0 = uniform<T>(rng, C), rv0 = uniform<T>(rng, C, 0.5, 2.0);
        std::vector<T> inv = sentinel<T>(C), rm = rm0, rv = rv0;
        on_cpu<BatchNormFinalize, T>(inv.data(), running ? rm.data() : nullptr,
                                     running ? rv.data() : nullptr, mean.data(), var.data(), C,
                                     M, 0.1, 1e-5);
        in_every_order([&] {
          std::vector<T> got_inv = sentinel<T>(C), got_rm = rm0, got_rv = rv0;
          cuda_like<BatchNormFinalize, T>(got_inv.data(), running ? got_rm.data() : nullptr,
                                          running ? got_rv.data() : nullptr, mean.data(),
                                          var.data(), C, M, 0.1, 1e-5);
          expect_same_bits(got_inv, inv, "BatchNormFinalize invstd");
          expect_same_bits(got_rm, rm, "BatchNormFinalize running_mean");
          expect_same_bits(got_rv, rv, "BatchNormFinalize running_var");
        });
      }
    }
  }
}

TEST_CASE_TEMPLATE("cuda calling convention: BatchNormApply", T, float, double) {
  std::mt19937 rng(12);
  for (const Planes& p : kPlanes) {
    const int64_t n = p.N * p.C * p.HW;
    const std::vector<T> x = uniform<T>(rng, n), residual = uniform<T>(rng, n);
    const std::vector<T> mean = uniform<T>(rng, p.C), invstd = uniform<T>(rng, p.C, 0.2, 3.0);
    const std::vector<T> weight = uniform<T>(rng, p.C), bias = uniform<T>(rng, p.C);
    // Every combination of the optional parts: weight, bias, residual, ReLU.
    for (int variant = 0; variant < 16; ++variant) {
      CAPTURE(p.N);
      CAPTURE(p.C);
      CAPTURE(p.HW);
      CAPTURE(variant);
      const T* w = maybe(weight, variant & 1);
      const T* b = maybe(bias, (variant & 2) != 0);
      const T* r = maybe(residual, (variant & 4) != 0);
      const bool relu = (variant & 8) != 0;
      std::vector<T> want = sentinel<T>(n);
      on_cpu<BatchNormApply, T>(want.data(), x.data(), mean.data(), invstd.data(), w, b, r, relu,
                                p.N, p.C, p.HW);
      in_every_order([&] {
        std::vector<T> got = sentinel<T>(n);
        cuda_like<BatchNormApply, T>(got.data(), x.data(), mean.data(), invstd.data(), w, b, r,
                                     relu, p.N, p.C, p.HW);
        expect_same_bits(got, want, "BatchNormApply");
      });
    }
  }
}

TEST_CASE_TEMPLATE("cuda calling convention: BatchNormBackwardInput, training and eval", T, float,
                   double) {
  std::mt19937 rng(13);
  for (const Planes& p : kPlanes) {
    const int64_t n = p.N * p.C * p.HW;
    const std::vector<T> x = uniform<T>(rng, n), dout = uniform<T>(rng, n);
    const std::vector<T> relu_out = uniform<T>(rng, n, -1.0, 1.0);  // about half gated off
    const std::vector<T> mean = uniform<T>(rng, p.C), invstd = uniform<T>(rng, p.C, 0.2, 3.0);
    const std::vector<T> weight = uniform<T>(rng, p.C);
    const std::vector<T> sum_dout = uniform<T>(rng, p.C), sum_dout_xhat = uniform<T>(rng, p.C);
    // Every combination of: dres, the ReLU gate, weight, training (eval: null sums, which the
    // body must not read).
    for (int variant = 0; variant < 16; ++variant) {
      CAPTURE(p.N);
      CAPTURE(p.C);
      CAPTURE(p.HW);
      CAPTURE(variant);
      const bool want_dres = (variant & 1) != 0, training = (variant & 8) != 0;
      const T* gate = maybe(relu_out, (variant & 2) != 0);
      const T* w = maybe(weight, (variant & 4) != 0);
      const T* sd = training ? sum_dout.data() : nullptr;
      const T* sdx = training ? sum_dout_xhat.data() : nullptr;
      const int64_t M = 3 * std::max<int64_t>(p.N * p.HW, 1);  // as a synchronised batch norm's
      std::vector<T> want = sentinel<T>(n), want_res = sentinel<T>(n);
      on_cpu<BatchNormBackwardInput, T>(want.data(), want_dres ? want_res.data() : nullptr,
                                        dout.data(), gate, x.data(), mean.data(), invstd.data(),
                                        w, sd, sdx, training, p.N, p.C, p.HW, M);
      in_every_order([&] {
        std::vector<T> got = sentinel<T>(n), got_res = sentinel<T>(n);
        cuda_like<BatchNormBackwardInput, T>(got.data(), want_dres ? got_res.data() : nullptr,
                                             dout.data(), gate, x.data(), mean.data(),
                                             invstd.data(), w, sd, sdx, training, p.N, p.C, p.HW,
                                             M);
        expect_same_bits(got, want, "BatchNormBackwardInput dinp");
        expect_same_bits(got_res, want_res, "BatchNormBackwardInput dres");
      });
    }
  }
}

// ---- peaks.h ----

TEST_CASE_TEMPLATE("cuda calling convention: PeakStimulationBackward", T, float, double) {
  std::mt19937 rng(14);
  struct Case {
    int64_t planes, HW;
  };
  for (const Case& c : {Case{6, 35}, Case{1, 1}, Case{4, 1}, Case{1, 50}, Case{0, 9}}) {
    CAPTURE(c.planes);
    CAPTURE(c.HW);
    const int64_t n = c.planes * c.HW;
    std::vector<T> peak_map(n), counts(c.planes);
    for (T& v : peak_map) v = T(rng() % 3 == 0 ? 1 : 0);
    for (T& v : counts) v = T(1 + rng() % 7);
    const std::vector<T> dscores = uniform<T>(rng, c.planes);
    for (bool mean_grad : {false, true}) {
      CAPTURE(mean_grad);
      std::vector<T> want = sentinel<T>(n);
      on_cpu<PeakStimulationBackward, T>(want.data(), dscores.data(), peak_map.data(),
                                         counts.data(), mean_grad, c.planes, c.HW);
      in_every_order([&] {
        std::vector<T> got = sentinel<T>(n);
        cuda_like<PeakStimulationBackward, T>(got.data(), dscores.data(), peak_map.data(),
                                              counts.data(), mean_grad, c.planes, c.HW);
        expect_same_bits(got, want, "PeakStimulationBackward");
      });
    }
  }
}

// ---- pooling.h ----

TEST_CASE_TEMPLATE("cuda calling convention: AdaptiveAvgPool2d forward and backward", T, float,
                   double) {
  std::mt19937 rng(15);
  struct Case {
    int64_t N, C, H, W, OH, OW;
  };
  // Down by uneven factors (overlapping windows), up, to 1 x 1, unchanged, 1 x 1 input.
  const Case cases[] = {{2, 3, 7, 5, 3, 2}, {1, 1, 1, 1, 1, 1},  {1, 2, 4, 6, 7, 9},
                        {2, 1, 13, 11, 1, 1}, {1, 3, 5, 5, 5, 5}, {3, 1, 1, 1, 2, 3}};
  for (const Case& c : cases) {
    CAPTURE(c.H);
    CAPTURE(c.W);
    CAPTURE(c.OH);
    CAPTURE(c.OW);
    const int64_t in = c.N * c.C * c.H * c.W, out = c.N * c.C * c.OH * c.OW;
    const std::vector<T> x = uniform<T>(rng, in), g = uniform<T>(rng, out);
    std::vector<T> want = sentinel<T>(out);
    on_cpu<AdaptiveAvgPool2dForward, T>(want.data(), x.data(), c.N, c.C, c.H, c.W, c.OH, c.OW);
    in_every_order([&] {
      std::vector<T> got = sentinel<T>(out);
      cuda_like<AdaptiveAvgPool2dForward, T>(got.data(), x.data(), c.N, c.C, c.H, c.W, c.OH,
                                             c.OW);
      expect_same_bits(got, want, "AdaptiveAvgPool2dForward");
    });
    want = sentinel<T>(in);
    on_cpu<AdaptiveAvgPool2dBackward, T>(want.data(), g.data(), c.N, c.C, c.H, c.W, c.OH, c.OW);
    in_every_order([&] {
      std::vector<T> got = sentinel<T>(in);
      cuda_like<AdaptiveAvgPool2dBackward, T>(got.data(), g.data(), c.N, c.C, c.H, c.W, c.OH,
                                              c.OW);
      expect_same_bits(got, want, "AdaptiveAvgPool2dBackward");
    });
  }
}

// ---- reduce.h ----

TEST_CASE_TEMPLATE("cuda calling convention: SumDims", T, float, double) {
  std::mt19937 rng(16);
  struct Case {
    std::vector<int64_t> shape;
    std::vector<bool> reduced;
  };
  // The Strides built as ops/reduce.cpp builds them (coalesced kept and reduced walks), over
  // reductions of the inner, outer, middle, all and only size-1 dims.
  const Case cases[] = {
      {{5, 7, 3}, {false, true, false}}, {{5, 7, 3}, {true, false, true}},
      {{5, 7, 3}, {false, false, true}}, {{5, 7, 3}, {true, true, true}},
      {{4, 1, 6}, {false, true, false}}, {{3, 37, 2}, {false, true, true}},
      {{1, 19}, {true, false}},          {{2, 0, 3}, {false, true, false}},
      {{129, 2}, {true, false}},
  };
  for (const Case& c : cases) {
    const std::vector<int64_t> strides = contiguous_strides(c.shape);
    std::vector<int64_t> kept_sizes, kept_strides, red_sizes, red_strides;
    for (size_t d = 0; d < c.shape.size(); ++d) {
      (c.reduced[d] ? red_sizes : kept_sizes).push_back(c.shape[d]);
      (c.reduced[d] ? red_strides : kept_strides).push_back(strides[d]);
    }
    const Strides kept = coalesce(kept_sizes, {kept_strides})[0];
    const Strides red = coalesce(red_sizes, {red_strides})[0];
    const int64_t n_out = numel(kept_sizes), n_red = numel(red_sizes);
    CAPTURE(n_out);
    CAPTURE(n_red);
    const std::vector<T> x = uniform<T>(rng, numel(c.shape));
    std::vector<T> want = sentinel<T>(n_out);
    on_cpu<SumDims, T>(want.data(), x.data(), kept, red, n_out, n_red);
    in_every_order([&] {
      std::vector<T> got = sentinel<T>(n_out);
      cuda_like<SumDims, T>(got.data(), x.data(), kept, red, n_out, n_red);
      expect_same_bits(got, want, "SumDims");
    });
  }
}

// ---- sgd.h ----

TEST_CASE_TEMPLATE("cuda calling convention: SgdStep", T, float, double) {
  // The CPU's own body (cpu/sgd.cpp) applies the same sgd_update_element in blocks of 4096, so
  // lengths past a block and not a multiple of it are among kLengths.
  std::mt19937 rng(17);
  for (int64_t n : kLengths) {
    const std::vector<T> p0 = uniform<T>(rng, n), b0 = uniform<T>(rng, n), g = uniform<T>(rng, n);
    // Plain; weight decay; momentum on its first step and later; dampening; Nesterov.
    for (int variant = 0; variant < 6; ++variant) {
      CAPTURE(n);
      CAPTURE(variant);
      SgdHyper<T> h;
      h.lr = static_cast<T>(0.05);
      h.weight_decay = static_cast<T>(variant >= 1 ? 1e-4 : 0.0);
      h.momentum = static_cast<T>(variant >= 2 ? 0.9 : 0.0);
      h.first_step = variant == 2;
      h.dampening = static_cast<T>(variant == 4 ? 0.25 : 0.0);
      h.nesterov = variant == 5;
      const bool buffer = h.momentum != T(0);
      std::vector<T> want_p = p0, want_b = b0;
      on_cpu<SgdStep, T>(want_p.data(), buffer ? want_b.data() : nullptr, g.data(), n, h);
      in_every_order([&] {
        std::vector<T> got_p = p0, got_b = b0;
        cuda_like<SgdStep, T>(got_p.data(), buffer ? got_b.data() : nullptr, g.data(), n, h);
        expect_same_bits(got_p, want_p, "SgdStep param");
        expect_same_bits(got_b, want_b, "SgdStep momentum buffer");
      });
    }
  }
}

// ---- upsample.h ----

TEST_CASE_TEMPLATE("cuda calling convention: UpsampleBilinear forward and backward", T, float,
                   double) {
  // The backward's CPU entry is cpu/upsample.cpp's scatter, which adds each input's terms in the
  // order the gather (CUDA's body) sums them: the same bits.
  std::mt19937 rng(18);
  struct Case {
    int64_t N, C, H, W, OH, OW;
    bool align_corners;
    double scale_factor;  // > 0: the scale given, as F.interpolate(scale_factor=...)
  };
  const Case cases[] = {
      {1, 2, 5, 7, 10, 14, false, 0.0}, {2, 1, 3, 3, 8, 5, true, 0.0},
      {1, 1, 1, 1, 4, 3, false, 0.0},   {1, 1, 6, 9, 3, 4, false, 0.0},
      {1, 3, 4, 4, 1, 1, true, 0.0},    {1, 1, 7, 1, 13, 1, false, 0.0},
      {2, 2, 5, 6, 10, 12, false, 2.0}, {1, 1, 9, 11, 9, 11, true, 0.0},
      {1, 1, 3, 5, 7, 11, false, 0.0},
      {1, 2, 14, 14, 112, 112, true, 0.0},  // the PRM head's x8 (~289 terms per input)
  };
  for (const Case& c : cases) {
    CAPTURE(c.H);
    CAPTURE(c.W);
    CAPTURE(c.OH);
    CAPTURE(c.OW);
    CAPTURE(c.align_corners);
    const T sh = bilinear_coordinate_scale<T>(c.H, c.OH, c.align_corners, c.scale_factor);
    const T sw = bilinear_coordinate_scale<T>(c.W, c.OW, c.align_corners, c.scale_factor);
    const int64_t in = c.N * c.C * c.H * c.W, out = c.N * c.C * c.OH * c.OW;
    const std::vector<T> x = uniform<T>(rng, in), g = uniform<T>(rng, out);
    std::vector<T> want = sentinel<T>(out);
    on_cpu<UpsampleBilinearForward, T>(want.data(), x.data(), c.N, c.C, c.H, c.W, c.OH, c.OW, sh,
                                       sw, c.align_corners);
    in_every_order([&] {
      std::vector<T> got = sentinel<T>(out);
      cuda_like<UpsampleBilinearForward, T>(got.data(), x.data(), c.N, c.C, c.H, c.W, c.OH, c.OW,
                                            sh, sw, c.align_corners);
      expect_same_bits(got, want, "UpsampleBilinearForward");
    });
    want = sentinel<T>(in);
    on_cpu<UpsampleBilinearBackward, T>(want.data(), g.data(), c.N, c.C, c.H, c.W, c.OH, c.OW, sh,
                                        sw, c.align_corners);
    in_every_order([&] {
      std::vector<T> got = sentinel<T>(in);
      cuda_like<UpsampleBilinearBackward, T>(got.data(), g.data(), c.N, c.C, c.H, c.W, c.OH, c.OW,
                                             sh, sw, c.align_corners);
      expect_same_bits(got, want, "UpsampleBilinearBackward");
    });
  }
}

// ---- bf16.h ----

TEST_CASE("cuda calling convention: RoundToBf16, ToBf16Bits (pack_rows_bf16)") {
  std::mt19937 rng(19);
  struct Case {
    int64_t batch, rows, cols, ld, stride;
  };
  // Padded rows (ld > cols), a matrix shared by the batch (stride 0, as a broadcast GEMM operand
  // gets), one column, one row, a single element.
  const Case cases[] = {{1, 1, 1, 1, 1},  {3, 5, 7, 9, 45},  {2, 4, 3, 3, 0},
                        {1, 6, 1, 2, 12}, {4, 3, 17, 20, 70}, {1, 1, 33, 33, 33}};
  for (const Case& c : cases) {
    CAPTURE(c.batch);
    CAPTURE(c.rows);
    CAPTURE(c.cols);
    CAPTURE(c.ld);
    CAPTURE(c.stride);
    const int64_t span = (c.batch - 1) * c.stride + (c.rows - 1) * c.ld + c.cols;
    std::vector<float> in = uniform<float>(rng, span, -1e3, 1e3);
    // Values whose rounding is delicate: NaN, infinities, signed zero, subnormals, ties.
    const float special[] = {std::numeric_limits<float>::quiet_NaN(),
                             std::numeric_limits<float>::infinity(),
                             -std::numeric_limits<float>::infinity(),
                             -0.0f,
                             std::numeric_limits<float>::denorm_min(),
                             1.00390625f,  // 1 + 2^-8: halfway between two bf16 values
                             1.01171875f,  // 1 + 3 * 2^-8: halfway, rounds up to even
                             std::numeric_limits<float>::max()};
    for (size_t k = 0; k < in.size(); k += 3) in[k] = special[(k / 3) % 8];
    const int64_t n = c.batch * c.rows * c.cols;
    std::vector<float> want = sentinel<float>(n);
    on_cpu<RoundToBf16, float>(want.data(), in.data(), c.batch, c.rows, c.cols, c.ld, c.stride);
    in_every_order([&] {
      std::vector<float> got = sentinel<float>(n);
      cuda_like<RoundToBf16, float>(got.data(), in.data(), c.batch, c.rows, c.cols, c.ld,
                                    c.stride);
      expect_same_bits(got, want, "RoundToBf16");
    });
    std::vector<uint16_t> want_bits(n, 0xdead);
    on_cpu<ToBf16Bits, float>(want_bits.data(), in.data(), c.batch, c.rows, c.cols, c.ld,
                              c.stride);
    in_every_order([&] {
      std::vector<uint16_t> got(n, 0xdead);
      cuda_like<ToBf16Bits, float>(got.data(), in.data(), c.batch, c.rows, c.cols, c.ld, c.stride);
      expect_same_bits(got, want_bits, "ToBf16Bits");
    });
  }
}

// ---- the policy itself ----

TEST_CASE("cuda calling convention: CudaLikeLoop visits every element once, rows interleaved") {
  for (int order = 0; order < kOrders; ++order) {
    CudaLikeLoop::order = order;
    CAPTURE(order);
    for (int64_t rows : {1, 3, 8}) {
      for (int64_t len : {0, 1, 5, 16}) {
        CAPTURE(rows);
        CAPTURE(len);
        std::vector<int> seen(static_cast<size_t>(rows * len), 0);
        std::vector<int64_t> row_of_call;
        bool one_element = true;
        CudaLikeLoop::for_each_run(rows, len, [&](int64_t r, int64_t b, int64_t e) {
          one_element = one_element && e == b + 1 && b >= 0 && b < len && r >= 0 && r < rows;
          ++seen[static_cast<size_t>(r * len + b)];
          row_of_call.push_back(r);
        });
        CHECK(one_element);
        CHECK(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
        // Not row after row: some call goes back to a row an earlier call had left.
        if (rows > 1 && len > 1) {
          bool revisits = false;
          for (size_t k = 2; k < row_of_call.size() && !revisits; ++k)
            for (size_t j = 0; j + 1 < k && !revisits; ++j)
              revisits = row_of_call[j] == row_of_call[k] && row_of_call[k - 1] != row_of_call[k];
          CHECK(revisits);
        }
      }
    }
  }
  CudaLikeLoop::order = 0;
}

namespace {

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

// A kernel added to a .cu file later must be covered above or listed as skipped with its reason:
// the names registered for CudaLoop in src/kernels/cuda/*.cu, read from the sources, against this
// file's own header comment (from "Covered:" to "The CPU side").
TEST_CASE("cuda calling convention: every kernel registered for CUDA is covered or listed") {
  const std::string self = file_text("tests/test_cuda_calling_convention.cpp");
  if (self.empty() || !std::filesystem::is_directory("src/kernels/cuda")) {
    MESSAGE("skipped: run the tests from the repository root (make test does)");
    return;
  }
  const size_t from = self.find("// Covered:"), to = self.find("// The CPU side");
  REQUIRE(from != std::string::npos);
  REQUIRE(to != std::string::npos);
  const std::string listed = self.substr(from, to - from);
  const std::regex reg(R"(PRM_REGISTER_KERNELS?\s*\(\s*CudaLoop\s*,([^)]*)\))");
  int kernels = 0;
  for (const auto& entry : std::filesystem::directory_iterator("src/kernels/cuda")) {
    if (entry.path().extension() != ".cu") continue;
    const std::string text = file_text(entry.path().string());
    for (auto m = std::sregex_iterator(text.begin(), text.end(), reg); m != std::sregex_iterator();
         ++m) {
      // The names in the macro's list; PRM_REGISTER_KERNEL's last argument is a scalar type.
      std::stringstream names((*m)[1].str());
      std::string name;
      while (std::getline(names, name, ',')) {
        name.erase(std::remove_if(name.begin(), name.end(), ::isspace), name.end());
        if (name.empty() || name == "float" || name == "double" || name == "int64_t") continue;
        ++kernels;
        CAPTURE(entry.path().string());
        CAPTURE(name);
        const std::regex word("\\b" + name + "\\b");
        CHECK(std::regex_search(listed, word));
      }
    }
  }
  CHECK(kernels >= 30);  // the registrations were found at all
}
