// conv2d: forward and backward (formulas in conv2d.h; derivation in docs/conv2d.md). The native
// engine works image by image
// on the CPU (im2col, then one GEMM; the GEMM is threaded) and in chunks of images on CUDA (one
// im2col launch and one strided-batched GEMM per chunk, the chunk's column buffer kept under
// kColBudget elements). Weight gradients sum over images with GEMM's beta = 1.
#include "tensor/ops/conv2d.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/batch_norm.h"
#include "kernels/cpu/conv_pack.h"
#include "kernels/cpu/gemm_kernels.h"
#include "kernels/cpu/winograd.h"
#include "kernels/elementwise.h"
#include "kernels/excitation.h"
#include "kernels/gemm.h"
#include "kernels/im2col.h"
#include "tensor/autograd.h"
#include "tensor/ops/batch_norm.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/shape.h"
#if PRM_USE_CUDNN
#include "kernels/conv_cudnn.h"
#endif

namespace prm {

namespace {

// Column-buffer elements per chunk of images on CUDA (256 MB of float32).
constexpr int64_t kColBudget = int64_t(1) << 26;

struct ConvDims {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input
  int64_t O = 0, Ho = 0, Wo = 0;       // output channels and size
  ConvWindow win;
  int64_t col_rows() const { return C * win.kh * win.kw; }
  int64_t pixels() const { return Ho * Wo; }
  int64_t x_image() const { return C * H * W; }
  int64_t y_image() const { return O * Ho * Wo; }
  Shape output_shape() const { return {N, O, Ho, Wo}; }
};

ConvDims conv_dims(const char* op, const Shape& x, const Shape& w, const Conv2dOptions& opt) {
  PRM_CHECK(x.size() == 4, op, ": input must be [N, Cin, H, W], got ", shape_str(x));
  PRM_CHECK(w.size() == 4, op, ": weight must be [Cout, Cin, kh, kw], got ", shape_str(w));
  PRM_CHECK(w[1] == x[1], op, ": weight ", shape_str(w), " takes ", w[1],
            " input channels but the input ", shape_str(x), " has ", x[1]);
  PRM_CHECK(w[0] >= 1 && w[2] >= 1 && w[3] >= 1, op, ": empty weight ", shape_str(w));
  PRM_CHECK(opt.stride >= 1 && opt.padding >= 0 && opt.dilation >= 1, op,
            ": need stride >= 1, padding >= 0, dilation >= 1; got stride ", opt.stride,
            ", padding ", opt.padding, ", dilation ", opt.dilation);
  ConvDims d;
  d.N = x[0], d.C = x[1], d.H = x[2], d.W = x[3], d.O = w[0];
  d.win = ConvWindow{w[2], w[3], opt.stride, opt.padding, opt.dilation};
  const int64_t reach_h = opt.dilation * (w[2] - 1) + 1, reach_w = opt.dilation * (w[3] - 1) + 1;
  PRM_CHECK(d.H + 2 * opt.padding >= reach_h && d.W + 2 * opt.padding >= reach_w, op, ": input ",
            shape_str(x), " padded by ", opt.padding,
            " is smaller than the dilated kernel of weight ", shape_str(w));
  d.Ho = d.win.out_h(d.H);
  d.Wo = d.win.out_w(d.W);
  return d;
}

void check_operands(const char* op, const Tensor& x, const Tensor& w, const char* x_name) {
  PRM_CHECK(x.defined() && w.defined(), op, ": undefined ", x.defined() ? "weight" : x_name);
  check_float(op, x);
  check_same_dtype(op, x, w);
  check_same_device(op, x, w);
}

int64_t g_chunk_override = 0;  // set_conv_images_per_chunk_for_testing

// Images per im2col/GEMM round: one on the CPU (the column buffer stays in cache, the GEMM is
// threaded), as many as fit the budget on CUDA (fewer, larger launches).
int64_t images_per_chunk(Device dev, const ConvDims& d) {
  if (g_chunk_override > 0)
    return std::clamp<int64_t>(g_chunk_override, 1, std::max<int64_t>(d.N, 1));
  if (dev == Device::cpu) return 1;
  const int64_t per_image = std::max<int64_t>(1, d.col_rows() * d.pixels());
  return std::clamp<int64_t>(kColBudget / per_image, 1, std::max<int64_t>(d.N, 1));
}

// The engine is chosen per call (Conv2dOptions::engine); it has no effect on the CPU.
bool use_cudnn(Device dev, DType dtype, const Conv2dOptions& opt) {
#if !PRM_USE_CUDNN
  PRM_CHECK(opt.engine != ConvEngine::cudnn,
            "conv2d: the cudnn engine needs a build with cuDNN (USE_CUDNN=1); this build has "
            "USE_CUDNN=0");
#endif
  if (dev != Device::cuda || opt.engine != ConvEngine::cudnn) return false;
  check_conv_engine_precision(opt.engine, dtype);
  return true;
}

// Whether a GEMM of inner size K may take op(B) from a packing function
// (cpu::gemm_blocked_packed_b) instead of a matrix it reads: on the CPU with our own GEMM (not
// OpenBLAS), inputs as given (no bf16-rounded copies), one image per round (images_per_chunk
// is 1, no test override). The packed paths give the explicit paths' sums bit for bit.
template <typename T>
bool packed_gemm_applies(Device dev, int64_t K) {
  return !PRM_USE_OPENBLAS && dev == Device::cpu && !gemm_bf16_inputs(K, T(1)) &&
         g_chunk_override == 0;
}

// batch GEMMs C_i = op(A_i) op(B_i) (overwriting C_i), operand i at pointer + i * stride.
template <typename T>
void gemm_batched_on(Device dev, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A,
                     int64_t lda, int64_t sa, const T* B, int64_t ldb, int64_t sb, T* C,
                     int64_t ldc, int64_t sc, int64_t batch) {
  launch<GemmStridedBatched, T>(dev, ta, tb, M, N, K, T(1), A, lda, sa, B, ldb, sb, T(0), C, ldc,
                                sc, batch);
}

// ---- native engine ----

// y_n [O, P] = W [O, K] · col_n [K, P]   (overwrites y)
// On the CPU with our GEMM, col_n is never written: the GEMM packs its blocks of B straight from
// the image (implicit im2col, kernels/cpu/conv_pack.h), the same values in the same order, so
// the same result bit for bit, without writing and re-reading a [K, P] matrix per image.

// A 1x1 window with a stride above 1 and no padding.
inline bool strided_pointwise(const ConvDims& d) {
  return d.win.kh == 1 && d.win.kw == 1 && d.win.pad == 0 && d.win.stride > 1;
}

// One image's direct CPU forward: the implicit-im2col GEMM (a plain GEMM on the image for a 1x1
// window), with the weights w [O, C k k] as a matrix or packed (when `packed` is given);
// `epilogue` (none when empty) on each finished tile.
template <typename T>
void forward_image_cpu(T* y, const T* x, const T* w, const cpu::GemmPackedA<T>* packed,
                       const ConvDims& d, const cpu::GemmEpilogue<T>& epilogue) {
  const int64_t K = d.col_rows(), P = d.pixels();
  const cpu::GemmPackB<T> pack = [&](T* dst, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
                                     int NR) {
    cpu::pack_im2col_block(dst, x, d.H, d.W, d.win, k0, kc, j0, nc, NR);
  };
  const bool pointwise = d.win.is_pointwise();
  if (packed != nullptr)
    cpu::gemm_blocked_prepacked<T>(*packed, P, T(1), pointwise ? x : nullptr, P,
                                   pointwise ? nullptr : &pack, T(0), y, P, &epilogue);
  else if (pointwise)
    cpu::gemm_blocked_epilogue(false, false, d.O, P, K, T(1), w, K, x, P, T(0), y, P, epilogue);
  else
    cpu::gemm_blocked_packed_b_epilogue(false, d.O, P, K, T(1), w, K, pack, T(0), y, P, epilogue);
}

// The constant-weights scopes (ConstantWeights, conv2d.h): how many are open, and the packed
// weights made while they are, per weight storage, shape and path. An entry holds its weight's
// storage, so that no other tensor can take that address while the entry lives.
struct PackedWeightsKey {
  const void* data;
  int dtype;
  int64_t O, C, kh, kw;
  int winograd;  // the tile, 0 for none
  int isa;
  bool operator<(const PackedWeightsKey& o) const {
    return std::tie(data, dtype, O, C, kh, kw, winograd, isa) <
           std::tie(o.data, o.dtype, o.O, o.C, o.kh, o.kw, o.winograd, o.isa);
  }
};
struct PackedWeightsEntry {
  std::shared_ptr<Storage> storage;
  std::shared_ptr<const void> packs;  // a std::vector<cpu::GemmPackedA<T>>
};
template <typename T>
size_t packs_bytes(const std::shared_ptr<const void>& packs) {
  size_t bytes = 0;
  for (const auto& a : *std::static_pointer_cast<const std::vector<cpu::GemmPackedA<T>>>(packs))
    bytes += a.bytes();
  return bytes;
}
std::mutex g_constant_weights_mutex;
int g_constant_weights_scopes = 0;
std::map<PackedWeightsKey, PackedWeightsEntry> g_packed_weights;

int g_winograd = -1;  // conv_winograd(): -1 until read from the environment
int g_winograd_way = 0;  // set_conv_winograd_way_for_testing: 0 by cost, 1 chunked, 2 whole
int g_winograd_tile = 0;  // set_conv_winograd_tile_for_testing: 0 by size, else 2 or 4

// Winograd's F(2x2, 3x3) from this many output tiles (2x2 pixels) and channels (in and out) on:
// below, the transforms' passes and the 16 small GEMMs cost more than the multiply-adds saved.
constexpr int64_t kWinogradMinTiles = 128;
constexpr int64_t kWinogradMinChannels = 64;

// Which Winograd the CPU forward of this convolution (float32 on our GEMM, inner size d.C for its
// products) takes: 0 none, 2 F(2x2, 3x3), 4 F(4x4, 3x3). Only for a 3x3 window, stride 1,
// padding 1, no dilation, enough channels; F(4x4, 3x3) when its larger tiles are still
// kWinogradMinTiles (ResNet-50's layers 1 and 2 at 448 x 448: 784 and 196), else F(2x2, 3x3)
// when its are (layer 3: 196; layer 4's 49 take neither).
template <typename T>
int winograd_tile(const ConvDims& d) {
  const ConvWindow& win = d.win;
  const bool fits = std::is_same_v<T, float> && conv_winograd() && win.kh == 3 && win.kw == 3 &&
                    win.stride == 1 && win.pad == 1 && win.dilation == 1 &&
                    d.C >= kWinogradMinChannels && d.O >= kWinogradMinChannels &&
                    packed_gemm_applies<T>(Device::cpu, d.C);
  if (!fits) return 0;
  if (g_winograd_tile != 0) return g_winograd_tile;
  if (cpu::winograd4_tiles(d.Ho, d.Wo) >= kWinogradMinTiles) return 4;
  return cpu::winograd_tiles(d.Ho, d.Wo) >= kWinogradMinTiles ? 2 : 0;
}

template <typename T>
bool winograd_applies(const ConvDims& d) {
  return winograd_tile<T>(d) != 0;
}

// One call's CPU forward on our GEMM, image by image: the implicit-im2col GEMM, or Winograd's
// F(4x4, 3x3) or F(2x2, 3x3) with the weights transformed once for all the images
// (kernels/cpu/winograd.h): V = the input's tiles transformed, the 36 or 16 products
// M_xi = U_xi · V_xi on our GEMM, then M's tiles transformed back into y, `epilogue` on each
// tile row's output rows as they are written.
//
// Two ways to run an image, chosen in CpuForward::image by which costs less to move:
// - whole: V and M of the whole image, each step over all threads (the transforms split by
//   channels, each product threaded by the GEMM). An image's V and M go out to memory and back
//   (16 (C + O) values per 2x2 tile: 13 MB each for ResNet-50's layer 1 at 448 x 448).
// - chunked: whole tile rows at a time, each chunk on one thread from start to end (its
//   products single-threaded), its V and M about kWinogradChunkBytes together; but each chunk's
//   products pack U (16 or 36 O C values) again, unless a ConstantWeights scope holds U packed,
//   and read all of U in any case.
// (The measurements below are F(2x2, 3x3)'s, before the scope.)
// Measured per layer of ResNet-50 at 448 x 448 (Winograd's time over the direct GEMM's, one
// image, two threads): 64 channels at 112 x 112: whole 1.11, chunked 0.80; 128 at 56 x 56: whole
// 0.73, chunked 0.80-0.83; 256 at 28 x 28: whole 0.76, chunked 0.81-0.93.
// The chunk's V and M were sized for the core's L2 (1 MiB together) at first; 4 MiB, twice the
// L2 of this machine's cores, is faster with U packed once (ResNet-50's forward at 448 x 448 in
// a ConstantWeights scope, per layer: layer 2's 3x3 F(4x4, 3x3) 2.0 -> 1.53 ms, layer 3's
// F(2x2, 3x3) 2.5 -> 2.06 ms, layer 1's the same; 8 and 16 MiB slower again on layer 1): the
// products' U (4 MB per chunk on layer 3) is read by half as many chunks, and a chunk of 98
// tiles (two GEMM strips and a tail of 2) replaces chunks of 42 to 56 (a strip and a narrow
// one).
constexpr int64_t kWinogradChunkBytes = 4 << 20;

constexpr int64_t kWinogradMinChunkTiles = 96;  // two of the GEMM's 48-column strips

template <typename T>
class CpuForward {
 public:
  // `weight`, when given, is the tensor w points into: inside a ConstantWeights scope its
  // packed form is made once and kept for later calls.
  CpuForward(const T* w, const ConvDims& d, const Tensor* weight = nullptr)
      : w_(w), d_(d), tile_(winograd_tile<T>(d)), positions_((tile_ + 2) * (tile_ + 2)) {
    if (weight != nullptr) {
      std::lock_guard<std::mutex> lock(g_constant_weights_mutex);
      if (g_constant_weights_scopes > 0) {
        const PackedWeightsKey key{w,   static_cast<int>(dtype_of<T>::value),
                                   d.O, d.C, d.win.kh, d.win.kw, tile_,
                                   static_cast<int>(cpu_isa_active())};
        PackedWeightsEntry& entry = g_packed_weights[key];
        if (entry.packs == nullptr) {
          entry.storage = weight->impl().storage;
          entry.packs = pack_weights();
        }
        packed_ = std::static_pointer_cast<const std::vector<cpu::GemmPackedA<T>>>(entry.packs);
        return;
      }
    }
    if (tile_ == 0) return;
    u_ = Tensor::empty({positions_ * d.O * d.C}, dtype_of<T>::value, Device::cpu);
    transform_weights(u_.data<T>());
  }

