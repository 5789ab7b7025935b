// Polygons that outline a binary mask, as COCO's polygon segmentations do: `prm synth --format
// coco` writes each object's visible mask this way (data/synth_coco.h; docs/coco.md, "Layout and
// training").
//
// Each 4-connected component of the mask is outlined along the pixel edges (pixel (x, y) covers
// [x, x+1] x [y, y+1]), clockwise on screen: the exact outline, whose rasterisation by
// pycocotools' rule (data/coco_mask.h: pixel centres at x + 0.5) is the component pixel for
// pixel. A COCO polygon cannot have a hole (parts are merged by union), so a component that
// encloses background (8-connected, the dual of 4-connected objects) is cut by a vertical line
// through its first hole pixel and each side is outlined on its own, as annotators split a ring
// into two parts. Components of at least `smooth_min_pixels` are then smoothed like an
// annotator's clicks: each unit step of the outline averaged with its two neighbours (so vertices
// fall on thirds of a pixel) and the points thinned by Douglas-Peucker to `tolerance` pixels;
// smaller ones, and any smoothed part that would rasterise to nothing, keep the exact outline.
// Coordinates are rounded to `decimals` decimals, to the double that the decimal text reads back
// as: rasterising the returned values is rasterising what a JSON reader reads.
#pragma once
#include <cstdint>
#include <vector>

namespace prm {

struct TraceOptions {
  int min_part_pixels = 4;      // smaller components are left out (unless every one is: the
                                // largest is kept)
  int smooth_min_pixels = 20;   // smaller components keep their exact outline
  double tolerance = 0.5;       // Douglas-Peucker distance, pixels
  int decimals = 2;
  bool smooth = true;           // false: exact outlines only
};

// Polygons [x1, y1, x2, y2, ...] (at least 3 points each) outlining the set pixels of a
// row-major h x w mask (nonzero = set); none for an empty mask.
std::vector<std::vector<double>> mask_to_polygons(const uint8_t* mask, int h, int w,
                                                  const TraceOptions& options = {});

}  // namespace prm
