#include "prm/head.h"

#include <cmath>

#include "tensor/ops.h"

namespace prm {

Tensor PrmHead::upsampled(const Tensor& crm) const {
  return upsample_bilinear_scale(crm, upsample, /*align_corners=*/true);
}

Tensor PrmHead::scores(const Tensor& crm) const {
  return peak_stimulation(upsampled(crm), peak_grad, window);
}

PrmHead::Stimulated PrmHead::stimulate(const Tensor& upsampled_crm) const {
  Stimulated out;
  PeakStimulationSaved saved;
  out.scores = peak_stimulation_forward(upsampled_crm, window, &saved);
  const std::vector<double> kept = saved.peak_map.to_vector();
  const std::vector<double> values = upsampled_crm.to_vector();
  const int64_t C = upsampled_crm.size(1), H = upsampled_crm.size(2), W = upsampled_crm.size(3);
  for (size_t i = 0; i < kept.size(); ++i) {
    if (kept[i] == 0) continue;
    const int64_t n = static_cast<int64_t>(i);
    out.peaks.push_back(Peak{n / (C * H * W), (n / (H * W)) % C, (n / W) % H, n % W, values[i]});
  }
  return out;
}

Json PrmHead::to_json() const {
  Json j = Json::object();
  j.set("upsample", Json(upsample));
  j.set("window", Json(window));
  j.set("peak_grad", peak_grad_name(peak_grad));
  return j;
}

PrmHead PrmHead::from_json(const Json& j, const std::string& source) {
  PrmHead h;
  try {
    if (const Json* u = j.find("upsample")) h.upsample = u->as_double();
    if (const Json* w = j.find("window")) h.window = w->as_int64();
    if (const Json* g = j.find("peak_grad")) h.peak_grad = parse_peak_grad(g->as_string());
  } catch (const Error& e) {
    throw Error(str_cat(source, ": damaged PRM head settings: ", e.what()));
  }
  PRM_CHECK(std::isfinite(h.upsample) && h.upsample >= 1, source, ": the head's upsample factor ",
            h.upsample, " is not a number >= 1");
  PRM_CHECK(h.window >= 1 && h.window % 2 == 1, source, ": the head's peak window ", h.window,
            " is not odd and positive");
  return h;
}

}  // namespace prm