  void image(T* y, const T* x, const cpu::GemmEpilogue<T>& epilogue) {
    if (strided_pointwise(d_)) {
      // A 1x1 window with a stride (ResNet's downsampling shortcuts): the pixels it reads,
      // x[c][oy s][ox s], copied into [C, Ho Wo] once, then the plain GEMM on them. Packing
      // them for the GEMM straight from x instead takes every s-th value of every s-th row for
      // each strip: ResNet-50's three at 448 x 448 (with the batch norm) 4.0, 4.3, 4.3 ms ->
      // 3.5, 3.3, 3.6 ms.
      const int64_t C = d_.C, Ho = d_.Ho, Wo = d_.Wo, H = d_.H, W = d_.W, s = d_.win.stride;
      if (!sub_.defined()) sub_ = Tensor::empty({C * Ho * Wo}, dtype_of<T>::value, Device::cpu);
      T* sub = sub_.data<T>();
#pragma omp parallel for schedule(static) if (C * Ho * Wo > 32768)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t oy = 0; oy < Ho; ++oy) {
          const T* in = x + (c * H + oy * s) * W;
          T* out = sub + (c * Ho + oy) * Wo;
          if (s == 2)
            for (int64_t ox = 0; ox < Wo; ++ox) out[ox] = in[2 * ox];  // loads and shuffles
          else
            for (int64_t ox = 0; ox < Wo; ++ox) out[ox] = in[ox * s];
        }
      ConvDims dense = d_;  // the 1x1, stride-1 convolution of the copy
      dense.H = Ho, dense.W = Wo, dense.win.stride = 1;
      return forward_image_cpu(y, sub, w_, packed(0), dense, epilogue);
    }
    if (tile_ == 0) return forward_image_cpu(y, x, w_, packed(0), d_, epilogue);
    const int64_t O = d_.O, C = d_.C, np = positions_;
    const int64_t tile_rows = (d_.Ho + tile_ - 1) / tile_, tw = (d_.Wo + tile_ - 1) / tile_;
    const int64_t tiles = tile_rows * tw;
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    // A chunk: about kWinogradChunkBytes of V and M, at least kWinogradMinChunkTiles tiles.
    const int64_t per_chunk = std::max<int64_t>(
        kWinogradMinChunkTiles, kWinogradChunkBytes / (np * (C + O) * int64_t(sizeof(T))));
    // Chunked when a chunk's U packing moves at most half of what its V and M would move through
    // memory in the whole-image way: O C <= (C + O) per_chunk / 2 (64 channels in and out: yes;
    // 128: no); and always when U is packed already (a ConstantWeights scope: ResNet-50's layer
    // 2 at 448 x 448, 32.4 -> 30.9 ms; layer 3 the same).
    const bool chunked = g_winograd_way == 0
                             ? packed_ != nullptr || 2 * O * C <= (C + O) * per_chunk
                             : g_winograd_way == 1;
    if (chunked) {
      // As many chunks for each thread, the tile rows split as evenly as whole rows allow.
      const int64_t rounds = (tiles + threads * per_chunk - 1) / (threads * per_chunk);
      const int64_t chunks = std::min<int64_t>(tile_rows, rounds * threads);
      const int64_t most = (tile_rows + chunks - 1) / chunks * tw;  // tiles in the largest chunk
#pragma omp parallel num_threads(threads)
      {
        // V and M in this thread's buffer, kept across calls (1.2 % of the forward in `perf`
        // had gone to zeroing and paging in fresh vectors).
        T* V = static_cast<T*>(cpu::gemm_scratch(4, sizeof(T) * np * (C + O) * most));
        T* M = V + np * C * most;
#pragma omp for schedule(static)
        for (int64_t k = 0; k < chunks; ++k) {
          const int64_t ty0 = k * tile_rows / chunks, ty1 = (k + 1) * tile_rows / chunks;
          const int64_t n = (ty1 - ty0) * tw;
          input(V, n, x, 0, C, ty0, ty1);
          for (int64_t xi = 0; xi < np; ++xi) product(xi, n, V + xi * C * n, M + xi * O * n);
          output(y, M, n, 0, O, ty0, ty1, epilogue);
        }
      }
      return;
    }
    if (!v_.defined()) {
      v_ = Tensor::empty({np * C * tiles}, dtype_of<T>::value, Device::cpu);
      m_ = Tensor::empty({np * O * tiles}, dtype_of<T>::value, Device::cpu);
    }
    T* V = v_.data<T>();
    T* M = m_.data<T>();
    // The transforms split by channels: each channel's tile rows one after the other, so that
    // V's and M's rows are written and read in order.
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t c = 0; c < C; ++c) input(V, tiles, x, c, c + 1, 0, tile_rows);
    for (int64_t xi = 0; xi < np; ++xi)
      product(xi, tiles, V + xi * C * tiles, M + xi * O * tiles);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t o = 0; o < O; ++o) output(y, M, tiles, o, o + 1, 0, tile_rows, epilogue);
  }

 private:
  // The weights packed for the GEMM: [O, C k k] for the direct GEMM, or Winograd's 16 or 36
  // U_xi [O, C].
  std::shared_ptr<const void> pack_weights() const {
    auto packs = std::make_shared<std::vector<cpu::GemmPackedA<T>>>();
    if (tile_ == 0) {
      packs->emplace_back(false, d_.O, d_.col_rows(), w_, d_.col_rows());
      return packs;
    }
    const Tensor u = Tensor::empty({positions_ * d_.O * d_.C}, dtype_of<T>::value, Device::cpu);
    transform_weights(u.data<T>());
    packs->reserve(positions_);
    for (int64_t xi = 0; xi < positions_; ++xi)
      packs->emplace_back(false, d_.O, d_.C, u.data<T>() + xi * d_.O * d_.C, d_.C);
    return packs;
  }

  // The transforms of this call's Winograd (kernels/cpu/winograd.h).
  void transform_weights(T* U) const {
    if (tile_ == 4) cpu::winograd4_weights(U, w_, d_.O, d_.C);
    else cpu::winograd_weights(U, w_, d_.O, d_.C);
  }
  void input(T* V, int64_t ldv, const T* x, int64_t c0, int64_t c1, int64_t ty0,
             int64_t ty1) const {
    if (tile_ == 4) cpu::winograd4_input(V, ldv, x, d_.C, d_.H, d_.W, c0, c1, ty0, ty1);
    else cpu::winograd_input(V, ldv, x, d_.C, d_.H, d_.W, c0, c1, ty0, ty1);
  }
  void output(T* y, const T* M, int64_t ldm, int64_t o0, int64_t o1, int64_t ty0, int64_t ty1,
              const cpu::GemmEpilogue<T>& epilogue) const {
    if (tile_ == 4) cpu::winograd4_output(y, M, ldm, d_.O, d_.Ho, d_.Wo, o0, o1, ty0, ty1, epilogue);
    else cpu::winograd_output(y, M, ldm, d_.O, d_.Ho, d_.Wo, o0, o1, ty0, ty1, epilogue);
  }

  const cpu::GemmPackedA<T>* packed(int64_t i) const {
    return packed_ != nullptr ? &(*packed_)[i] : nullptr;
  }

  // Winograd's product xi: M_xi [O, n] = U_xi [O, C] · V_xi [C, n] (row strides n).
  void product(int64_t xi, int64_t n, const T* V, T* M) const {
    const int64_t O = d_.O, C = d_.C;
    if (packed_ != nullptr)
      cpu::gemm_blocked_prepacked<T>((*packed_)[xi], n, T(1), V, n, nullptr, T(0), M, n, nullptr);
    else
      cpu::gemm_blocked(false, false, O, n, C, T(1), u_.data<T>() + xi * O * C, C, V, n, T(0), M,
                        n);
  }

  const T* w_;
  ConvDims d_;
  int tile_;           // Winograd's output tile: 2 or 4, 0 for the direct GEMM
  int64_t positions_;  // the transformed tile's values: 16 or 36
  // The weights packed, from a ConstantWeights scope's cache; else (null) U for the call, and
  // the GEMMs pack the weights themselves.
  std::shared_ptr<const std::vector<cpu::GemmPackedA<T>>> packed_;
  Tensor u_, v_, m_;  // U; the whole-image way's V and M, made by the first image
  Tensor sub_;        // a strided 1x1 window's pixels, made by the first image
};

}  // namespace

