#include "prm/infer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "data/json.h"
#include "data/transforms.h"
#include "prm/image_ops.h"
#include "prm/proposal_files.h"
#include "prm/proposals.h"
#include "prm/visualize.h"
#include "tensor/ops.h"

namespace prm {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The PRMs [K, S, S] at the extraction size E x E (bicubic, clamped at 0, renormalised to sum 1).
std::vector<float> prms_at(const Tensor& prms, int S, int E) {
  const std::vector<double> v = prms.to_vector();
  const int64_t K = prms.size(0);
  std::vector<float> out;
  out.reserve(static_cast<size_t>(K) * E * E);
  for (int64_t k = 0; k < K; ++k) {
    std::vector<float> prm(v.begin() + k * S * S, v.begin() + (k + 1) * S * S);
    if (E != S) {
      prm = bicubic_upsample(prm.data(), S, S, E, E);
      double total = 0;
      for (float& x : prm) total += (x = std::max(x, 0.0f));
      if (total > 0)
        for (float& x : prm) x = static_cast<float>(x / total);
    }
    out.insert(out.end(), prm.begin(), prm.end());
  }
  return out;
}

// Proposals for the E x E working image.
std::vector<Mask> make_proposals(const Image& resized, const std::vector<float>& prms, int64_t K,
                                 const std::string& id, const Image& original,
                                 const InferOptions& o, int E) {
  if (o.proposals.empty()) return selective_search(resized, o.search);
  if (o.proposals == "none") {
    std::vector<Mask> pool;
    const Segmentation superpixels = felzenszwalb(resized, PrmMaskOptions{}.superpixel_k, 0.8,
                                                  PrmMaskOptions{}.superpixel_min_size);
    for (int64_t k = 0; k < K; ++k)
      for (Mask& m : masks_from_prm(prms.data() + k * E * E, E, E, &superpixels))
        pool.push_back(std::move(m));
    return pool;
  }
  std::vector<Mask> files = load_proposals(o.proposals, id, original.height, original.width);
  for (Mask& m : files) m = resize_mask_nearest(m, E, E);
  return files;
}

}  // namespace

ImageInference infer_image(Module& net, const Image& image, const std::string& id, Device device,
                           const InferOptions& o) {
  PRM_CHECK(image.width > 0 && image.height > 0 && image.channels == 3, id,
            ": expected an RGB image");
  const int S = o.size;
  ImageInference r;
  r.id = id;
  r.width = image.width;
  r.height = image.height;
  std::vector<float> pixels(static_cast<size_t>(3) * S * S);
  resize_flip_normalize(image, S, /*flip=*/false, pixels.data());
  std::vector<double> values(pixels.begin(), pixels.end());
  const Tensor x = Tensor::from_vector(values, {1, 3, S, S}, DType::f32, device);

  auto t0 = std::chrono::steady_clock::now();
  r.response = peak_response_maps(net, x, o.peaks);
  r.class_scores = r.response.scores.to_vector();
  r.seconds_forward_backprop = seconds_since(t0);
  const int C = static_cast<int>(r.response.crm.size(1));
  const int h = static_cast<int>(r.response.crm.size(2)), w = static_cast<int>(r.response.crm.size(3));
  // A peak at (y, x) of the x8 upsampled maps (align_corners) lies at CRM coordinate
  // x * (w0 - 1) / (w - 1), w0 = w / 8 the CRM's own width; CRM cell j is centred on image
  // pixel (j + 0.5) * W / w0 - 0.5 (its receptive field's centre, stride W / w0).
  const auto to_image = [](int64_t up, int up_size, double factor, int image_size) {
    const double own = std::max(1.0, std::round(up_size / factor));
    const double cell = up_size > 1 ? up * (own - 1) / (up_size - 1) : 0.0;
    return std::clamp((cell + 0.5) * image_size / own - 0.5, 0.0, image_size - 1.0);
  };
  for (const Peak& p : r.response.peaks) {
    PointPrediction pt;
    pt.class_index = static_cast<int>(p.c);
    pt.score = p.value;
    pt.x = to_image(p.x, w, o.peaks.head.upsample, image.width);
    pt.y = to_image(p.y, h, o.peaks.head.upsample, image.height);
    r.points.push_back(pt);
  }
  if (r.response.count() == 0) return r;

  t0 = std::chrono::steady_clock::now();
  const int E = o.extraction_size > 0 ? o.extraction_size : S;
  const Image resized = resize_bilinear(image, E, E);
  std::vector<float> prm_f = prms_at(r.response.prms, S, E);
  const std::vector<Mask> proposals =
      make_proposals(resized, prm_f, r.response.count(), id, image, o, E);
  r.seconds_proposals = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  const std::vector<PeakPrm> prms = make_peak_prms(r.response.peaks, prm_f.data(), E, E);
  const std::vector<double> crm_values = r.response.crm.to_vector();
  const std::vector<float> crms(crm_values.begin(), crm_values.end());
  r.instances = extract_instances(prms, crms.data(), C, h, w, proposals, o.instances);
  if (o.keep_diagnostics) {
    r.diagnostics.size = E;
    r.diagnostics.scores = proposal_scores(prms, crms.data(), C, h, w, proposals, o.instances);
    r.diagnostics.proposals = proposals;
    r.diagnostics.prms = std::move(prm_f);
  }
  for (Instance& inst : r.instances) inst.mask = resize_mask_nearest(inst.mask, image.height, image.width);
  r.seconds_extraction = seconds_since(t0);
  return r;
}

