#include "data/predictions.h"

#include <filesystem>

#include "data/image.h"
#include "tensor/error.h"

namespace prm {

namespace fs = std::filesystem;

PredictionWriter::PredictionWriter(const std::string& dir) : dir_(dir) {
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "masks", ec);
  PRM_CHECK(!ec, dir, ": cannot create predictions folder (", ec.message(), ")");
  scores_.open(fs::path(dir) / "classification.txt");
  points_.open(fs::path(dir) / "points.txt");
  instances_.open(fs::path(dir) / "instances.txt");
  PRM_CHECK(scores_.good() && points_.good() && instances_.good(), dir,
            ": cannot create the prediction files");
  scores_.precision(9);
  points_.precision(9);
  instances_.precision(9);
}

void PredictionWriter::add_score(const std::string& image_id, const std::string& class_name,
                                 double score) {
  scores_ << image_id << ' ' << class_name << ' ' << score << '\n';
}

void PredictionWriter::add_point(const std::string& image_id, const std::string& class_name,
                                 double score, double x, double y) {
  points_ << image_id << ' ' << class_name << ' ' << score << ' ' << x << ' ' << y << '\n';
}

void PredictionWriter::add_instance(const std::string& image_id, const std::string& class_name,
                                    double score, const std::vector<uint8_t>& mask, int width,
                                    int height) {
  PRM_CHECK(width > 0 && height > 0 && mask.size() == static_cast<size_t>(width) * height,
            "PredictionWriter::add_instance: mask of ", mask.size(), " bytes for ", width, "x",
            height);
  const int k = ++masks_per_image_[image_id];
  const std::string name = "masks/" + image_id + "_" + std::to_string(k) + ".png";
  Image img;
  img.width = width;
  img.height = height;
  img.channels = 1;
  img.pixels.resize(mask.size());
  for (size_t i = 0; i < mask.size(); ++i) img.pixels[i] = mask[i] ? 255 : 0;
  save_png((fs::path(dir_) / name).string(), img);
  instances_ << image_id << ' ' << class_name << ' ' << score << ' ' << name << '\n';
}

void PredictionWriter::flush() {
  scores_.flush();
  points_.flush();
  instances_.flush();
  PRM_CHECK(scores_.good() && points_.good() && instances_.good(), dir_, ": write failed");
}

}  // namespace prm