ConstantWeights::ConstantWeights() {
  std::lock_guard<std::mutex> lock(g_constant_weights_mutex);
  ++g_constant_weights_scopes;
}

ConstantWeights::~ConstantWeights() {
  std::lock_guard<std::mutex> lock(g_constant_weights_mutex);
  if (--g_constant_weights_scopes == 0) g_packed_weights.clear();
}

size_t ConstantWeights::packed_bytes() {
  std::lock_guard<std::mutex> lock(g_constant_weights_mutex);
  size_t bytes = 0;
  for (const auto& [key, entry] : g_packed_weights)
    bytes += key.dtype == static_cast<int>(DType::f32) ? packs_bytes<float>(entry.packs)
                                                       : packs_bytes<double>(entry.packs);
  return bytes;
}

namespace {

template <typename T>
void forward_native(Device dev, T* y, const T* x, const Tensor& weight, const ConvDims& d) {
  const T* w = weight.data<T>();
  const int64_t K = d.col_rows(), P = d.pixels();
  const bool pointwise = d.win.is_pointwise();
  const bool implicit = !pointwise && packed_gemm_applies<T>(dev, K);  // one image a round
  const int64_t chunk = images_per_chunk(dev, d);
  Tensor col = pointwise || implicit ? Tensor()
                                     : Tensor::empty({chunk * K * P}, dtype_of<T>::value, dev);
  std::optional<CpuForward<T>> cpu_forward;
  if (implicit) cpu_forward.emplace(w, d, &weight);
  for (int64_t n0 = 0; n0 < d.N; n0 += chunk) {
    const int64_t nb = std::min(chunk, d.N - n0);
    const T* cols = x + n0 * d.x_image();
    if (implicit) {  // chunk = 1
      cpu_forward->image(y + n0 * d.y_image(), cols, cpu::GemmEpilogue<T>());
      continue;
    }
    if (!pointwise) {
      launch<Im2col, T>(dev, col.data<T>(), cols, nb, d.C, d.H, d.W, d.win);
      cols = col.data<T>();
    }
    gemm_batched_on(dev, false, false, d.O, P, K, w, K, 0, cols, P, K * P, y + n0 * d.y_image(), P,
                    d.y_image(), nb);
  }
}

// Images whose columns one CPU GEMM takes side by side in backward_input_merged: enough for a
// GEMM of >= 2048 columns where an image has few pixels (deep layers: 196 at 448x448), within
// the column budget. 1 (the per-image path) where an image alone is wide enough.
int64_t cpu_merge_count(const ConvDims& d) {
  const int64_t P = std::max<int64_t>(d.pixels(), 1);
  if (P >= 2048 || d.N <= 1) return 1;
  const int64_t by_width = (2048 + P - 1) / P;
  const int64_t by_budget = std::max<int64_t>(1, kColBudget / 4 / std::max<int64_t>(1, d.col_rows() * P));
  return std::clamp<int64_t>(std::min(by_width, by_budget), 1, d.N);
}

// Optional elementwise factors around the input gradient, for the fused excitation-backprop
// rule (conv2d_backward_input_scaled): dx = in ⊙ col2im(Wᵀ · (dy ⊙ out)), each product rounded
// as the separate multiplications round it. out is [O][P] per image, in is [C][H][W] per image;
// an image stride of 0 shares one image's factors across the batch. Null: no factor. channel
// [O] (shared by every image) comes first where given: dy ⊙ channel ⊙ out, rounded in that order
// (an eval-mode batch norm's scale, deferred to the convolution that feeds it).
template <typename T>
struct InputGradScales {
  const T* out = nullptr;
  int64_t out_image = 0;
  const T* in = nullptr;
  int64_t in_image = 0;
  const T* channel = nullptr;
};

// out[n][i] = a[n][i] * b[n][i] over `images` images of `per_image` elements, with the image
// strides given (0: one image shared); out may be a or b. All on `dev`.
template <typename T>
void mul_images(Device dev, T* out, const T* a, int64_t a_image, const T* b, int64_t b_image,
                int64_t images, int64_t per_image) {
  Strides sa, sb;
  sa.ndim = sb.ndim = 2;
  sa.size[0] = sb.size[0] = images;
  sa.size[1] = sb.size[1] = per_image;
  sa.stride[0] = a_image;
  sb.stride[0] = b_image;
  sa.stride[1] = sb.stride[1] = 1;
  launch<Binary, T>(dev, BinaryOp::mul, out, a, sa, b, sb, images * per_image);
}

// out[n][o][p] = dy[n][o][p] * channel[o] for the N images of d's output shape (out may be dy).
template <typename T>
void mul_channels(Device dev, T* out, const T* dy, const T* channel, const ConvDims& d) {
  Strides sa, sb;
  sa.ndim = sb.ndim = 3;
  sa.size[0] = sb.size[0] = d.N;
  sa.size[1] = sb.size[1] = d.O;
  sa.size[2] = sb.size[2] = d.pixels();
  sa.stride[0] = d.y_image(), sa.stride[1] = d.pixels(), sa.stride[2] = 1;
  sb.stride[0] = 0, sb.stride[1] = 1, sb.stride[2] = 0;
  launch<Binary, T>(dev, BinaryOp::mul, out, dy, sa, channel, sb, d.N * d.y_image());
}

// The CPU path for images with few pixels: the dy of m images side by side as one [O, m P]
// matrix, ONE GEMM dcol [K, m P] = Wᵀ · dy_m, then each image's [K, P] block back out and
// col2im. Same sums as the per-image path (each output is the same dot product over O). The
// factors of `sc` (channel and out on the way in, in on the way out) ride on the copies in and
// out (and on col2im).
template <typename T>
void backward_input_merged(T* dx, const T* dy, const T* w, const ConvDims& d, int64_t m,
                           const InputGradScales<T>& sc) {
  const int64_t K = d.col_rows(), P = d.pixels(), O = d.O;
  const Device cpu = Device::cpu;
  Tensor dy_wide = Tensor::empty({O * m * P}, dtype_of<T>::value, cpu);
  Tensor dcol_wide = Tensor::empty({K * m * P}, dtype_of<T>::value, cpu);
  Tensor dcol = Tensor::empty({K * P}, dtype_of<T>::value, cpu);
  for (int64_t n0 = 0; n0 < d.N; n0 += m) {
    const int64_t nb = std::min(m, d.N - n0);
    for (int64_t i = 0; i < nb; ++i) {  // dy_i [O, P] into columns [i P, (i + 1) P)
      const T* out_i = sc.out != nullptr ? sc.out + (n0 + i) * sc.out_image : nullptr;
      launch<CopyIntoSlice, T>(cpu, dy_wide.data<T>(), dy + (n0 + i) * d.y_image(), out_i, O, P,
                               nb * P, i * P, sc.channel);
    }
    launch<Gemm, T>(cpu, true, false, K, nb * P, O, T(1), w, K, dy_wide.data<T>(), nb * P, T(0),
                    dcol_wide.data<T>(), nb * P);
    for (int64_t i = 0; i < nb; ++i) {
      T* dx_i = dx + (n0 + i) * d.x_image();
      const T* in_i = sc.in != nullptr ? sc.in + (n0 + i) * sc.in_image : nullptr;
      if (d.win.is_pointwise()) {
        launch<CopyFromSlice, T>(cpu, dx_i, dcol_wide.data<T>(), in_i, K, P, nb * P, i * P);
        continue;
      }
      launch<CopyFromSlice, T>(cpu, dcol.data<T>(), dcol_wide.data<T>(),
                               static_cast<const T*>(nullptr), K, P, nb * P, i * P);
      launch<Col2im, T>(cpu, dx_i, dcol.data<T>(), 1, d.C, d.H, d.W, d.win, in_i, int64_t(0));
    }
  }
}

// Input pixels per image from which the CPU takes a stride-1 input gradient as a convolution
// (backward_input_flipped): measured against col2im on ResNet-50's 3x3 layers, one image, two
// threads: 12544 pixels 0.64x the time, 3136 0.85x, 2304 0.96x, 784 1.03x.
constexpr int64_t kFlippedMinPixels = 2048;

// The window of the convolution that gives a stride-1 convolution's input gradient: the same
// size and dilation, padded by dilation * (k - 1) - pad. Derivation: with i' = k - 1 - i,
//   dx[c][u][v] = Σ_{o,i,j} W[o][c][i][j] dy[o][u + pad - d i][v + pad - d j]
//              = Σ_{o,i',j'} W[o][c][k-1-i'][k-1-j'] dy[o][u + d i' - p'][v + d j' - p'],
// p' = d (k - 1) - pad: a convolution of dy with W flipped in both spatial directions and its
// two channel axes swapped, dy's zero padding standing for the terms outside it.
ConvWindow flipped_window(const ConvWindow& win) {
  return ConvWindow{win.kh, win.kw, 1, win.dilation * (win.kh - 1) - win.pad, win.dilation};
}

// The convolution that gives d's input gradient (stride 1): dy is its input, dx its output.
ConvDims flipped_dims(const ConvDims& d) {
  ConvDims t;
  t.N = d.N, t.C = d.O, t.H = d.Ho, t.W = d.Wo, t.O = d.C;
  t.win = flipped_window(d.win);
  t.Ho = t.win.out_h(t.H);
  t.Wo = t.win.out_w(t.W);
  return t;
}

// Whether the CPU takes dx as that convolution: stride 1, a square window (one padding for both
// axes) padded by at most its reach, not pointwise (no col2im to save), our GEMM packing dy
// straight from the image, and either images wide enough that the saved column buffer and
// col2im outweigh a GEMM of inner size O k k instead of O (kFlippedMinPixels), or a flipped
// convolution that takes Winograd's F(2x2, 3x3) (ResNet-50's layer 3 at 448 x 448, 784 pixels:
// 0.84x col2im's time, where the GEMM alone took 1.03x).
template <typename T>
bool flipped_applies(Device dev, const ConvDims& d) {
  const ConvWindow& win = d.win;
  return dev == Device::cpu && win.stride == 1 && win.kh == win.kw && !win.is_pointwise() &&
         win.dilation * (win.kh - 1) >= win.pad &&
         packed_gemm_applies<T>(dev, d.O * win.kh * win.kw) &&
         (d.H * d.W >= kFlippedMinPixels || winograd_applies<T>(flipped_dims(d)));
}

// dx_n = conv(dy_n, W'), W'[c][o][i][j] = W[o][c][k-1-i][k-1-j], padded by flipped_window: the
// forward's implicit-im2col GEMM [C, O k k] · [O k k, H W], which writes no [C k k, P] column
// buffer and needs no col2im. The same products as col2im's path, summed in another order (over
// o and the taps in one dot product instead of per tap, then over the taps), so not the same
// bits. The factors of `sc` as passes of their own, rounded as the separate ops round them:
// (dy ⊙ channel) ⊙ out before, in ⊙ dx after.
template <typename T>
void backward_input_flipped(T* dx, const T* dy, const T* w, const ConvDims& d,
                            const InputGradScales<T>& sc) {
  const Device cpu = Device::cpu;
  const DType dt = dtype_of<T>::value;
  const int64_t taps = d.win.kh * d.win.kw;
  Tensor flipped = Tensor::empty({d.C * d.O * taps}, dt, cpu);
  T* wf = flipped.data<T>();
  // Written in order (c outer), each kernel read whole; over the threads for large layers.
  const int64_t C = d.C, O = d.O;
#pragma omp parallel for schedule(static) if (C * O * taps > 65536)
  for (int64_t c = 0; c < C; ++c)
    for (int64_t o = 0; o < O; ++o) {
      const T* from = w + (o * C + c) * taps;
      T* to = wf + (c * O + o) * taps;
      for (int64_t t = 0; t < taps; ++t) to[taps - 1 - t] = from[t];
    }
  Tensor scaled;
  if (sc.channel != nullptr || sc.out != nullptr) {
    scaled = Tensor::empty({d.N * d.y_image()}, dt, cpu);
    const T* from = dy;
    if (sc.channel != nullptr) {
      mul_channels(cpu, scaled.data<T>(), dy, sc.channel, d);
      from = scaled.data<T>();
    }
    if (sc.out != nullptr)
      mul_images(cpu, scaled.data<T>(), from, d.y_image(), sc.out, sc.out_image, d.N, d.y_image());
    dy = scaled.data<T>();
  }
  const ConvDims t = flipped_dims(d);
  PRM_CHECK(t.Ho == d.H && t.Wo == d.W, "conv2d_backward_input: the flipped window gives ",
            t.Ho, "x", t.Wo, " instead of ", d.H, "x", d.W);
  CpuForward<T> forward(wf, t);
  for (int64_t n = 0; n < d.N; ++n)
    forward.image(dx + n * d.x_image(), dy + n * d.y_image(), cpu::GemmEpilogue<T>());
  if (sc.in != nullptr)  // in place: dx = in ⊙ dx
    mul_images(cpu, dx, sc.in, sc.in_image, static_cast<const T*>(dx), d.x_image(), d.N,
               d.x_image());
}

// dx_n = col2im(Wᵀ [K, O] · dy_n [O, P])   (overwrites dx), with the factors of `sc` (given on
// the CPU only); or, for a stride-1 window on large images on the CPU, the convolution of dy
// with the flipped weights (backward_input_flipped).
template <typename T>
void backward_input_native(Device dev, T* dx, const T* dy, const T* w, const ConvDims& d,
                           const InputGradScales<T>& sc = {}) {
  if (flipped_applies<T>(dev, d))
    return backward_input_flipped(dx, dy, w, d, sc);
  const int64_t m = dev == Device::cpu && g_chunk_override == 0 ? cpu_merge_count(d) : 1;
  // The product with sc.out (and sc.channel): formed while our GEMM packs its blocks of dy_n
  // (pack_product_block, one image a round), else in a pass of its own before GEMMs that read
  // dy as a matrix.
  const bool packed = m == 1 && sc.out != nullptr && packed_gemm_applies<T>(dev, d.O);
  if (sc.channel != nullptr && m == 1 && !packed) {  // dy ⊙ channel in a pass, then as without
    Tensor scaled = Tensor::empty({d.N * d.y_image()}, dtype_of<T>::value, dev);
    mul_channels(dev, scaled.data<T>(), dy, sc.channel, d);
    InputGradScales<T> rest = sc;
    rest.channel = nullptr;
    return backward_input_native(dev, dx, scaled.data<T>(), w, d, rest);
  }
  if (m > 1) return backward_input_merged(dx, dy, w, d, m, sc);
  const int64_t K = d.col_rows(), P = d.pixels();
  const bool pointwise = d.win.is_pointwise();
  Tensor scaled_dy;
  if (sc.out != nullptr && !packed) {
    scaled_dy = Tensor::empty({d.N * d.y_image()}, dtype_of<T>::value, dev);
    mul_images(dev, scaled_dy.data<T>(), dy, d.y_image(), sc.out, sc.out_image, d.N,
               d.y_image());
    dy = scaled_dy.data<T>();
  }
  const int64_t chunk = images_per_chunk(dev, d);
  Tensor dcol = pointwise ? Tensor() : Tensor::empty({chunk * K * P}, dtype_of<T>::value, dev);
  for (int64_t n0 = 0; n0 < d.N; n0 += chunk) {
    const int64_t nb = std::min(chunk, d.N - n0);
    T* dx_chunk = dx + n0 * d.x_image();
    T* target = pointwise ? dx_chunk : dcol.data<T>();
    if (packed) {
      const T* dy_n = dy + n0 * d.y_image();
      const T* out_n = sc.out + n0 * sc.out_image;
      const cpu::GemmPackB<T> pack = [&](T* dst, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
                                         int NR) {
        cpu::pack_product_block(dst, dy_n, out_n, P, k0, kc, j0, nc, NR, sc.channel);
      };
      cpu::gemm_blocked_packed_b(true, K, P, d.O, T(1), w, K, pack, T(0), target, P);
    } else {
      gemm_batched_on(dev, true, false, K, P, d.O, w, K, 0, dy + n0 * d.y_image(), P,
                      d.y_image(), target, P, K * P, nb);
    }
    if (!pointwise)
      launch<Col2im, T>(dev, dx_chunk, dcol.data<T>(), nb, d.C, d.H, d.W, d.win,
                        sc.in != nullptr ? sc.in + n0 * sc.in_image : nullptr, sc.in_image);
  }
  if (pointwise && sc.in != nullptr)  // in place: dx = in ⊙ dx
    mul_images(dev, dx, sc.in, sc.in_image, static_cast<const T*>(dx), d.x_image(), d.N,
               d.x_image());
}

// dW [O, K] = Σ_n dy_n [O, P] · col_nᵀ [P, K]   (the first chunk overwrites, the rest add)
// One image per round (the CPU): one GEMM with beta = 1 accumulating into dW. Several (CUDA):
// the chunk's per-image products dW_i in ONE strided-batched GEMM into a scratch [nb, O·K], then
// ONE more GEMM sums them into dW (ones [1, nb] · scratch): two launches per chunk, not nb.
template <typename T>
void backward_weight_native(Device dev, T* dw, const T* dy, const T* x, const ConvDims& d) {
  const int64_t K = d.col_rows(), P = d.pixels(), OK = d.O * K;
  // The scratch of per-image products stays under the column budget too.
  const int64_t chunk = std::min(images_per_chunk(dev, d),
                                 std::max<int64_t>(1, kColBudget / std::max<int64_t>(1, OK)));
  const bool pointwise = d.win.is_pointwise();
  // colᵀ packed straight from each image by our GEMM (implicit im2col, as in forward_native).
  const bool implicit = !pointwise && packed_gemm_applies<T>(dev, P);  // one image a round
  const DType dt = dtype_of<T>::value;
  Tensor col = pointwise || implicit ? Tensor() : Tensor::empty({chunk * K * P}, dt, dev);
  Tensor partial = chunk > 1 ? Tensor::empty({chunk * OK}, dt, dev) : Tensor();
  Tensor ones = chunk > 1 ? Tensor::full({chunk}, 1.0, dt, dev) : Tensor();
  for (int64_t n0 = 0; n0 < d.N; n0 += chunk) {
    const int64_t nb = std::min(chunk, d.N - n0);
    const T* cols = x + n0 * d.x_image();
    const T beta = n0 == 0 ? T(0) : T(1);
    if (implicit) {
      const cpu::GemmPackB<T> pack = [&](T* dst, int64_t p0, int64_t pc, int64_t t0, int64_t tn,
                                         int NR) {
        cpu::pack_im2col_block_transposed(dst, cols, d.H, d.W, d.win, p0, pc, t0, tn, NR);
      };
      cpu::gemm_blocked_packed_b(false, d.O, K, P, T(1), dy + n0 * d.y_image(), P, pack, beta,
                                 dw, K);
      continue;
    }
    if (!pointwise) {
      launch<Im2col, T>(dev, col.data<T>(), cols, nb, d.C, d.H, d.W, d.win);
      cols = col.data<T>();
    }
    if (nb == 1) {
      launch<Gemm, T>(dev, false, true, d.O, K, P, T(1), dy + n0 * d.y_image(), P, cols, P, beta,
                      dw, K);
      continue;
    }
    gemm_batched_on(dev, false, true, d.O, K, P, dy + n0 * d.y_image(), P, d.y_image(), cols, P,
                    K * P, partial.data<T>(), K, OK, nb);
    const ExactMatmulScope sum_in_fp32;  // a sum, not a product: no bf16/TF32 rounding here
    launch<Gemm, T>(dev, false, false, 1, OK, nb, T(1), ones.data<T>(), nb, partial.data<T>(), OK,
                    beta, dw, OK);
  }
}

}  // namespace