void write_inference_pictures(const std::string& dir, const Image& image,
                              const ImageInference& r,
                              const std::vector<std::string>& class_names) {
  save_png_atomic(dir + "/" + r.id + "_instances.png", draw_instances(image, r.instances,
                                                                       class_names));
  const int S = r.response.count() > 0 ? static_cast<int>(r.response.prms.size(1)) : 0;
  const std::vector<double> prms = r.response.prms.to_vector();
  for (int64_t k = 0; k < r.response.count(); ++k) {
    std::vector<float> prm(prms.begin() + k * S * S, prms.begin() + (k + 1) * S * S);
    std::vector<float> shown = bicubic_upsample(prm.data(), S, S, image.height, image.width);
    for (float& v : shown) v = std::max(v, 0.0f);  // bicubic overshoot
    const std::string name = class_names[r.response.peaks[k].c];
    save_png_atomic(dir + "/" + r.id + "_prm_" + std::to_string(k) + "_" + name + ".png",
                    draw_heatmap(image, shown.data(), image.height, image.width, name));
  }
  const int C = static_cast<int>(r.response.crm.size(1));
  const int h = static_cast<int>(r.response.crm.size(2)), w = static_cast<int>(r.response.crm.size(3));
  const std::vector<double> crm = r.response.crm.to_vector();
  std::vector<bool> present(C, false);  // a class with a used peak or a positive score
  for (const Peak& p : r.response.peaks) present[p.c] = true;
  for (int c = 0; c < C; ++c) present[c] = present[c] || r.class_scores[c] > 0;
  for (int c = 0; c < C; ++c) {
    if (!present[c]) continue;
    std::vector<float> map(crm.begin() + static_cast<size_t>(c) * h * w,
                           crm.begin() + static_cast<size_t>(c + 1) * h * w);
    save_png_atomic(dir + "/" + r.id + "_crm_" + class_names[c] + ".png",
                    draw_crm(image, map.data(), h, w, class_names[c]));
  }
}

std::string inference_json(const ImageInference& r, const std::vector<std::string>& class_names,
                           const std::vector<std::string>& mask_files) {
  Json scores = Json::object();
  for (size_t c = 0; c < r.class_scores.size(); ++c) scores.set(class_names[c], Json(r.class_scores[c]));
  Json points = Json::array();
  for (const PointPrediction& p : r.points) {
    Json j = Json::object();
    j.set("class", class_names[p.class_index]);
    j.set("score", Json(p.score));
    j.set("x", Json(p.x));
    j.set("y", Json(p.y));
    points.push_back(j);
  }
  Json instances = Json::array();
  for (size_t i = 0; i < r.instances.size(); ++i) {
    const Instance& inst = r.instances[i];
    Json j = Json::object();
    j.set("class", class_names[inst.peak.c]);
    j.set("score", Json(inst.score));
    const Peak& p = inst.peak;
    j.set("peak", Json::array({Json(p.b), Json(p.c), Json(p.y), Json(p.x)}));
    j.set("mask", i < mask_files.size() ? Json(mask_files[i]) : Json());
    j.set("area", Json(inst.mask.area()));
    instances.push_back(j);
  }
  Json out = Json::object();
  out.set("image", r.id);
  out.set("width", Json(r.width));
  out.set("height", Json(r.height));
  out.set("class_scores", scores);
  out.set("points", points);
  out.set("instances", instances);
  Json timing = Json::object();
  timing.set("forward_and_backprop_s", Json(r.seconds_forward_backprop));
  timing.set("proposals_s", Json(r.seconds_proposals));
  timing.set("extraction_s", Json(r.seconds_extraction));
  out.set("timing", timing);
  return write_json(out);
}

}  // namespace prm
