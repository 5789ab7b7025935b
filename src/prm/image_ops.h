// Image operations the PRM steps share, on float maps and binary masks: the bicubic resize
// (torch's), the morphological gradient (OpenCV's border rule), the nearest-neighbour mask resize
// (PIL's) and mask IoU. Plain host code; sums in double.
#pragma once
#include <cstddef>  // before mask.h, which uses size_t
#include <cstdint>
#include <vector>

#include "prm/mask.h"

namespace prm {

// out[H, W] = bicubic interpolation of in[h, w], as torch F.interpolate(mode='bicubic',
// align_corners=False) with an output size: source coordinate (dst + 0.5) * (in / out) - 0.5,
// not clamped; cubic convolution with a = -0.75 over the 4 taps floor(src) - 1 .. floor(src) + 2,
// each tap index clamped to the border. Any sizes >= 1, up or down (no antialiasing, as torch).
void bicubic_upsample(float* out, const float* in, int h, int w, int H, int W);
std::vector<float> bicubic_upsample(const float* in, int h, int w, int H, int W);

// Dilation minus erosion with a size x size square (size odd, anchor at the centre). Border rule
// of OpenCV's morphologyEx defaults (which the official code used): pixels outside the image
// never win, i.e. they count as off for the dilation and as on for the erosion, so a mask that
// touches the image edge gets no contour along that edge.
Mask morphological_gradient(const Mask& mask, int size);

// Nearest-neighbour resize of a mask (source index floor((dst + 0.5) * in / out), as PIL's
// NEAREST, which the official code used to bring proposals to the PRM size).
Mask resize_mask_nearest(const Mask& mask, int height, int width);

// Intersection over union of two masks of the same size (0 when both are empty).
double mask_iou(const Mask& a, const Mask& b);

// The pixels (row-major indices, ascending) of morphological_gradient(mask, size), for a mask
// whose on pixels are `inside` (row-major, ascending): the contour band that instance scoring
// sums over, found without building the whole gradient mask.
std::vector<int32_t> contour_pixels(const Mask& mask, const std::vector<int32_t>& inside, int size);

}  // namespace prm