void set_conv_images_per_chunk_for_testing(int64_t images) { g_chunk_override = images; }

void set_conv_winograd(bool enabled) { g_winograd = enabled ? 1 : 0; }

void set_conv_winograd_way_for_testing(int way) { g_winograd_way = way; }

void set_conv_winograd_tile_for_testing(int tile) {
  PRM_CHECK(tile == 0 || tile == 2 || tile == 4, "winograd tile ", tile, ": 0, 2 or 4");
  g_winograd_tile = tile;
}

bool conv_winograd() {
  if (g_winograd < 0) {
    const char* v = std::getenv("PRM_WINOGRAD");
    PRM_CHECK(v == nullptr || !std::strcmp(v, "0") || !std::strcmp(v, "1"), "PRM_WINOGRAD=", v,
              " is not 0 (off) or 1 (on, the default)");
    g_winograd = v == nullptr || std::strcmp(v, "0") != 0 ? 1 : 0;
  }
  return g_winograd == 1;
}

const char* conv_engine_name(ConvEngine engine) {
  return engine == ConvEngine::cudnn ? "cudnn" : "native";
}

ConvEngine parse_conv_engine(const std::string& name) {
  PRM_CHECK(name == "native" || name == "cudnn", "conv engine '", name,
            "' is not one of native, cudnn");
#if !PRM_USE_CUDNN
  PRM_CHECK(name != "cudnn", "conv engine cudnn needs a build with cuDNN (USE_CUDNN=1); this "
            "build has USE_CUDNN=0");
#endif
  return name == "cudnn" ? ConvEngine::cudnn : ConvEngine::native;
}

