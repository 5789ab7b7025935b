// Pictures a person reads at a glance: instances (each mask blended in its own colour, its
// contour drawn, "class score" written on it), a PRM as a heat map over the image, and a CRM
// (bicubic-upsampled to the image size) as a heat map with the class name. The heat maps use a
// jet-like colour map of the map divided by its maximum (values <= 0 are the coldest colour; a
// map whose maximum is <= 0 is all cold). The drawing functions return a new RGB image; an input
// image with 1, 3 or 4 channels is first made RGB. Text uses stb_easy_font's quads, as
// src/data/plot.cpp does.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"
#include "prm/instances.h"

namespace prm {

// The colour of the i-th instance: entries 1..20 of the VOC colour map, cycling.
std::array<uint8_t, 3> instance_colour(int i);

// Instance i (in the given order) gets instance_colour(i); lower scores are drawn first so the
// best instance lies on top. class_names[peak.c] labels it ("c<index>" when out of range).
// Masks must have the image's size (prm::Error otherwise).
Image draw_instances(const Image& image, const std::vector<Instance>& instances,
                     const std::vector<std::string>& class_names);

// map: float [image.height, image.width] (a PRM at input resolution). `label` is written at the
// top left (nothing when empty).
Image draw_heatmap(const Image& image, const float* map, int height, int width,
                   const std::string& label);

// crm: float [h, w] of one class, bicubic-upsampled to the image size (bicubic_upsample), then
// drawn as draw_heatmap with "label (max V)".
Image draw_crm(const Image& image, const float* crm, int h, int w, const std::string& label);

// PNG written to a temporary file beside `path`, then renamed over it.
void save_png_atomic(const std::string& path, const Image& image);

}  // namespace prm
