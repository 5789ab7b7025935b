// prm eval: scores predictions (classification, points, instance masks) against VOC ground truth;
// writes a JSON report and a precision-recall plot for mAP^r@0.5, prints a Markdown table.
// Formats and protocols: src/data/eval.h, src/data/metrics.h and docs/evaluation.md.
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "data/eval.h"
#include "data/files.h"
#include "data/plot.h"
#include "tensor/error.h"

namespace prm {

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  Args args("eval",
            "Scores predictions against PASCAL VOC ground truth: classification mAP, pointwise\n"
            "localisation mAP, instance segmentation mAP^r at IoU 0.25/0.5/0.75 and ABO, and\n"
            "semantic mIoU from the instance masks. The predictions folder holds any of\n"
            "classification.txt, points.txt and instances.txt (formats in docs/evaluation.md).\n"
            "On an MS COCO root: classification.json, points.json and instances.json (COCO's\n"
            "results format, docs/coco.md), scored as classification mAP, pointwise mAP and\n"
            "COCOeval's twelve segm numbers (AP, AP50, AP75, APs/m/l, AR1/10/100, ARs/m/l).");
  args.required("data", "VOC root (VOCdevkit/VOC2012, its parent, or a prm synth folder), or a "
                "COCO root (annotations/instances_<split>.json, images in <split>/)");
  args.choice("format", {"auto", "voc", "coco"},
              "dataset layout: auto detects it (COCO when ROOT/annotations/ exists and "
              "ROOT/ImageSets/ does not)",
              "auto");
  args.optional("pred", "predictions folder (made elsewhere)");
  args.optional("weights", "instead of --pred: run inference with these weights first (prm train's "
                "RUN/weights.safetensors) and write predictions, report and plots into --out");
  args.optional("out", "with --weights: output folder (predictions/, eval.json, eval.md, plots)");
  declare_inference_flags(args);
  args.option("split", "split name under ImageSets/Main and ImageSets/Segmentation (VOC), or "
              "the <split> of annotations/instances_<split>.json (COCO: val2014, val2017, ...)",
              "val");
  args.optional("json", "JSON report path (default: <pred>/eval.json)");
  args.optional("plot", "precision-recall plot for mAP^r@0.5 (default: <pred>/pr_map_r50.png)");
  args.option("tolerance", "pointwise localisation tolerance in pixels", "18");
  args.optional("classes", "comma-separated class names (default: the 20 VOC classes; COCO: the "
                "annotation file's categories, always)");
  args.toggle("skip-bad", "warn about and skip images with bad ground truth or masks");
  args.toggle("allow-missing",
              "score a predictions file that is empty or has no line for a class with positive "
              "images (refused by default: missing scores rank last, which scores above 0)");
  if (!args.parse(argc, argv)) return 0;

  EvalOptions o;
  o.data = args.get("data");
  o.split = args.get("split");
  o.format = resolve_dataset_format(o.data, args.get("format"));
  const bool coco = o.format == "coco";
  PRM_CHECK(!coco || !args.has("classes"), "--classes is for VOC: a COCO split's classes are its "
            "annotation file's categories");
  PRM_CHECK(args.has("pred") != args.has("weights"), "give either --pred or --weights");
  std::string out_dir;
  if (args.has("weights")) {
    PRM_CHECK(args.has("out"), "--weights needs --out");
    out_dir = args.get("out");
    o.pred = (std::filesystem::path(out_dir) / "predictions").string();
    predict_split_with_weights(args, o.data, o.format, o.split, o.pred);
  } else {
    o.pred = args.get("pred");
    out_dir = o.pred;
  }
  o.tolerance = args.get_double("tolerance");
  o.skip_bad = args.get_toggle("skip-bad");
  o.allow_missing = args.has("weights") || args.get_toggle("allow-missing");
  if (args.has("classes")) o.classes = split_commas(args.get("classes"));
  PRM_CHECK(!o.classes.empty(), "--classes is empty");
  const EvalReport r = evaluate(o);

  const std::string json_path =
      args.has("json") ? args.get("json") : (std::filesystem::path(out_dir) / "eval.json").string();
  write_file_atomic(json_path, report_json(r));
  std::fputs(report_markdown(r).c_str(), stdout);
  if (args.has("weights"))
    write_file_atomic((std::filesystem::path(out_dir) / "eval.md").string(), report_markdown(r));
  std::printf("\nJSON report: %s\n", json_path.c_str());

  if (r.has_instances) {
    size_t t50 = 0;
    for (size_t t = 0; t < r.iou_thresholds.size(); ++t)
      if (r.iou_thresholds[t] == 0.5) t50 = t;
    const MeanMetric& m = r.instance[t50];
    std::vector<PlotCurve> curves;
    for (size_t c = 0; c < r.classes.size(); ++c) {
      if (m.per_class[c].absent) continue;
      char label[64];
      std::snprintf(label, sizeof label, "%s (%.3f)", r.classes[c].c_str(), m.per_class[c].value);
      curves.push_back({label, &m.per_class[c].curve, static_cast<int>(c) + 1});
    }
    const std::string plot_path = args.has("plot")
                                      ? args.get("plot")
                                      : (std::filesystem::path(out_dir) / "pr_map_r50.png").string();
    char title[96];
    std::snprintf(title, sizeof title, "PR curves, mAP^r@0.5 = %.3f", m.mean);
    write_pr_plot(plot_path, title, curves);
    std::printf("precision-recall plot (mAP^r@0.5): %s\n", plot_path.c_str());
  }
  return 0;
}

}  // namespace prm