void check_conv_engine_precision(ConvEngine engine, DType dtype) {
  PRM_CHECK(!(engine == ConvEngine::cudnn && dtype == DType::f32 &&
              matmul_precision() == Precision::bf16),
            "conv engine cudnn does not support --precision bf16 yet; use --conv-engine native");
}

Tensor conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const Conv2dOptions& opt) {
  const char* op = "conv2d";
  check_operands(op, x, weight, "input");
  const ConvDims d = conv_dims(op, x.shape(), weight.shape(), opt);
  if (bias.defined()) {
    check_same_dtype(op, x, bias);
    check_same_device(op, x, bias);
    PRM_CHECK(bias.dim() == 1 && bias.size(0) == d.O, op, ": bias must be [", d.O, "] for weight ",
              weight.shape_str(), ", got ", bias.shape_str());
  }
  Tensor y = Tensor::empty(d.output_shape(), x.dtype(), x.device());
  if (y.numel() == 0) return y;
  const Device dev = x.device();
  PRM_DISPATCH_FLOAT(x.dtype(), op, {
    scalar_t* yp = y.data<scalar_t>();
    const scalar_t* xp = x.data<scalar_t>();
    if (use_cudnn(dev, dtype_of<scalar_t>::value, opt)) {
#if PRM_USE_CUDNN
      cuda::cudnn_conv2d_forward(yp, xp, weight.data<scalar_t>(), d.N, d.C, d.H, d.W, d.O,
                                 d.win);
#endif
    } else {
      forward_native(dev, yp, xp, weight, d);
    }
    if (bias.defined())
      launch<AddChannelBias, scalar_t>(dev, yp, bias.data<scalar_t>(), d.N, d.O, d.pixels());
  });
  return y;
}

