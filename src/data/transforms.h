// Image transforms for the classifier input: bilinear resize (half-pixel centres, edges clamped:
// torch's F.interpolate(mode='bilinear', align_corners=False) without antialiasing), optional
// horizontal flip, and ImageNet normalisation ((v / 255 - mean) / std per channel), written as
// float CHW. Randomness (the flip) is decided by the caller from a seed, so a run is reproducible.
#pragma once
#include <cstdint>

#include "data/image.h"

namespace prm {

constexpr float kImageNetMean[3] = {0.485f, 0.456f, 0.406f};
constexpr float kImageNetStd[3] = {0.229f, 0.224f, 0.225f};

// Bilinear resize of any channel count to out_w x out_h.
Image resize_bilinear(const Image& src, int out_w, int out_h);

// src (RGB) -> out[3][size][size]: resized, flipped left-right if `flip`, ImageNet-normalised.
void resize_flip_normalize(const Image& src, int size, bool flip, float* out);

// The flip decision for one sample of one epoch: a pure function of (seed, epoch, sample).
bool flip_for(uint64_t seed, int64_t epoch, int64_t sample);

}  // namespace prm
