// The prediction passes over many images (predict.h).
#include "prm/predict.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>

#include "data/coco_mask.h"
#include "data/coco_results.h"
#include "data/files.h"
#include "data/json.h"
#include "data/npy.h"
#include "data/predictions.h"
#include "data/progress.h"
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

namespace {

// The loop both prediction passes share: image i of `count` (its file paths[i], its id ids[i])
// is read, checked by `check` when given (which throws prm::Error to refuse it), inferred,
// dumped when dump_dir is set, and handed to `take`. With skip_bad an image that cannot be read
// or is refused is named on stderr and left out. A progress line on stderr.
void predict_images(const std::vector<std::string>& paths, const std::vector<std::string>& ids,
                    Module& net, Device device, const InferOptions& options, bool skip_bad,
                    const std::string& dump_dir,
                    const std::function<void(size_t, const Image&)>& check,
                    const std::function<void(size_t, const ImageInference&)>& take) {
  const auto t0 = std::chrono::steady_clock::now();
  size_t done = 0;
  for (size_t i = 0; i < paths.size(); ++i) {
    Image image;
    try {
      image = load_image(paths[i], 3, options.max_pixels);
      if (check) check(i, image);
    } catch (const Error& e) {
      if (!skip_bad) throw;
      progress_end();
      std::fprintf(stderr, "skipping %s: %s\n", ids[i].c_str(), e.what());
      continue;
    }
    const ImageInference r = infer_image(net, image, ids[i], device, options);
    if (!dump_dir.empty()) write_diagnostics(dump_dir, r);
    take(i, r);
    ++done;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress_update("inference: " + progress_eta(done, paths.size(), elapsed));
  }
  progress_end();
}

}  // namespace

void predict_split(const std::string& voc_root, const std::vector<std::string>& ids,
                   Module& net, Device device, const InferOptions& options,
                   const std::vector<std::string>& classes, const std::string& pred_dir,
                   bool skip_bad, const std::string& dump_dir) {
  PredictionWriter writer(pred_dir);
  std::vector<std::string> paths;
  for (const std::string& id : ids) paths.push_back(voc_root + "/JPEGImages/" + id + ".jpg");
  predict_images(paths, ids, net, device, options, skip_bad, dump_dir, nullptr,
                 [&](size_t i, const ImageInference& r) {
                   const std::string& id = ids[i];
                   for (size_t c = 0; c < r.class_scores.size() && c < classes.size(); ++c)
                     writer.add_score(id, classes[c], r.class_scores[c]);
                   for (const PointPrediction& p : r.points)
                     writer.add_point(id, classes[p.class_index], p.score, p.x, p.y);
                   for (const Instance& inst : r.instances) {
                     std::vector<uint8_t> mask(inst.mask.data.size());
                     for (size_t k = 0; k < mask.size(); ++k) mask[k] = inst.mask.data[k] ? 255 : 0;
                     writer.add_instance(id, classes[inst.peak.c], inst.score, mask, r.width,
                                         r.height);
                   }
                 });
  writer.flush();
}