namespace {

// BatchNormApply's run (batch_norm_apply_run) on each row of a tile of the convolution's output
// (rows = channels i0 .., columns = pixels j0 .. of one image), with which parts are present as
// template flags (null pointers and a constant the compiler sees), so that each row is one loop
// without tests, which the compiler vectorises.
template <typename T>
using BnTileFn = void (*)(T* c, int64_t ldc, int64_t i0, int64_t j0, int64_t rows, int64_t cols,
                          const T* mean, const T* invstd, const T* weight, const T* bias,
                          const T* residual, int64_t P);

template <typename T, int kFlags>
__attribute__((always_inline)) inline void bn_tile_body(T* c, int64_t ldc, int64_t i0, int64_t j0,
                                                        int64_t rows, int64_t cols, const T* mean,
                                                        const T* invstd, const T* weight,
                                                        const T* bias, const T* residual,
                                                        int64_t P) {
  constexpr bool kWeight = kFlags & 1, kBias = kFlags & 2, kResidual = kFlags & 4,
                 kRelu = kFlags & 8;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t ch = i0 + r;
    T* row = c + r * ldc;  // in place: BatchNormApply's run over the row's cols values
    batch_norm_apply_run(row, row, mean, invstd, kWeight ? weight : nullptr,
                         kBias ? bias : nullptr, kResidual ? residual + ch * P + j0 : nullptr,
                         kRelu, ch, 0, cols);
  }
  // (No prefetch of the residual: since the GEMM goes along a strip of rows (gemm_region), its
  // rows are read in long runs the hardware prefetcher follows; asking for the next tile's
  // columns, or for the next rows as when it went down a strip of columns, measured the same.)
}

