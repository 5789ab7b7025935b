// The prediction passes over many images (predict.h).
#include "prm/predict.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "data/files.h"
#include "data/json.h"
#include "data/npy.h"
#include "data/predictions.h"
#include "data/voc.h"
#include "prm/proposal_files.h"
#include "prm/visualize.h"

namespace fs = std::filesystem;

namespace prm {

std::string progress_eta(size_t done, size_t total, double elapsed) {
  const double rate = done / std::max(elapsed, 1e-9);
  const long eta = static_cast<long>((total - done) / std::max(rate, 1e-9) + 0.5);
  char text[96];
  std::snprintf(text, sizeof text, "%zu/%zu images  %.2f img/s  ETA %ld:%02ld", done, total, rate,
                eta / 60, eta % 60);
  return text;
}

void write_diagnostics(const std::string& dir, const ImageInference& r) {
  const InferDiagnostics& d = r.diagnostics;
  const int E = d.size, K = static_cast<int>(r.response.count());
  const int P = static_cast<int>(d.proposals.size());
  if (E <= 0) return;  // no peaks: nothing was extracted
  save_proposals_npy(dir + "/" + r.id + "_proposals.npy", d.proposals, E, E);
  save_npy(dir + "/" + r.id + "_prms.npy",
           Tensor::from_vector(std::vector<double>(d.prms.begin(), d.prms.end()), {K, E, E},
                               DType::f32, Device::cpu));
  std::vector<double> scores;
  for (const std::vector<double>& row : d.scores)
    for (double v : row) scores.push_back(std::isfinite(v) ? v : -1e300);
  save_npy(dir + "/" + r.id + "_scores.npy",
           Tensor::from_vector(scores, {K, P}, DType::f64, Device::cpu));
  Json peaks = Json::array();
  for (const Peak& p : r.response.peaks)
    peaks.push_back(Json::array({Json(p.c), Json(p.y), Json(p.x), Json(p.value)}));
  Json instances = Json::array();
  for (const Instance& inst : r.instances) {
    Json merged = Json::array();
    for (int m : inst.merged_peaks) merged.push_back(Json(m));
    instances.push_back(Json::object({{"class", Json(inst.peak.c)},
                                      {"score", Json(inst.score)},
                                      {"peak", Json(inst.peak_index)},
                                      {"proposal", Json(inst.proposal)},
                                      {"merged_peaks", merged}}));
  }
  const Json out = Json::object({{"image", Json(r.id)},
                                 {"width", Json(r.width)},
                                 {"height", Json(r.height)},
                                 {"extraction_size", Json(E)},
                                 {"grid_height", Json(r.response.crm.size(2))},
                                 {"grid_width", Json(r.response.crm.size(3))},
                                 {"peaks", peaks},
                                 {"instances", instances}});
  write_file_atomic(dir + "/" + r.id + ".json", write_json(out) + "\n");
}

std::vector<std::string> split_image_ids(const std::string& voc_root, const std::string& split) {
  std::vector<std::string> ids = read_voc_split(voc_root, "Main", split);
  if (fs::exists(voc_root + "/ImageSets/Segmentation/" + split + ".txt"))
    for (const std::string& id : read_voc_split(voc_root, "Segmentation", split))
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  return ids;
}

void predict_split(const std::string& voc_root, const std::vector<std::string>& ids,
                   Module& net, Device device, const InferOptions& options,
                   const std::vector<std::string>& classes, const std::string& pred_dir,
                   bool skip_bad, const std::string& dump_dir) {
  PredictionWriter writer(pred_dir);
  const auto t0 = std::chrono::steady_clock::now();
  size_t done = 0;
  for (const std::string& id : ids) {
    const std::string path = voc_root + "/JPEGImages/" + id + ".jpg";
    Image image;
    try {
      image = load_image(path, 3);
    } catch (const Error& e) {
      if (!skip_bad) throw;
      std::fprintf(stderr, "\nskipping %s: %s\n", id.c_str(), e.what());
      continue;
    }
    const ImageInference r = infer_image(net, image, id, device, options);
    if (!dump_dir.empty()) write_diagnostics(dump_dir, r);
    for (size_t c = 0; c < r.class_scores.size() && c < classes.size(); ++c)
      writer.add_score(id, classes[c], r.class_scores[c]);
    for (const PointPrediction& p : r.points)
      writer.add_point(id, classes[p.class_index], p.score, p.x, p.y);
    for (const Instance& inst : r.instances) {
      std::vector<uint8_t> mask(inst.mask.data.size());
      for (size_t i = 0; i < mask.size(); ++i) mask[i] = inst.mask.data[i] ? 255 : 0;
      writer.add_instance(id, classes[inst.peak.c], inst.score, mask, r.width, r.height);
    }
    ++done;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\rinference: %s   ", progress_eta(done, ids.size(), elapsed).c_str());
  }
  std::fprintf(stderr, "\n");
  writer.flush();
}

void write_image_results(const std::string& out, const Image& image, const ImageInference& r,
                         const std::vector<std::string>& classes) {
  const std::string& id = r.id;
  std::vector<std::string> mask_files;
  for (size_t k = 0; k < r.instances.size(); ++k) {
    Image m;  // 8-bit grey, 255 inside (the format prm eval reads)
    m.width = r.width;
    m.height = r.height;
    m.channels = 1;
    m.pixels.resize(r.instances[k].mask.data.size());
    for (size_t p = 0; p < m.pixels.size(); ++p) m.pixels[p] = r.instances[k].mask.data[p] ? 255 : 0;
    const std::string rel = "masks/" + id + "_" + std::to_string(k) + ".png";
    save_png_atomic(out + "/" + rel, m);
    mask_files.push_back(rel);
  }
  write_inference_pictures(out, image, r, classes);
  write_file_atomic(out + "/" + id + ".json", inference_json(r, classes, mask_files) + "\n");
}

}  // namespace prm
