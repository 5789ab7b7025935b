// The PRM head (docs/prm.md, steps 1-2): what turns a network's class response maps (CRMs) into
// class scores and peaks. Training, validation, inference and `prm bench` all go through one
// PrmHead, so its three settings are written down once and travel with a run (config, checkpoint,
// weights metadata):
//   upsample   sub-pixel factor: the CRMs are upsampled bilinearly with align_corners (x8: 14x14
//              becomes 112x112); peaks and PRMs live on this grid
//   window     peak stimulation's window (3: a peak is the first maximum of its 3x3 window)
//   peak_grad  the class scores' gradient rule (official: the paper's; mean: the true gradient)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/json.h"
#include "prm/peak.h"
#include "tensor/ops/peak_stimulation.h"
#include "tensor/tensor.h"

namespace prm {

struct PrmHead {
  double upsample = 8.0;
  int64_t window = 3;
  PeakGrad peak_grad = PeakGrad::official;

  // CRMs [N, C, h, w] -> [N, C, floor(h*upsample), floor(w*upsample)], differentiable.
  Tensor upsampled(const Tensor& crm) const;
  // Class scores [N, C] of CRMs [N, C, h, w] (not yet upsampled), differentiable by peak_grad:
  // what training and validation score.
  Tensor scores(const Tensor& crm) const;

  // Peak stimulation of CRMs that are already upsampled, no graph: the scores and every kept
  // peak, in row-major order over (b, c, y, x) as the official code's torch.nonzero.
  struct Stimulated {
    Tensor scores;            // [N, C]
    std::vector<Peak> peaks;
  };
  Stimulated stimulate(const Tensor& upsampled_crm) const;

  Json to_json() const;
  // A head as to_json wrote it; fields it lacks keep their defaults (runs from before the head
  // was stored). prm::Error naming `source` when a value is bad.
  static PrmHead from_json(const Json& j, const std::string& source);
};

}  // namespace prm