template <typename T, int kFlags>
void bn_tile(T* c, int64_t ldc, int64_t i0, int64_t j0, int64_t rows, int64_t cols, const T* mean,
             const T* invstd, const T* weight, const T* bias, const T* residual, int64_t P) {
  bn_tile_body<T, kFlags>(c, ldc, i0, j0, rows, cols, mean, invstd, weight, bias, residual, P);
}

#if defined(__x86_64__)
// The same compiled for AVX-512 (the rest of the binary is for the baseline x86-64: SSE2), taken
// when the CPU kernels' path is AVX-512. The same operations, each rounded (no contraction into
// FMAs: -ffp-contract=off), so the same bits.
template <typename T, int kFlags>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void bn_tile_avx512(
    T* c, int64_t ldc, int64_t i0, int64_t j0, int64_t rows, int64_t cols, const T* mean,
    const T* invstd, const T* weight, const T* bias, const T* residual, int64_t P) {
  bn_tile_body<T, kFlags>(c, ldc, i0, j0, rows, cols, mean, invstd, weight, bias, residual, P);
}
#endif

template <typename T, int... kFlags>
BnTileFn<T> bn_tile_pick(int flags, std::integer_sequence<int, kFlags...>) {
  static constexpr BnTileFn<T> table[] = {&bn_tile<T, kFlags>...};
#if defined(__x86_64__)
  static constexpr BnTileFn<T> table_avx512[] = {&bn_tile_avx512<T, kFlags>...};
  if (cpu_isa_active() == CpuIsa::avx512) return table_avx512[flags];
#endif
  return table[flags];
}

template <typename T>
BnTileFn<T> bn_tile_fn(bool weight, bool bias, bool residual, bool relu) {
  const int flags = (weight ? 1 : 0) | (bias ? 2 : 0) | (residual ? 4 : 0) | (relu ? 8 : 0);
  return bn_tile_pick<T>(flags, std::make_integer_sequence<int, 16>{});
}

}  // namespace

Tensor conv2d_batch_norm_eval_forward(const Tensor& x, const Tensor& weight,
                                      const Conv2dOptions& opt, const Tensor& bn_weight,
                                      const Tensor& bn_bias, const Tensor& running_mean,
                                      const Tensor& running_var, double eps,
                                      const BatchNormEpilogue& epilogue) {
  const char* op = "conv2d_batch_norm_eval";
  check_operands(op, x, weight, "input");
  const ConvDims d = conv_dims(op, x.shape(), weight.shape(), opt);
  const Device dev = x.device();
  const int64_t K = d.col_rows(), P = d.pixels();
  bool fused = false;
  PRM_DISPATCH_FLOAT(x.dtype(), op, { fused = packed_gemm_applies<scalar_t>(dev, K); });
  if (!fused || d.N * d.O * P == 0) {  // the two ops
    const Tensor y = conv2d_forward(x, weight, Tensor(), opt);
    return batch_norm_forward(y, bn_weight, bn_bias, running_mean, running_var, false, 0.1, eps,
                              nullptr, nullptr, epilogue);
  }
  Tensor y = Tensor::empty(d.output_shape(), x.dtype(), dev);
  check_batch_norm_inputs(y, bn_weight, bn_bias, running_mean, running_var, false, eps,
                          epilogue.residual);
  PRM_DISPATCH_FLOAT(x.dtype(), op, {
    using T = scalar_t;
    // invstd as batch_norm_forward's eval mode forms it (BatchNormFinalize, no update).
    Tensor invstd = Tensor::empty({d.O}, x.dtype(), dev);
    T* no_update = nullptr;
    launch<BatchNormFinalize, T>(dev, invstd.data<T>(), no_update, no_update,
                                 running_mean.data<T>(), running_var.data<T>(), d.O, d.N * P, 0.1,
                                 eps);
    const T* mean = running_mean.data<T>();
    const T* inv = invstd.data<T>();
    auto data_or_null = [](const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
    const T* bw = data_or_null(bn_weight);
    const T* bb = data_or_null(bn_bias);
    const T* res = data_or_null(epilogue.residual);
    const bool relu = epilogue.relu;
    const T* w = weight.data<T>();
    T* yp = y.data<T>();
    const BnTileFn<T> tile = bn_tile_fn<T>(bw != nullptr, bb != nullptr, res != nullptr, relu);
    CpuForward<T> forward(w, d, &weight);
    for (int64_t n = 0; n < d.N; ++n) {
      const T* xn = x.data<T>() + n * d.x_image();
      T* yn = yp + n * d.y_image();
      const T* res_n = res != nullptr ? res + n * d.y_image() : nullptr;
      const cpu::GemmEpilogue<T> bn = [&](T* c, int64_t ldc, int64_t i0, int64_t j0,
                                          int64_t rows, int64_t cols) {
        tile(c, ldc, i0, j0, rows, cols, mean, inv, bw, bb, res_n, P);
      };
      forward.image(yn, xn, bn);
    }
  });
  return y;
}

Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& input_shape,
                             const Conv2dOptions& opt) {
  const char* op = "conv2d_backward_input";
  check_operands(op, grad_out, weight, "grad_out");
  const ConvDims d = conv_dims(op, input_shape, weight.shape(), opt);
  PRM_CHECK(grad_out.shape() == d.output_shape(), op, ": grad_out ", grad_out.shape_str(),
            " does not match the output ", shape_str(d.output_shape()), " of input ",
            shape_str(input_shape), " and weight ", weight.shape_str());
  Tensor dx = Tensor::empty(input_shape, grad_out.dtype(), grad_out.device());
  if (dx.numel() == 0) return dx;
  if (grad_out.numel() == 0) {  // no output pixel, so no input pixel was used
    dx.fill_(0);
    return dx;
  }
  const Device dev = grad_out.device();
  PRM_DISPATCH_FLOAT(grad_out.dtype(), op, {
    scalar_t* dxp = dx.data<scalar_t>();
    const scalar_t* dyp = grad_out.data<scalar_t>();
    const scalar_t* wp = weight.data<scalar_t>();
    if (use_cudnn(dev, dtype_of<scalar_t>::value, opt)) {
#if PRM_USE_CUDNN
      cuda::cudnn_conv2d_backward_data(dxp, dyp, wp, d.N, d.C, d.H, d.W, d.O, d.win);
#endif
    } else {
      backward_input_native(dev, dxp, dyp, wp, d);
    }
  });
  return dx;
}

Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& weight_shape,
                              const Conv2dOptions& opt) {
  const char* op = "conv2d_backward_weight";
  check_operands(op, grad_out, x, "grad_out");
  const ConvDims d = conv_dims(op, x.shape(), weight_shape, opt);
  PRM_CHECK(grad_out.shape() == d.output_shape(), op, ": grad_out ", grad_out.shape_str(),
            " does not match the output ", shape_str(d.output_shape()), " of input ", x.shape_str(),
            " and weight ", shape_str(weight_shape));
  Tensor dw = Tensor::empty(weight_shape, x.dtype(), x.device());
  if (grad_out.numel() == 0 || d.C == 0) {  // an empty sum
    dw.fill_(0);
    return dw;
  }
  const Device dev = x.device();
  PRM_DISPATCH_FLOAT(x.dtype(), op, {
    scalar_t* dwp = dw.data<scalar_t>();
    const scalar_t* dyp = grad_out.data<scalar_t>();
    const scalar_t* xp = x.data<scalar_t>();
    if (use_cudnn(dev, dtype_of<scalar_t>::value, opt)) {
#if PRM_USE_CUDNN
      cuda::cudnn_conv2d_backward_filter(dwp, dyp, xp, d.N, d.C, d.H, d.W, d.O, d.win);
#endif
    } else {
      backward_weight_native(dev, dwp, dyp, xp, d);
    }
  });
  return dw;
}

