// 2-D convolution (cross-correlation, as in PyTorch) of NCHW tensors.
//
//   y[n][o][oy][ox] = b[o] + Σ_{c,ki,kj} w[o][c][ki][kj] · x[n][c][oy·s - p + ki·d][ox·s - p +
//   kj·d]
//
// (x is 0 outside the image). With col_n = im2col(x_n), a [Cin·kh·kw, Ho·Wo] matrix
// (kernels/im2col_math.h), and W the weight viewed as [Cout, Cin·kh·kw]:
//
//   forward:   y_n  = W · col_n  (+ b broadcast over the pixels)
//   backward:  dW   = Σ_n dy_n · col_nᵀ
//              dx_n = col2im(Wᵀ · dy_n)          (the transposed convolution of dy with W)
//              db[o] = Σ_{n,oy,ox} dy[n][o][oy][ox]
//
// Output size Ho = (H + 2p - d·(kh - 1) - 1) / s + 1 (likewise Wo). A 1x1, stride-1, unpadded
// conv skips im2col (col_n is x_n itself).
//
// On CUDA two engines compute the same thing: `native` (our im2col/col2im kernels + cuBLAS,
// the default) and `cudnn` (cuDNN's forward, backward-data and backward-filter; only in builds
// with USE_CUDNN=1). The engine is chosen per call, in Conv2dOptions (the Conv2d module keeps
// one per layer), and has no effect on the CPU.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "tensor/ops/batch_norm.h"
#include "tensor/tensor.h"

namespace prm {

enum class ConvEngine { native, cudnn };
const char* conv_engine_name(ConvEngine engine);  // "native" | "cudnn"
// "native" | "cudnn"; prm::Error for anything else, or cudnn in a build without cuDNN.
ConvEngine parse_conv_engine(const std::string& name);
// Whether `engine` computes `dtype` on CUDA at matmul_precision() as it says: cuDNN does not take
// --precision bf16 for float32 data (bf16 inputs exist only in the native engine's GEMMs, and
// cuDNN would silently compute fp32), so that is a one-line prm::Error naming the native engine.
// Every cuDNN convolution checks it; a command may call it first, to fail before any work.
void check_conv_engine_precision(ConvEngine engine, DType dtype);

struct Conv2dOptions {
  int64_t stride = 1, padding = 0, dilation = 1;
  ConvEngine engine = ConvEngine::native;  // CUDA only; cudnn needs USE_CUDNN=1
};

// x [N, Cin, H, W], weight [Cout, Cin, kh, kw], bias [Cout] or undefined; returns
// [N, Cout, Ho, Wo]. Differentiable in all three.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dOptions& opt = {});

// The named forward and backward functions of conv2d, plain functions outside autograd (no graph
// is recorded; each returns a fresh tensor). conv2d's node calls the three backward ones; ops
// that build their own backward rule from them (excitation backprop) call them too.
Tensor conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const Conv2dOptions& opt = {});
// dx = the transposed convolution of grad_out [N, Cout, Ho, Wo] with weight [Cout, Cin, kh, kw],
// for an input of input_shape [N, Cin, H, W].
Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& input_shape,
                             const Conv2dOptions& opt = {});
// dW [Cout, Cin, kh, kw] = Σ_n grad_out_n · im2col(x_n)ᵀ.
// For tests: the native engine's images per im2col/GEMM round (0: automatic, one on the CPU), so
// that the CPU runs the chunked path CUDA takes.
void set_conv_images_per_chunk_for_testing(int64_t images);
// Whether the CPU forward (float32) of a 3x3, stride-1, padding-1 convolution with enough
// channels and pixels takes Winograd's F(2x2, 3x3) (docs/conv2d.md) instead of the implicit-im2col
// GEMM: 2.25 times fewer multiply-adds, other roundings. On by default; the environment variable
// PRM_WINOGRAD=0 turns it off for the whole process, set_conv_winograd for what follows.
void set_conv_winograd(bool enabled);
bool conv_winograd();
// A promise, for as long as one is alive (on any thread), that no weight tensor a convolution
// reads changes: an inference run, not training nor loading into the model. The CPU forward
// then packs each weight tensor into its GEMM's strips (and Winograd's transformed weights)
// once, keeps them, and skips that packing in later calls with the same weights (docs/conv2d.md:
// about 3% of ResNet-50's forward at 448 x 448). The same numbers, bit for bit, as without.
// The packs (about the weights' size again) are freed when the last scope ends.
class ConstantWeights {
 public:
  ConstantWeights();
  ~ConstantWeights();
  ConstantWeights(const ConstantWeights&) = delete;
  ConstantWeights& operator=(const ConstantWeights&) = delete;
  // The bytes of packed weights held now (0 with no scope alive).
  static size_t packed_bytes();
};
// Which of Winograd's two ways an image takes (docs/conv2d.md): 0 by their cost (the default),
// 1 chunks of tile rows, 2 the whole image. For tests: the two give the same bits.
void set_conv_winograd_way_for_testing(int way);
// Which Winograd a convolution that takes one runs (docs/conv2d.md): 0 by its size (the
// default), 2 F(2x2, 3x3), 4 F(4x4, 3x3). For tests.
void set_conv_winograd_tile_for_testing(int tile);

Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& weight_shape,
                              const Conv2dOptions& opt = {});
