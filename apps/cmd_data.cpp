// prm data: checks a dataset's annotations (VOC or COCO layout) and says what they hold.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "data/coco.h"
#include "data/json.h"
#include "data/voc.h"
#include "tensor/error.h"

namespace prm {

namespace {

struct DataSummary {
  std::string format;
  int64_t images = 0, annotations = 0, crowd = 0, difficult = 0, empty_images = 0;
  std::vector<std::string> classes;
  std::vector<int64_t> objects;  // per class
};

DataSummary summarize_coco(const std::string& root, const std::string& split) {
  const CocoDataset d = read_coco_annotations(coco_annotation_path(root, split));
  DataSummary s;
  s.format = "coco";
  s.images = static_cast<int64_t>(d.images.size());
  s.annotations = static_cast<int64_t>(d.annotations.size());
  s.classes = d.class_names();
  s.objects.assign(s.classes.size(), 0);
  for (const CocoAnnotation& a : d.annotations) {
    s.crowd += a.iscrowd;
    ++s.objects[a.category];
  }
  for (const std::vector<int>& anns : d.image_annotations) s.empty_images += anns.empty();
  return s;
}

// The split's annotations as the VOC dataset reads them (no image opened).
DataSummary summarize_voc(const std::string& root, const std::string& split) {
  VocOptions o;
  o.root = root;
  o.split = split;
  o.check_images = false;
  const VocDataset data(o);
  DataSummary s;
  s.format = "voc";
  s.classes = data.classes();
  s.objects.assign(s.classes.size(), 0);
  for (const VocSample& sample : data.samples()) {
    ++s.images;
    s.empty_images += sample.annotation.objects.empty();
    for (const VocObject& ob : sample.annotation.objects) {
      ++s.annotations;
      s.difficult += ob.difficult;
      ++s.objects[ob.class_id];
    }
  }
  return s;
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

}  // namespace

int cmd_data(int argc, char** argv) {
  Args args("data",
            "Reads a dataset's annotations and says what they hold: images, annotations (objects),\n"
            "crowd annotations (COCO) or difficult objects (VOC), images without any, and objects\n"
            "per class; on stdout one JSON line with format, split, images, annotations, crowd,\n"
            "difficult, images_without_annotations, classes, objects_per_class, load_s (seconds\n"
            "to read and index the annotations) and peak_rss_mb. Reads the annotations only (no\n"
            "image is opened) and writes nothing. The layout is COCO's when ROOT/annotations/\n"
            "exists and ROOT/ImageSets/ does not (ROOT/annotations/instances_<split>.json), else\n"
            "VOC's (ROOT/ImageSets/Main/<split>.txt and ROOT/Annotations/<id>.xml); --format\n"
            "forces one, as for prm train.");
  args.required("data", "dataset root (VOC2012 or its VOCdevkit, or a COCO root)");
  args.option("split", "split: train, val (VOC), train2014, val2017, ... (COCO)", "train");
  args.choice("format", {"auto", "voc", "coco"}, "dataset layout (auto: detected)", "auto");
  if (!args.parse(argc, argv)) return 0;
  const std::string root = args.get("data"), split = args.get("split");
  const std::string format = resolve_dataset_format(root, args.get("format"));

  const auto start = std::chrono::steady_clock::now();
  const DataSummary s = format == "coco" ? summarize_coco(root, split) : summarize_voc(root, split);
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::fprintf(stderr, "%s %s (%s): %lld images, %lld annotations", root.c_str(), split.c_str(),
               format.c_str(), static_cast<long long>(s.images),
               static_cast<long long>(s.annotations));
  if (format == "coco") std::fprintf(stderr, " (%lld crowd)", static_cast<long long>(s.crowd));
  else std::fprintf(stderr, " (%lld difficult)", static_cast<long long>(s.difficult));
  std::fprintf(stderr, ", %lld images without annotations, %zu classes; read in %.2f s\n",
               static_cast<long long>(s.empty_images), s.classes.size(), load_s);
  Json per_class = Json::object();
  for (size_t c = 0; c < s.classes.size(); ++c) {
    std::fprintf(stderr, "  %-16s %lld\n", s.classes[c].c_str(),
                 static_cast<long long>(s.objects[c]));
    per_class.set(s.classes[c], s.objects[c]);
  }
  Json line = Json::object({{"format", format},
                            {"split", split},
                            {"images", s.images},
                            {"annotations", s.annotations},
                            {"crowd", s.crowd},
                            {"difficult", s.difficult},
                            {"images_without_annotations", s.empty_images},
                            {"classes", static_cast<int64_t>(s.classes.size())},
                            {"objects_per_class", per_class},
                            {"load_s", Json::fixed(load_s, 3)},
                            {"peak_rss_mb", Json::fixed(peak_rss_mb(), 1)}});
  std::printf("%s\n", write_json(line).c_str());
  return 0;
}

}  // namespace prm
