// Peak stimulation (PRM, Zhou et al. 2018; docs/prm.md step 2): class scores from the peaks of the
// class response maps. For crm [N, C, H, W] (the CRMs after sub-pixel upsampling x8), per image
// n and class c:
//   peaks  = locations that are the first maximum of their w x w window (-inf padding; w = 3)
//   kept   = peaks with value >= the median of the plane (the lower middle for an even count)
//   s[n,c] = mean of crm over the kept peaks (n_c >= 1 of them)
// Backward, two named rules (docs/peak_stimulation.md):
//   peak_stimulation_backward_mean:     dcrm = kept * ds[n,c] / n_c  (the true gradient of s;
//                                       gradient-checked)
//   peak_stimulation_backward_official: dcrm = kept * ds[n,c]        (the official PRM code's
//                                       backward, which omits / n_c: n_c times larger; the
//                                       paper's models were trained with it)
// The peak set is piecewise constant in crm, so the gradient is exact away from ties.
#pragma once
#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace prm {

enum class PeakGrad { mean, official };
PeakGrad parse_peak_grad(const std::string& name);  // "mean" | "official"
const char* peak_grad_name(PeakGrad mode);

struct PeakStimulationSaved {
  Tensor peak_map;  // [N, C, H, W] 1 at kept peaks, 0 elsewhere (crm's dtype and device)
  Tensor counts;    // [N, C] n_c, the number of kept peaks
  PeakGrad mode = PeakGrad::mean;
};

// scores [N, C]; fills *saved when given. window: odd, >= 1.
Tensor peak_stimulation_forward(const Tensor& crm, int64_t window, PeakStimulationSaved* saved);
Tensor peak_stimulation_backward_mean(const Tensor& dscores, const PeakStimulationSaved& saved);
Tensor peak_stimulation_backward_official(const Tensor& dscores,
                                          const PeakStimulationSaved& saved);
// The rule saved.mode names.
Tensor peak_stimulation_backward(const Tensor& dscores, const PeakStimulationSaved& saved);

Tensor peak_stimulation(const Tensor& crm, PeakGrad mode, int64_t window = 3);

}  // namespace prm
