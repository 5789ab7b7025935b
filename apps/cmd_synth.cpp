// prm synth: writes a synthetic dataset in the PASCAL VOC 2012 layout (see src/data/synth.h).
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "data/synth.h"

namespace prm {

int cmd_synth(int argc, char** argv) {
  Args args("synth",
            "Writes a synthetic dataset in exactly the PASCAL VOC 2012 layout (JPEGImages,\n"
            "Annotations, SegmentationObject, SegmentationClass, ImageSets/Main and\n"
            "ImageSets/Segmentation) with 1-4 textured objects per image on cluttered\n"
            "backgrounds, labelled with VOC class names. A class fixes an object's shape and\n"
            "texture and tints its colour; with --cue shape only the shape tells the classes\n"
            "apart (colour and texture random, at most 5 classes), with the same backgrounds,\n"
            "objects, annotations and masks as the same seed with --cue all.");
  args.required("out", "output folder (the VOC root: use it as --data)");
  args.option("train", "number of training images", "16");
  args.option("val", "number of validation images", "8");
  args.option("size", "image width in pixels (height is 0.75-1 times it)", "160");
  args.option("classes", "number of classes used, the first K VOC class names (1-20)", "20");
  args.option("seed", "random seed", "1");
  args.choice("cue", {"all", "shape"},
              "what carries the class: all (shape, texture and colour) or shape alone", "all");
  if (!args.parse(argc, argv)) return 0;
  SynthOptions o;
  o.out = args.get("out");
  o.train = static_cast<int>(args.get_int("train"));
  o.val = static_cast<int>(args.get_int("val"));
  o.size = static_cast<int>(args.get_int("size"));
  o.classes = static_cast<int>(args.get_int("classes"));
  o.seed = static_cast<uint64_t>(args.get_int("seed"));
  o.cue = parse_synth_cue(args.get("cue"));
  const std::vector<VocAnnotation> anns = synthesize_voc(o);
  size_t objects = 0;
  for (const VocAnnotation& a : anns) objects += a.objects.size();
  std::printf("wrote %zu images (%d train, %d val) with %zu objects of %d classes to %s\n",
              anns.size(), o.train, o.val, objects, o.classes, o.out.c_str());
  return 0;
}

}  // namespace prm
