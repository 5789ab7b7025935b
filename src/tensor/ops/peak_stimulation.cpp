#include "tensor/ops/peak_stimulation.h"

#include "kernels/peaks.h"
#include "tensor/autograd.h"

namespace prm {

PeakGrad parse_peak_grad(const std::string& name) {
  PRM_CHECK(name == "mean" || name == "official", "peak gradient '", name,
            "' is not one of mean, official");
  return name == "mean" ? PeakGrad::mean : PeakGrad::official;
}

const char* peak_grad_name(PeakGrad mode) { return mode == PeakGrad::mean ? "mean" : "official"; }

Tensor peak_stimulation_forward(const Tensor& crm, int64_t window, PeakStimulationSaved* saved) {
  check_float("peak_stimulation", crm);
  check_dim("peak_stimulation", crm, 4, "class response maps [N, C, H, W]");
  PRM_CHECK(window >= 1 && window % 2 == 1, "peak_stimulation: window ", window,
            " must be odd and positive");
  const int64_t N = crm.size(0), C = crm.size(1), H = crm.size(2), W = crm.size(3);
  PRM_CHECK(H > 0 && W > 0, "peak_stimulation: empty maps ", crm.shape_str());
  Tensor peak_map = Tensor::empty(crm.shape(), crm.dtype(), crm.device());
  Tensor scores = Tensor::empty({N, C}, crm.dtype(), crm.device());
  Tensor counts = Tensor::empty({N, C}, crm.dtype(), crm.device());
  PRM_DISPATCH_FLOAT(crm.dtype(), "peak_stimulation", {
    launch<PeakStimulationForward, scalar_t>(crm.device(), peak_map.data<scalar_t>(),
                                             scores.data<scalar_t>(), counts.data<scalar_t>(),
                                             crm.data<scalar_t>(), N * C, H, W, window);
  });
  if (saved) {
    saved->peak_map = peak_map;
    saved->counts = counts;
  }
  return scores;
}

namespace {

Tensor peak_backward(const Tensor& dscores, const PeakStimulationSaved& s, bool mean_grad) {
  const Tensor& map = s.peak_map;
  PRM_CHECK(dscores.shape() == s.counts.shape(), "peak_stimulation_backward: dscores ",
            dscores.shape_str(), " vs scores ", s.counts.shape_str());
  Tensor dcrm = Tensor::empty(map.shape(), map.dtype(), map.device());
  PRM_DISPATCH_FLOAT(map.dtype(), "peak_stimulation_backward", {
    launch<PeakStimulationBackward, scalar_t>(
        map.device(), dcrm.data<scalar_t>(), dscores.data<scalar_t>(), map.data<scalar_t>(),
        s.counts.data<scalar_t>(), mean_grad, map.size(0) * map.size(1),
        map.size(2) * map.size(3));
  });
  return dcrm;
}

}  // namespace

Tensor peak_stimulation_backward_mean(const Tensor& dscores, const PeakStimulationSaved& saved) {
  return peak_backward(dscores, saved, true);
}

Tensor peak_stimulation_backward_official(const Tensor& dscores,
                                          const PeakStimulationSaved& saved) {
  return peak_backward(dscores, saved, false);
}

Tensor peak_stimulation_backward(const Tensor& dscores, const PeakStimulationSaved& saved) {
  return saved.mode == PeakGrad::mean ? peak_stimulation_backward_mean(dscores, saved)
                                      : peak_stimulation_backward_official(dscores, saved);
}

Tensor peak_stimulation(const Tensor& crm, PeakGrad mode, int64_t window) {
  PeakStimulationSaved saved;
  saved.mode = mode;
  Tensor scores = peak_stimulation_forward(crm, window, &saved);
  attach_grad_fn(scores, "peak_stimulation",
                 mode == PeakGrad::mean ? "peak_stimulation_backward_mean"
                                        : "peak_stimulation_backward_official",
                 {crm}, [saved](const Tensor& g) {
                   return std::vector<Tensor>{peak_stimulation_backward(g, saved)};
                 });
  return scores;
}

}  // namespace prm
