// prm infer: instances of a trained PRM classifier for images (prm/infer.h, prm/predict.h): per
// image a JSON of class scores, points and instances with mask PNGs, and the pictures. Also the
// flags and the set-up of the prediction pass behind `prm eval --weights` (predict_split).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "args.h"
#include "commands.h"
#include "data/coco.h"
#include "data/files.h"
#include "data/image.h"
#include "data/progress.h"
#include "data/voc.h"
#include "layers/resnet.h"
#include "prm/infer.h"
#include "prm/predict.h"
#include "tensor/ops/conv2d.h"
#include "prm/weights.h"

namespace fs = std::filesystem;

namespace prm {

void declare_inference_flags(Args& args) {
  args.choice("arch", kArchChoices,
              "the network [the weights': prm train writes it, torchvision's names show it; "
              "else resnet50]",
              "");
  args.optional("size", "network input size [the weights' training size; else 448]");
  args.option("extraction-size", "proposals and instance extraction on the image resized to this "
              "(the official pipeline's 448, where docs/prm.md's constants hold)", "448");
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
              "each proposal S's score (ours, for diffuse PRMs; 0 = docs/prm.md step 6 as is)", "0");
  args.optional("dump", "also write, per image, what instance extraction saw (proposals, PRMs, "
                "scores, choices) into this folder, for tools/demo_diagnose.py");
  args.option("max-pixels", "refuse images larger than this many pixels (width x height), read "
              "from the file's header before decoding", std::to_string(kDefaultMaxImagePixels));
}

// The inference settings: flags, and what the weights say about themselves (their training size
// and PRM head; a flag given must agree with the file).
static InferOptions inference_options(const Args& args, const WeightsInfo& info,
                                      const std::string& weights) {
  set_matmul_precision(parse_precision(args.get("precision")));
  InferOptions o;
  // get_int first: a malformed --size gets the flag parser's message, not std::stoi's.
  const std::string given = args.has("size") ? std::to_string(args.get_int("size")) : "";
  o.size = std::stoi(weights_setting("size", given,
                                     info.present ? std::to_string(info.size) : "", "448",
                                     weights));
  if (info.present) o.peaks.head = info.head;
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
  o.max_pixels = args.get_int("max-pixels");
  PRM_CHECK(o.max_pixels >= 1, "--max-pixels must be at least 1");
  if (o.keep_diagnostics) {
    std::error_code ec;
    fs::create_directories(args.get("dump"), ec);
    PRM_CHECK(!ec, args.get("dump"), ": cannot create the dump folder (", ec.message(), ")");
  }
  return o;
}

void predict_split_with_weights(const Args& args, const std::string& data,
                                const std::string& format, const std::string& split,
                                const std::string& pred_dir) {
  const Device device = args.get_device("device");
  WeightsInfo info;
  std::unique_ptr<ResNet> net =
      load_classifier(args.has("arch") ? args.get("arch") : "", args.get("weights"), DType::f32,
                      device, &info);
  const InferOptions options = inference_options(args, info, args.get("weights"));
  const ConstantWeights constant_weights;  // the weights stay as loaded: packed once, kept
  const std::string dump = args.has("dump") ? args.get("dump") : "";
  if (format == "coco") {
    const std::string annotations = coco_annotation_path(data, split);
    PRM_CHECK(fs::is_regular_file(annotations), annotations, ": no such annotation file (COCO "
              "layout: ROOT/annotations/instances_<split>.json; is --split right?)");
    CocoReadOptions ro;
    ro.segmentations = false;  // inference needs the images and the categories only
    const CocoDataset dataset = read_coco_annotations(annotations, ro);
    // Weights that do not name their classes are taken to be the dataset's.
    const std::vector<std::string> classes = info.present ? info.classes : dataset.class_names();
    PRM_CHECK(net->options().num_classes == static_cast<int64_t>(classes.size()),
              args.get("weights"), ": ", net->options().num_classes, " classes, but ",
              annotations, " has ", classes.size(), " categories");
    predict_coco_split(data, split, dataset, *net, device, options, classes, pred_dir,
                       args.get_toggle("skip-bad"), dump);
    return;
  }
  const std::string root = resolve_voc_root(data);
  const std::vector<std::string> ids = split_image_ids(root, split);
  const std::vector<std::string>& classes = voc_class_names();
  PRM_CHECK(net->options().num_classes == static_cast<int64_t>(classes.size()), args.get("weights"),
            ": ", net->options().num_classes, " classes, but the VOC class list has ",
            classes.size());
  predict_split(root, ids, *net, device, options, classes, pred_dir, args.get_toggle("skip-bad"),
                dump);
}