Tensor conv2d_backward_bias(const Tensor& grad_out) {
  const char* op = "conv2d_backward_bias";
  PRM_CHECK(grad_out.defined(), op, ": undefined grad_out");
  check_float(op, grad_out);
  check_dim(op, grad_out, 4, "grad_out");
  const int64_t N = grad_out.size(0), O = grad_out.size(1);
  const int64_t P = grad_out.size(2) * grad_out.size(3);
  const Device dev = grad_out.device();
  Tensor db = Tensor::empty({O}, grad_out.dtype(), dev);
  if (N * P == 0) {
    db.fill_(0);
    return db;
  }
  Tensor ones = Tensor::full({P}, 1.0, grad_out.dtype(), dev);
  // db [1, O] (+)= ones [1, P] · dy_nᵀ [P, O], image by image: sums, so never in bf16 or TF32.
  const ExactMatmulScope sum_in_fp32;
  PRM_DISPATCH_FLOAT(grad_out.dtype(), op, {
    const scalar_t* dy = grad_out.data<scalar_t>();
    for (int64_t n = 0; n < N; ++n)
      launch<Gemm, scalar_t>(dev, false, true, 1, O, P, scalar_t(1), ones.data<scalar_t>(), P,
                             dy + n * O * P, P, n == 0 ? scalar_t(0) : scalar_t(1),
                             db.data<scalar_t>(), O);
  });
  return db;
}

Tensor min_all(const Tensor& x) {
  check_float("min_all", x);
  PRM_CHECK(x.numel() > 0, "min_all: empty tensor ", x.shape_str());
  Tensor cur = x;
  int64_t n = x.numel();
  for (int64_t parts : {int64_t(65536), int64_t(256), int64_t(1)}) {
    if (n <= parts && parts != 1) continue;
    Tensor next = Tensor::empty({parts}, x.dtype(), x.device());
    PRM_DISPATCH_FLOAT(x.dtype(), "min_all", {
      launch<MinStride, scalar_t>(x.device(), next.data<scalar_t>(), cur.data<scalar_t>(), n,
                                  parts);
    });
    cur = next;
    n = parts;
  }
  return reshape_forward(cur, {});
}

Tensor conv2d_backward_input_excitation(const Tensor& grad_out, const Tensor& x,
                                        const Tensor& weight, const Conv2dOptions& opt,
                                        const Tensor& channel_scale) {
  const char* op = "conv2d_backward_input_excitation";
  check_operands(op, x, weight, "input");
  PRM_CHECK(x.size(0) == 1 || grad_out.size(0) == x.size(0), op, ": grad_out ",
            grad_out.shape_str(), " and input ", x.shape_str(), " differ in batch");
  NoGradGuard no_graph;
  const Tensor x_hat = sub(x, min_all(x));          // Û = U - min(U) >= 0
  const Tensor w_plus = relu_forward(weight);        // W+ = max(W, 0)
  const Tensor z = conv2d_forward(x_hat, w_plus, Tensor(), opt);  // once, for all K
  Tensor inv = Tensor::empty(z.shape(), z.dtype(), z.device());
  PRM_DISPATCH_FLOAT(z.dtype(), op, {
    launch<ExcitationInverse, scalar_t>(z.device(), inv.data<scalar_t>(), z.data<scalar_t>(),
                                        z.numel());
  });
  Shape dx_shape = x.shape();
  dx_shape[0] = grad_out.size(0);
  return conv2d_backward_input_scaled(grad_out, inv, w_plus, x_hat, dx_shape, opt,
                                      channel_scale);
}

Tensor conv2d_backward_input_scaled(const Tensor& grad_out, const Tensor& out_scale,
                                    const Tensor& weight, const Tensor& in_scale,
                                    const Shape& input_shape, const Conv2dOptions& opt,
                                    const Tensor& channel_scale) {
  const char* op = "conv2d_backward_input_scaled";
  check_operands(op, grad_out, weight, "grad_out");
  const ConvDims d = conv_dims(op, input_shape, weight.shape(), opt);
  auto check_scale = [&](const Tensor& s, const Shape& of, const char* name) {
    check_same_dtype(op, grad_out, s);
    check_same_device(op, grad_out, s);
    Shape one = of;
    one[0] = 1;
    PRM_CHECK(s.shape() == of || s.shape() == one, op, ": ", name, " ", s.shape_str(),
              " is neither ", shape_str(of), " nor ", shape_str(one));
  };
  check_scale(out_scale, d.output_shape(), "out_scale");
  check_scale(in_scale, input_shape, "in_scale");
  if (channel_scale.defined()) {
    check_same_dtype(op, grad_out, channel_scale);
    check_same_device(op, grad_out, channel_scale);
    PRM_CHECK(channel_scale.shape() == Shape{d.O}, op, ": channel_scale ",
              channel_scale.shape_str(), " is not [", d.O, "]");
  }
  const Device dev = grad_out.device();
  if (dev != Device::cpu || grad_out.numel() == 0 || d.N == 0) {
    Tensor g = grad_out;
    if (channel_scale.defined()) g = mul(g, reshape(channel_scale, {1, d.O, 1, 1}));
    return mul(in_scale, conv2d_backward_input(mul(g, out_scale), weight, input_shape, opt));
  }
  PRM_CHECK(grad_out.shape() == d.output_shape(), op, ": grad_out ", grad_out.shape_str(),
            " does not match the output ", shape_str(d.output_shape()), " of input ",
            shape_str(input_shape), " and weight ", weight.shape_str());
  Tensor dx = Tensor::empty(input_shape, grad_out.dtype(), dev);
  PRM_DISPATCH_FLOAT(grad_out.dtype(), op, {
    InputGradScales<scalar_t> sc;
    sc.out = out_scale.data<scalar_t>();
    sc.out_image = out_scale.size(0) == 1 ? 0 : d.y_image();
    sc.in = in_scale.data<scalar_t>();
    sc.in_image = in_scale.size(0) == 1 ? 0 : d.x_image();
    sc.channel = channel_scale.defined() ? channel_scale.data<scalar_t>() : nullptr;
    backward_input_native(dev, dx.data<scalar_t>(), grad_out.data<scalar_t>(),
                          weight.data<scalar_t>(), d, sc);
  });
  return dx;
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opt) {
  Tensor y = conv2d_forward(x, weight, bias, opt);
  std::vector<Tensor> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  Conv2dSaved s;
  s.x = x.detach();
  s.weight = weight.detach();
  s.opt = opt;
  s.need_x = x.requires_grad();
  s.need_w = weight.requires_grad();
  s.has_bias = bias.defined();
  s.need_b = s.has_bias && bias.requires_grad();
  attach_grad_fn(
      y, "conv2d", "conv2d_backward_input/weight/bias", std::move(inputs),
      [s](const Tensor& g) {
        std::vector<Tensor> grads{
            s.need_x ? conv2d_backward_input(g, s.weight, grad_shape(s.x.shape()), s.opt)
                     : Tensor(),
            s.need_w ? conv2d_backward_weight(g, s.x, s.weight.shape(), s.opt) : Tensor()};
        if (s.has_bias) grads.push_back(s.need_b ? conv2d_backward_bias(g) : Tensor());
        return grads;
      },
      s);
  return y;
}

}  // namespace prm