// db [Cout] = grad_out summed over batch and pixels.
Tensor conv2d_backward_bias(const Tensor& grad_out);

// The excitation-backprop rule (probabilistic winner-take-all) that peak back-propagation puts
// in place of conv2d_backward_input (docs/excitation_backprop.md). With U = x, the offset
// o = min(U) over the whole tensor, Û = U - o, W+ = max(W, 0) and Z = conv(Û, W+) (no bias):
//   grad_U = Û * conv_transpose(G * inv(Z), W+),  inv(Z) = 0 where Z < 1e-10, else 1/(|Z| + 1e-10)
// grad_out may carry K cotangents ([K, Cout, Ho, Wo]) for an x of batch 1: Z and Û are formed
// once and broadcast over the K.
// channel_scale (optional, [Cout]) multiplies grad_out per output channel first, as
// mul(grad_out, channel_scale reshaped [1, Cout, 1, 1]) would: peak back-propagation defers an
// eval-mode batch norm's scale to here (prm/peak_backprop.cpp).
Tensor conv2d_backward_input_excitation(const Tensor& grad_out, const Tensor& x,
                                        const Tensor& weight, const Conv2dOptions& opt = {},
                                        const Tensor& channel_scale = Tensor());
// in_scale ⊙ conv2d_backward_input(grad_out ⊙ out_scale, weight), the excitation rule's sandwich,
// bit for bit what the three ops give. out_scale is shaped as grad_out, in_scale as the input,
// either with batch 1 (shared by every image). On the CPU's native engine the products ride on
// the convolution's own copies and col2im instead of making two more passes over [N, ...]
// tensors; elsewhere it is the three ops. With channel_scale ([Cout]), grad_out ⊙ channel_scale
// (broadcast over images and pixels) stands for grad_out, bit for bit the four ops; on the CPU
// it rides on the GEMM's packing of dy or on the copy of dy into the merged images' operand.
Tensor conv2d_backward_input_scaled(const Tensor& grad_out, const Tensor& out_scale,
                                    const Tensor& weight, const Tensor& in_scale,
                                    const Shape& input_shape, const Conv2dOptions& opt = {},
                                    const Tensor& channel_scale = Tensor());

// Inference (no graph): batch_norm_forward(conv2d_forward(x, weight, no bias, opt), bn_weight,
// bn_bias, running_mean, running_var, eval mode, eps, epilogue) in one pass over the output. On
// the CPU's own GEMM the batch norm (running statistics), the epilogue's residual add and ReLU
// are applied to each block of the output as the GEMM finishes it (cpu::GemmEpilogue), while it
// is in cache, instead of in a pass of their own; elsewhere (CUDA, OpenBLAS, bf16 inputs) it is
// the two ops. Bit for bit the two ops either way. Refuses what the two ops refuse.
Tensor conv2d_batch_norm_eval_forward(const Tensor& x, const Tensor& weight,
                                      const Conv2dOptions& opt, const Tensor& bn_weight,
                                      const Tensor& bn_bias, const Tensor& running_mean,
                                      const Tensor& running_var, double eps,
                                      const BatchNormEpilogue& epilogue);

// What conv2d's autograd node keeps (Node::saved), for a BackwardOverride of "conv2d": the
// input and weight (detached), the options, and which gradients are wanted (need_*; the
// gradients come back as {dx, dweight[, dbias]}).
struct Conv2dSaved {
  Tensor x, weight;
  Conv2dOptions opt;
  bool need_x = false, need_w = false, has_bias = false, need_b = false;
};

// min(x) over all elements as a 0-dim tensor on x's device (no host round trip).
Tensor min_all(const Tensor& x);

}  // namespace prm