void predict_coco_split(const std::string& root, const std::string& split,
                        const CocoDataset& dataset, Module& net, Device device,
                        const InferOptions& options, const std::vector<std::string>& classes,
                        const std::string& pred_dir, bool skip_bad, const std::string& dump_dir) {
  const std::vector<std::string> names = dataset.class_names();
  PRM_CHECK(classes == names, dataset.path, ": the network's ", classes.size(),
            " classes are not the dataset's ", names.size(), " categories (by ascending id)",
            classes.size() == names.size() ? ", or not in their order" : "");
  std::error_code ec;
  fs::create_directories(pred_dir, ec);
  PRM_CHECK(!ec, pred_dir, ": cannot create the predictions folder (", ec.message(), ")");
  std::vector<std::string> paths, ids;
  for (const CocoImage& im : dataset.images) {
    paths.push_back(coco_image_path(root, split, im));
    ids.push_back(std::to_string(im.id));
  }
  std::vector<CocoScoreResult> scores;
  std::vector<CocoPointResult> points;
  std::vector<CocoMaskResult> masks;
  const auto check = [&](size_t i, const Image& image) {
    const CocoImage& im = dataset.images[i];
    PRM_CHECK(image.width == im.width && image.height == im.height, paths[i], ": the image is ",
              image.width, "x", image.height, " but ", dataset.path, " says ", im.width, "x",
              im.height, " (image id ", im.id, ")");
  };
  predict_images(paths, ids, net, device, options, skip_bad, dump_dir, check,
                 [&](size_t i, const ImageInference& r) {
                   const int64_t id = dataset.images[i].id;
                   for (size_t c = 0; c < r.class_scores.size() && c < classes.size(); ++c)
                     scores.push_back({id, dataset.categories[c].id, r.class_scores[c]});
                   for (const PointPrediction& p : r.points)
                     points.push_back({id, dataset.categories[p.class_index].id, p.score, p.x,
                                       p.y});
                   for (const Instance& inst : r.instances) {
                     const coco::Rle rle =
                         coco::rle_encode(inst.mask.data.data(), static_cast<uint32_t>(r.height),
                                          static_cast<uint32_t>(r.width));
                     masks.push_back({id, dataset.categories[inst.peak.c].id, inst.score,
                                      r.height, r.width, coco::rle_to_string(rle.counts)});
                   }
                 });
  write_file_atomic(pred_dir + "/classification.json", coco_scores_json(scores));
  write_file_atomic(pred_dir + "/points.json", coco_points_json(points));
  write_file_atomic(pred_dir + "/instances.json", coco_masks_json(masks));
}

std::vector<std::string> input_images(const std::string& input, const std::string& out) {
  std::error_code ec;
  if (!fs::is_directory(input, ec)) {
    PRM_CHECK(fs::exists(input, ec), input, ": no such image or folder");
    return {input};
  }
  PRM_CHECK(!fs::exists(out, ec) || !fs::equivalent(input, out, ec), "--out ", out,
            " is the input folder: the pictures written there would be read as input by the "
            "next run; give another output folder");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(input, ec)) {
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (ext != ".jpg" && ext != ".jpeg" && ext != ".png") continue;
    std::error_code status_ec;
    if (e.is_symlink(status_ec) && !fs::exists(e.path(), status_ec)) {
      std::fprintf(stderr, "warning: skipping %s: a symbolic link to nothing\n",
                   e.path().string().c_str());
      continue;
    }
    if (!e.is_regular_file(status_ec)) {
      std::fprintf(stderr, "warning: skipping %s: not a regular file\n",
                   e.path().string().c_str());
      continue;
    }
    files.push_back(e.path().string());
  }
  PRM_CHECK(!ec, input, ": cannot list the folder (", ec.message(), ")");
  PRM_CHECK(!files.empty(), input, ": no .jpg, .jpeg or .png images in this folder");
  std::sort(files.begin(), files.end());
  // Outputs are named by the file's stem: two images with one stem would overwrite each other's.
  std::map<std::string, std::string> by_stem;
  for (const std::string& f : files) {
    const std::string stem = fs::path(f).stem().string();
    auto [it, fresh] = by_stem.emplace(stem, f);
    PRM_CHECK(fresh, input, ": ", fs::path(it->second).filename().string(), " and ",
              fs::path(f).filename().string(), " would write the same outputs (", stem,
              ".json, ", stem, "_instances.png, ...); rename one of them");
  }
  return files;
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
    for (size_t p = 0; p < m.pixels.size(); ++p)
      m.pixels[p] = r.instances[k].mask.data[p] ? 255 : 0;
    const std::string rel = "masks/" + id + "_" + std::to_string(k) + ".png";
    save_png_atomic(out + "/" + rel, m);
    mask_files.push_back(rel);
  }
  write_inference_pictures(out, image, r, classes);
  write_file_atomic(out + "/" + id + ".json", inference_json(r, classes, mask_files) + "\n");
}

}  // namespace prm
