// Peak back-propagation (PRM, docs/prm.md step 5; docs/peak_backprop.md): from the class peaks of
// one image to its peak response maps.
//   1. Forward once (eval-mode BN, batch 1): CRMs M, upsampled by the head (x8, align_corners).
//   2. The head's peak stimulation on the upsampled M: scores s [1, C] and the kept peaks
//      (row-major order over (class, y, x), as the official code's torch.nonzero). A peak
//      (0, c, y, x) is used when s_c >= class_threshold and M[0, c, y, x] > peak_threshold.
//   3. Backward of a one-hot gradient at each used peak to the input image, every conv2d
//      propagating by the excitation-backprop rule: excitation_backprop_overrides(), passed to
//      the backward pass (conv2d's own backward is not touched).
//        batched:   all K peaks in ONE backward pass (BatchedCotangents: K one-hot seeds as the
//                   leading dimension of the gradients; forward activations and Z shared)
//        per_peak:  one backward per peak with retain_graph, as the official code (reference)
//   4. PRM_k = max(sum over RGB of grad_input_k, 0), normalised to sum 1 (an all-zero map stays
//      zero instead of becoming NaN).
#pragma once
#include <cstdint>
#include <vector>

#include "layers/module.h"
#include "prm/head.h"
#include "tensor/autograd.h"
#include "tensor/tensor.h"

namespace prm {

struct PeakBackpropOptions {
  double peak_threshold = 30.0;  // the official code's default; M must exceed it
  double class_threshold = 0.0;  // s_c must reach it
  PrmHead head;                  // upsampling and peak window (its peak_grad is unused here)
  bool batched = true;           // false: one backward per peak (the official way)
  int64_t max_peaks = 0;         // > 0: only the first max_peaks used peaks (benchmarks)
};

struct PeakResponse {
  Tensor crm;               // [1, C, 8h, 8w] upsampled class response maps (detached)
  Tensor scores;            // [1, C] class scores by peak stimulation
  std::vector<Peak> peaks;  // the K used peaks, in upsampled-CRM coordinates
  Tensor prms;              // [K, H, W] on the image's device, float of the image's dtype
  int64_t count() const { return static_cast<int64_t>(peaks.size()); }
};

// net maps [1, 3, H, W] to CRMs [1, C, h, w]. It is put in eval mode; its parameters stop
// requiring grad for the duration of the call (restored after).
PeakResponse peak_response_maps(Module& net, const Tensor& image,
                                const PeakBackpropOptions& opts = {});

// The two phases of peak_response_maps, for timing them apart (prm bench). The parameters must
// not require grad between them (hold a FrozenParameters).
struct PeakGraph {
  Tensor input;      // the image as a leaf requiring grad
  Tensor crm_graph;  // the upsampled CRMs with their graph
  PeakResponse response;  // crm, scores and peaks filled; prms by back_propagate_peaks
};
PeakGraph peak_forward(Module& net, const Tensor& image, const PeakBackpropOptions& opts);
void back_propagate_peaks(PeakGraph& graph, bool batched);

// The excitation-backprop rule for run_backward: every conv2d node's input gradient by
// conv2d_backward_input_excitation (conv2d.h; docs/excitation_backprop.md); its weight and bias
// gradients, when wanted, as conv2d's own.
BackwardOverrides excitation_backprop_overrides();
// The same rule for the graph under `root`, with one pass fewer per layer where K cotangents
// are batched: an eval-mode batch norm whose input is a conv2d's output, and that output's only
// use, hands its cotangent on without its per-channel scale (ReLU-gated, as its own backward
// gates it), and the conv2d's excitation rule multiplies the scale in while it packs the
// cotangent for its GEMM (conv2d_backward_input_excitation's channel_scale). The gradients are
// bit for bit those of excitation_backprop_overrides(): the same products, rounded in the same
// order. The rules keep state between the two nodes: use them for one backward pass of that
// graph at a time.
BackwardOverrides excitation_backprop_overrides(const Tensor& root);

// Step 4 alone, on input gradients g [K, 3, H, W] (any device, float): PRM_k = max(sum over
// the channels of g_k, 0), normalised to sum 1; an all-zero map stays zero. [K, H, W].
Tensor prms_from_gradients(const Tensor& g);

// Parameters stop requiring grad for the scope: peak back-propagation wants the input's gradient
// only, and batched cotangents allow activation gradients only.
class FrozenParameters {
 public:
  explicit FrozenParameters(Module& net);
  ~FrozenParameters();
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  std::vector<Tensor> params_;
  std::vector<bool> flags_;
};

}  // namespace prm
