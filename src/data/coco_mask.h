// MS COCO masks, exactly as pycocotools (cocodataset/cocoapi, maskApi.c) computes them: the same
// run-length encoding, the same compressed strings, the same polygon rasterisation pixel for
// pixel, the same area, bounding box, merge and IoU. Written from the format's rules (docs/coco.md
// walks through them); tests compare against fixtures made with pycocotools itself.
//
// Run-length encoding (Rle): the h x w mask is read column by column (column-major: pixel (x, y)
// is number x * h + y), and `counts` are the lengths of alternating runs, starting with a run of
// zeros (0 when the first pixel is set). A valid RLE's counts sum to h * w, and h * w < 2^32
// (counts are uint32, as pycocotools' are). Functions that read an Rle's pixels (decode, area,
// bbox, merge, IoU) expect a valid one; check_rle says whether it is.
//
// Compressed string (the "counts" string of COCO's JSON): each count becomes a signed number,
// written 5 bits per character, least significant group first, in the characters '0'..'o'
// (48 + a 6-bit value whose bit 0x20 says "another character follows"; in the last character
// bit 0x10 is the sign). From the fourth count on (index >= 3) the number written is the
// difference to the count two places before, which keeps numbers small in masks whose runs
// repeat column after column.
//
// Polygons (COCO's [[x1, y1, x2, y2, ...], ...]): each part is rasterised on a grid five times
// finer than the pixels (vertex coordinate v goes to (int)(5 v + 0.5), truncated toward zero),
// its edges are walked one fine step at a time, and each time the walk crosses the centre column
// of pixel x the pixel row just below the crossing is recorded as a toggle of column x; the
// toggles sorted in column-major order are the RLE. Parts are merged by union (pycocotools'
// frPyObjects + merge, i.e. COCO.annToRLE). Vertices may lie outside the image; coordinates are
// doubles, used as given.
//
// Errors are prm::Error with one line that a caller can prefix with the file and annotation, e.g.
// "instances_val2014.json: annotation 12 (id 345): " + "segmentation polygon 1: 7 coordinates,
// an odd number".
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace prm::coco {

struct Rle {
  uint32_t h = 0, w = 0;
  std::vector<uint32_t> counts;  // alternating run lengths, zeros first, column-major

  bool operator==(const Rle& o) const { return h == o.h && w == o.w && counts == o.counts; }
  bool operator!=(const Rle& o) const { return !(*this == o); }
};

// Polygon coordinates must lie within +-kMaxPolygonCoordinate pixels (far outside any image;
// pycocotools' own int arithmetic breaks down a few hundred times further out).
constexpr double kMaxPolygonCoordinate = 1e6;

// prm::Error unless h * w < 2^32 and the counts sum to h * w:
//   "RLE counts sum to 99, not h*w = 100 (size [10, 10])"
void check_rle(const Rle& rle);

// ---- masks <-> RLE ----

// Encodes a row-major h x w mask (mask[y * w + x]; any nonzero byte is "set").
Rle rle_encode(const uint8_t* mask, uint32_t h, uint32_t w);
// Decodes to a row-major h x w mask of 0 and 1. prm::Error when the RLE is not valid.
std::vector<uint8_t> rle_decode(const Rle& rle);

// ---- compressed strings ----

// The compressed string of `counts` (byte for byte what pycocotools writes).
std::string rle_to_string(const std::vector<uint32_t>& counts);
// Reads a compressed string strictly: every byte in '0'..'o', no number cut off at the end, at
// most 7 characters per number, every count within 0..2^32-1. Errors name the byte offset:
//   "compressed RLE counts: byte ' ' (0x20) at offset 4 is not in '0'..'o'"
std::vector<uint32_t> rle_counts_from_string(std::string_view s);
// rle_counts_from_string, then check_rle against the size [h, w].
Rle rle_from_string(std::string_view s, uint32_t h, uint32_t w);

// ---- polygons ----

// One polygon part [x1, y1, x2, y2, ...] (at least 3 points, an even number of coordinates,
// each finite and within +-kMaxPolygonCoordinate), rasterised as pycocotools' frPoly does.
Rle rle_from_polygon(const std::vector<double>& xy, uint32_t h, uint32_t w);
// A COCO polygon segmentation (one or more parts), each part rasterised and all merged by union:
// the mask of pycocotools' annToRLE / annToMask. Errors name the part:
//   "segmentation polygon 1: 7 coordinates, an odd number"
//   "segmentation polygon 0: 2 points, at least 3 needed"
//   "segmentation: no polygon"
Rle rle_from_polygons(const std::vector<std::vector<double>>& parts, uint32_t h, uint32_t w);

// ---- measures ----

// Number of set pixels (the sum of the odd-numbered runs).
uint32_t rle_area(const Rle& rle);
// Bounding box [x, y, width, height] of the set pixels in pixel units ([0, 0, 0, 0] when none),
// computed from the runs as pycocotools' toBbox does.
std::array<double, 4> rle_to_bbox(const Rle& rle);

// Union (intersect = false) or intersection of RLEs of one size, folded left to right as
// pycocotools' merge does. prm::Error when the list is empty or the sizes differ.
Rle rle_merge(const std::vector<Rle>& rles, bool intersect);
Rle rle_merge(const Rle& a, const Rle& b, bool intersect);

// IoU of a detection with a ground truth, from the runs (no masks are drawn):
// |dt & gt| / |dt | gt|, or |dt & gt| / |dt| when the ground truth is a crowd region; 0 when the
// bounding boxes do not overlap or nothing intersects; -1 when the two sizes differ and the
// boxes overlap (pycocotools' answer, which no IoU threshold accepts).
double rle_iou(const Rle& dt, const Rle& gt, bool gt_crowd);
// All pairs: iou[d * G + g] for D detections and G ground truths (gt_crowd[g] nonzero for
// crowd regions). Each mask's bounding box is computed once and pairs whose boxes do not overlap
// are skipped, so this costs about D * G box tests plus the run walks of overlapping pairs.
void rle_iou_matrix(double* iou, const Rle* const* dts, size_t D, const Rle* const* gts,
                    const uint8_t* gt_crowd, size_t G);

}  // namespace prm::coco
