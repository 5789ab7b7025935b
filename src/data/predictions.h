// Writes a predictions folder in the format `prm eval` reads (see eval.h, docs/evaluation.md):
// classification.txt, points.txt, instances.txt and masks/<image_id>_<k>.png (8-bit grey PNGs,
// 255 inside the mask). For the inference program; not thread-safe.
#pragma once
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace prm {

class PredictionWriter {
 public:
  explicit PredictionWriter(const std::string& dir);  // creates dir and dir/masks
  void add_score(const std::string& image_id, const std::string& class_name, double score);
  // x, y: 0-based pixel coordinates in the original image.
  void add_point(const std::string& image_id, const std::string& class_name, double score, double x,
                 double y);
  // mask: width * height bytes, non-zero inside, at the original image size.
  void add_instance(const std::string& image_id, const std::string& class_name, double score,
                    const std::vector<uint8_t>& mask, int width, int height);
  void flush();

 private:
  std::string dir_;
  std::ofstream scores_, points_, instances_;
  std::map<std::string, int> masks_per_image_;
};

}  // namespace prm
