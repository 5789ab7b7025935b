// A synthetic dataset in exactly the PASCAL VOC 2012 layout, for the demo, the end-to-end tests
// and as a sanity check of a user's setup. Each image has a cluttered background (gradient, smooth
// noise, random strokes and blobs) and 1-4 objects. An object's class fixes its shape (5 shapes)
// and its texture (4 textures: speckled, striped, checked, dotted) and tints its colour, so a
// classifier can learn it from image-level labels; size, aspect, rotation and position are
// random. Objects may repeat a class, touch, overlap (later ones occlude earlier ones) or be cut
// by the image border. With SynthCue::shape (`prm synth --cue shape`) only the shape carries the
// class: each object's colour (any hue, either brightness level) and texture are drawn at random,
// independently of its class (at most 5 classes, one per shape), from a second random stream, so
// that the backgrounds, the geometry, the classes, the annotations and the masks are those of the
// same seed with SynthCue::all; only the objects' pixels differ. Written per image:
//   JPEGImages/<id>.jpg, Annotations/<id>.xml (visible-extent boxes, truncated, occluded,
//   difficult for tiny visible parts), SegmentationObject/<id>.png (instance k = k-th <object>)
//   and SegmentationClass/<id>.png (class index + 1), both 8-bit palette PNGs with the VOC colour
//   map and a void (255) band along every object boundary, as in VOC.
// and ImageSets/Main/{train,val,trainval}.txt, ImageSets/Main/<class>_<split>.txt (1 / -1 / 0 for
// difficult-only) and ImageSets/Segmentation/{train,val,trainval}.txt. data/synth_coco.h writes
// the same drawings in the MS COCO layout.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/voc.h"

namespace prm {

// What tells the classes apart: everything (shape, texture and colour; the default) or the shape
// alone.
enum class SynthCue { all, shape };
SynthCue parse_synth_cue(const std::string& name);  // "all" | "shape"

struct SynthOptions {
  std::string out;
  int train = 16;
  int val = 8;
  int size = 160;    // image width; height is drawn in [0.75, 1] * size
  int classes = 20;  // the first K VOC class names
  uint64_t seed = 1;
  SynthCue cue = SynthCue::all;
};

struct SynthImage {
  std::string id;
  Image rgb;
  IndexedImage objects;  // SegmentationObject indices
  IndexedImage classes;  // SegmentationClass indices
  VocAnnotation annotation;
  // Per pixel (row-major): k + 1 where object k (annotation.objects[k]) is seen, 0 elsewhere; the
  // visible masks without VOC's void band (what the COCO layout's polygons trace).
  std::vector<uint8_t> owners;
};

// Draws image number `index` (deterministic in seed and index, independent of the others). With
// draw_objects false the image is the same background with no object (and no annotation).
SynthImage synth_image(const SynthOptions& options, int index, bool draw_objects = true);
std::string synth_image_id(int index);  // "2012_000001" for index 0

// Writes the whole dataset under options.out; returns the annotations in id order
// (train images first, then val).
std::vector<VocAnnotation> synthesize_voc(const SynthOptions& options);

}  // namespace prm