int cmd_infer(int argc, char** argv) {
  Args args("infer",
            "Instances of a trained PRM classifier: for each image (a file, or every\n"
            ".jpg/.jpeg/.png of a folder, in name order) writes OUT/<id>.json (class scores,\n"
            "peaks as points, instances with score, peak and mask PNG), OUT/masks/<id>_<k>.png,\n"
            "and the pictures OUT/<id>_instances.png, OUT/<id>_prm_<k>_<class>.png and\n"
            "OUT/<id>_crm_<class>.png (<id>: the file name without its extension). A folder run\n"
            "goes on past an image that cannot be read, names it, lists the failures at the end\n"
            "and exits 1 (0 with --skip-bad). Refused before any work: two images with one name\n"
            "but different extensions (their outputs would mix), and --out equal to --input.");
  args.required("weights",
                "the classifier's weights (RUN/weights.safetensors of prm train; .pth read too)");
  args.required("input", "an image file or a folder of images");
  args.required("out", "output folder (created)");
  declare_inference_flags(args);
  args.choice("exif-orientation", {"apply", "ignore"},
              "apply: turn a JPEG as its EXIF orientation tag says, as photo viewers show it (the "
              "outputs are in that frame); ignore: its pixels as stored",
              "apply");
  args.toggle("skip-bad",
              "with a folder, exit 0 even when some images could not be read or inferred (each "
              "is named as it fails, and the summary lists them; without the flag the others "
              "are still done, and the exit status is 1)");
  if (!args.parse(argc, argv)) return 0;
  const Device device = args.get_device("device");
  WeightsInfo info;
  std::unique_ptr<ResNet> net =
      load_classifier(args.has("arch") ? args.get("arch") : "", args.get("weights"), DType::f32,
                      device, &info);
  const InferOptions options = inference_options(args, info, args.get("weights"));
  const ConstantWeights constant_weights;  // the weights stay as loaded: packed once, kept
  // The class names the weights were trained with (VOC's for files that do not say).
  const std::vector<std::string> classes = info.present ? info.classes : voc_class_names();
  const int64_t C = net->options().num_classes;
  PRM_CHECK(C == static_cast<int64_t>(classes.size()), args.get("weights"), ": ", C,
            " classes, but ", info.present ? "its" : "the VOC", " class list has ",
            classes.size());

  const std::string input = args.get("input"), out = args.get("out");
  const std::vector<std::string> files = input_images(input, out);
  std::error_code ec;
  fs::create_directories(out + "/masks", ec);
  PRM_CHECK(!ec, out, ": cannot create the output folder (", ec.message(), ")");

  // A folder: an image that cannot be read or inferred is named and skipped, the others are
  // done; the summary lists the failures, and the exit status says whether there were any.
  const bool folder = files.size() > 1 || fs::is_directory(input);
  std::vector<std::string> failed;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < files.size(); ++i) {
    try {
      const std::string id = fs::path(files[i]).stem().string();
      Image image = load_image(files[i], 3, options.max_pixels);
      if (args.get("exif-orientation") == "apply")
        image = apply_orientation(image, jpeg_exif_orientation(read_file_bytes(files[i])));
      const ImageInference r = infer_image(*net, image, id, device, options);
      if (args.has("dump")) write_diagnostics(args.get("dump"), r);
      write_image_results(out, image, r, classes);
    } catch (const Error& e) {
      if (!folder) throw;
      progress_end();
      std::fprintf(stderr, "failed: %s\n", e.what());
      failed.push_back(files[i]);
    }
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress_update("inference: " + progress_eta(i + 1, files.size(), elapsed));
  }
  progress_end();
  std::fprintf(stderr, "wrote %zu results to %s\n", files.size() - failed.size(), out.c_str());
  if (failed.empty()) return 0;
  std::fprintf(stderr, "%zu of %zu images failed (%s):", failed.size(), files.size(),
               args.get_toggle("skip-bad") ? "skipped, --skip-bad" : "exit status 1");
  for (const std::string& f : failed) std::fprintf(stderr, " %s", f.c_str());
  std::fprintf(stderr, "\n");
  return args.get_toggle("skip-bad") ? 0 : 1;
}

}  // namespace prm
