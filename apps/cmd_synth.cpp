// prm synth: writes a synthetic dataset in the PASCAL VOC 2012 layout (src/data/synth.h) or the
// MS COCO layout (src/data/synth_coco.h).
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "data/synth.h"
#include "data/synth_coco.h"
#include "tensor/error.h"

namespace prm {

int cmd_synth(int argc, char** argv) {
  Args args("synth",
            "Writes a synthetic dataset with 1-4 textured objects per image on cluttered\n"
            "backgrounds. A class fixes an object's shape and texture and tints its colour; with\n"
            "--cue shape only the shape tells the classes apart (colour and texture random, at\n"
            "most 5 classes), with the same backgrounds, objects, annotations and masks as the\n"
            "same seed with --cue all.\n"
            "--format voc (default): exactly the PASCAL VOC 2012 layout (JPEGImages, Annotations,\n"
            "SegmentationObject, SegmentationClass, ImageSets/Main and ImageSets/Segmentation),\n"
            "labelled with VOC class names.\n"
            "--format coco: the MS COCO layout, OUT/annotations/instances_<split>.json and the\n"
            "images in OUT/<split>/, for the splits named by --train-split and --val-split;\n"
            "classes are the first K COCO categories (ids with COCO's gaps); each object's\n"
            "visible mask as polygons (one part per piece occlusion leaves), about one object in\n"
            "ten as a crowd region (uncompressed RLE), and about one image in sixteen of each\n"
            "split without any object. docs/coco.md says what the files hold.");
  args.required("out", "output folder (the dataset root: use it as --data)");
  args.choice("format", {"voc", "coco"}, "the layout written", "voc");
  args.option("train", "number of training images", "16");
  args.option("val", "number of validation images", "8");
  args.option("size", "image width in pixels (height is 0.75-1 times it)", "160");
  args.option("classes",
              "number of classes used, the first K VOC class names or COCO categories (1-20)",
              "20");
  args.option("seed", "random seed", "1");
  args.choice("cue", {"all", "shape"},
              "what carries the class: all (shape, texture and colour) or shape alone", "all");
  args.optional("train-split", "--format coco: the training split's name [train]");
  args.optional("val-split", "--format coco: the validation split's name [val]");
  if (!args.parse(argc, argv)) return 0;
  SynthOptions o;
  o.out = args.get("out");
  o.train = static_cast<int>(args.get_int("train"));
  o.val = static_cast<int>(args.get_int("val"));
  o.size = static_cast<int>(args.get_int("size"));
  o.classes = static_cast<int>(args.get_int("classes"));
  o.seed = static_cast<uint64_t>(args.get_int("seed"));
  o.cue = parse_synth_cue(args.get("cue"));
  if (args.get("format") == "coco") {
    SynthCocoSplits splits;
    if (args.has("train-split")) splits.train = args.get("train-split");
    if (args.has("val-split")) splits.val = args.get("val-split");
    const SynthCocoSummary s = synthesize_coco(o, splits);
    std::printf("wrote %lld images (%d %s, %d %s; %lld without objects) with %lld annotations "
                "(%lld crowd, %lld polygon parts) of %d categories to %s in the COCO layout\n",
                static_cast<long long>(s.images), o.train, splits.train.c_str(), o.val,
                splits.val.c_str(), static_cast<long long>(s.empty_images),
                static_cast<long long>(s.annotations), static_cast<long long>(s.crowd),
                static_cast<long long>(s.polygon_parts), o.classes, o.out.c_str());
    return 0;
  }
  PRM_CHECK(!args.has("train-split") && !args.has("val-split"),
            "--train-split and --val-split name COCO splits (give --format coco); the VOC layout "
            "writes train, val and trainval");
  const std::vector<VocAnnotation> anns = synthesize_voc(o);
  size_t objects = 0;
  for (const VocAnnotation& a : anns) objects += a.objects.size();
  std::printf("wrote %zu images (%d train, %d val) with %zu objects of %d classes to %s\n",
              anns.size(), o.train, o.val, objects, o.classes, o.out.c_str());
  return 0;
}

}  // namespace prm
