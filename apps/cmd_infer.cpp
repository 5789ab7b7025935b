// prm infer: instances of a trained PRM classifier for images (prm/infer.h): per image a JSON of
// class scores, points and instances with mask PNGs, and the pictures. Also the prediction pass
// behind `prm eval --weights` (predict_split), which writes a predictions folder in the format
// `prm eval --pred` scores.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "args.h"
#include "commands.h"
#include "data/files.h"
#include "data/image.h"
#include "data/json.h"
#include "data/npy.h"
#include "data/predictions.h"
#include "data/safetensors.h"
#include "data/voc.h"
#include "layers/resnet.h"
#include "prm/infer.h"
#include "prm/proposal_files.h"
#include "prm/visualize.h"

namespace fs = std::filesystem;

namespace prm {

namespace {

std::string progress_eta(size_t done, size_t total, double elapsed) {
  const double rate = done / std::max(elapsed, 1e-9);
  const long eta = static_cast<long>((total - done) / std::max(rate, 1e-9) + 0.5);
  char text[96];
  std::snprintf(text, sizeof text, "%zu/%zu images  %.2f img/s  ETA %ld:%02ld", done, total, rate,
                eta / 60, eta % 60);
  return text;
}

// With --dump DIR: what instance extraction saw for one image, at the extraction size E
// (tools/demo_diagnose.py reads it): DIR/<id>_proposals.npy (uint8 [P, E, E]), <id>_prms.npy
// (float32 [K, E, E]), <id>_scores.npy (float64 [K, P], step 6 scores, -1e300 for proposals not
// considered) and <id>.json (peaks with their CRM values, instances with the proposal and peak
// each chose).
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

}  // namespace

void declare_inference_flags(Args& args) {
  args.choice("arch", kArchChoices, "the network (as trained)", "resnet50");
  args.option("size", "network input size (as trained)", "448");
  args.option("extraction-size", "proposals and instance extraction on the image resized to this "
              "(the official pipeline's 448, where DESIGN.md's constants hold)", "448");
  args.choice("device", kDeviceChoices, "where to run", "cpu");
  args.choice("precision", kPrecisionChoices,
              "float32 GEMMs and convolutions: fp32 exact; tf32 tensor cores on CUDA (fp32 on the CPU); "
              "bf16 inputs with float32 sums (docs/precision.md)",
              "fp32");
  args.option("peak-threshold", "PRMs for peaks whose CRM value exceeds this (official: 30)", "30");
  args.option("class-threshold", "PRMs for classes whose peak score reaches this", "0");
  args.option("proposals", "segment proposals: ours (selective search), none (masks from the "
              "PRMs), or a folder with <id>.npy or <id>/*.png per image (MCG, COB)", "ours");
  args.option("area-penalty", "instance extraction: subtract this times |S| / image area from "
              "each proposal S's score (ours, for diffuse PRMs; 0 = DESIGN.md step 6 as is)", "0");
  args.optional("dump", "also write, per image, what instance extraction saw (proposals, PRMs, "
                "scores, choices) into this folder, for tools/demo_diagnose.py");
}

static InferOptions inference_options(const Args& args) {
  set_matmul_precision(parse_precision(args.get("precision")));
  InferOptions o;
  o.size = static_cast<int>(args.get_int("size"));
  o.extraction_size = static_cast<int>(args.get_int("extraction-size"));
  PRM_CHECK(o.extraction_size >= 32, "--extraction-size must be at least 32");
  PRM_CHECK(o.size >= 32, "--size must be at least 32");
  o.peaks.peak_threshold = args.get_double("peak-threshold");
  o.peaks.class_threshold = args.get_double("class-threshold");
  o.proposals = args.get("proposals") == "ours" ? "" : args.get("proposals");
  if (!o.proposals.empty() && o.proposals != "none")
    PRM_CHECK(fs::is_directory(o.proposals), o.proposals, ": no such proposals folder");
  o.instances.area_penalty = args.get_double("area-penalty");
  PRM_CHECK(std::isfinite(o.instances.area_penalty) && o.instances.area_penalty >= 0,
            "--area-penalty must be finite and >= 0");
  o.keep_diagnostics = args.has("dump");
  if (o.keep_diagnostics) {
    std::error_code ec;
    fs::create_directories(args.get("dump"), ec);
    PRM_CHECK(!ec, args.get("dump"), ": cannot create the dump folder (", ec.message(), ")");
  }
  return o;
}

// Inference over ids (images under root/JPEGImages) into a predictions folder for prm eval.
static void predict_split(const std::string& voc_root, const std::vector<std::string>& ids,
                   ResNet& net, Device device, const InferOptions& options,
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

void predict_split_with_weights(const Args& args, const std::string& data,
                                const std::string& split, const std::string& pred_dir) {
  const Device device = args.get_device("device");
  const InferOptions options = inference_options(args);
  std::unique_ptr<ResNet> net = load_classifier(args.get("arch"), args.get("weights"), DType::f32, device);
  const std::string root = resolve_voc_root(data);
  std::vector<std::string> ids = read_voc_split(root, "Main", split);
  if (fs::exists(root + "/ImageSets/Segmentation/" + split + ".txt"))
    for (const std::string& id : read_voc_split(root, "Segmentation", split))
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  const std::vector<std::string>& classes = voc_class_names();
  PRM_CHECK(net->options().num_classes == static_cast<int64_t>(classes.size()), args.get("weights"),
            ": ", net->options().num_classes, " classes, but the VOC class list has ",
            classes.size());
  predict_split(root, ids, *net, device, options, classes, pred_dir, args.get_toggle("skip-bad"),
                args.has("dump") ? args.get("dump") : "");
}

int cmd_infer(int argc, char** argv) {
  Args args("infer",
            "Instances of a trained PRM classifier: for each image (a file, or every .jpg/.png\n"
            "of a folder) writes OUT/<id>.json (class scores, peaks as points, instances with\n"
            "score, peak and mask PNG), OUT/masks/<id>_<k>.png, and the pictures\n"
            "OUT/<id>_instances.png, OUT/<id>_prm_<k>_<class>.png, OUT/<id>_crm_<class>.png.");
  args.required("weights", "the classifier .safetensors (RUN/weights.safetensors of prm train)");
  args.required("input", "an image file or a folder of images");
  args.required("out", "output folder (created)");
  args.optional("classes", "class names, comma-separated (default: the 20 VOC classes)");
  declare_inference_flags(args);
  if (!args.parse(argc, argv)) return 0;
  const Device device = args.get_device("device");
  const InferOptions options = inference_options(args);
  std::unique_ptr<ResNet> net = load_classifier(args.get("arch"), args.get("weights"), DType::f32, device);
  std::vector<std::string> classes = voc_class_names();
  const int64_t C = net->options().num_classes;
  PRM_CHECK(C == static_cast<int64_t>(classes.size()), args.get("weights"), ": ", C,
            " classes, but the VOC class list has ", classes.size());

  const std::string input = args.get("input"), out = args.get("out");
  std::vector<std::string> files;
  if (fs::is_directory(input)) {
    for (const auto& e : fs::directory_iterator(input)) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      if (e.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png"))
        files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    PRM_CHECK(!files.empty(), input, ": no .jpg or .png images in this folder");
  } else {
    PRM_CHECK(fs::exists(input), input, ": no such image or folder");
    files.push_back(input);
  }
  std::error_code ec;
  fs::create_directories(out + "/masks", ec);
  PRM_CHECK(!ec, out, ": cannot create the output folder (", ec.message(), ")");

  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string id = fs::path(files[i]).stem().string();
    const Image image = load_image(files[i], 3);
    const ImageInference r = infer_image(*net, image, id, device, options);
    if (args.has("dump")) write_diagnostics(args.get("dump"), r);
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
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\rinference: %s   ", progress_eta(i + 1, files.size(), elapsed).c_str());
  }
  std::fprintf(stderr, "\nwrote %zu results to %s\n", files.size(), out.c_str());
  return 0;
}

}  // namespace prm
