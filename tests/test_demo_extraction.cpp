// What the demo's diagnosis (issue 13, docs/prm.md "The demo's numbers") added to instance
// extraction and to prm infer / eval: the area penalty (InstanceOptions::area_penalty, ours, off
// by default) on a hand-computed case where a diffuse PRM makes the paper's score pick the larger
// proposal, and the --dump folder that tools/demo_diagnose.py reads.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "data/files.h"
#include "data/json.h"
#include "data/npy.h"
#include "prm/instances.h"
#include "prm/proposal_files.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace {

prm::Mask rect(int y0, int y1, int x0, int x1) {
  prm::Mask m(10, 10);
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) m.at(y, x) = 1;
  return m;
}

// A 10 x 10 image; one peak of class 0 whose PRM puts 0.5 uniformly on the image (0.005 per
// pixel) and 0.5 more on A = rows 2..4 x cols 2..4 (9 pixels). Proposals: A (area 9) and
// B = all rows x cols 0..4 (area 50, contains A). contour_width 1 makes the contour empty
// (dilation = erosion with a 1x1 square) and the constant CRM makes Q empty (2 < 0.95 * 2 is
// false), so score = 0.8 * sum(R over S) - area_penalty * |S| / 100:
//   sum(R over A) = 9 * 0.005 + 0.5 = 0.545,  sum(R over B) = 50 * 0.005 + 0.5 = 0.75
//   area_penalty 0: A 0.436, B 0.6          (the paper's score: B, the larger one, wins)
//   area_penalty 3: A 0.436 - 0.27 = 0.166, B 0.6 - 1.5 = -0.9   (A wins)
struct DiffuseCase {
  std::vector<prm::PeakPrm> prms;
  std::vector<float> crms = std::vector<float>(100, 2.0f);
  std::vector<prm::Mask> proposals = {rect(2, 4, 2, 4), rect(0, 9, 0, 4)};
  prm::InstanceOptions opts;
  DiffuseCase() {
    prm::PeakPrm p;
    p.height = p.width = 10;
    p.prm.assign(100, 0.005f);
    for (int y = 2; y <= 4; ++y)
      for (int x = 2; x <= 4; ++x) p.prm[y * 10 + x] += 0.5f / 9;
    prms = {p};
    opts.contour_width = 1;
  }
};

}  // namespace

TEST_CASE("area_penalty: off by default, and it turns a diffuse PRM's pick to the tight proposal") {
  DiffuseCase dc;
  CHECK(prm::InstanceOptions{}.area_penalty == 0);
  auto s = prm::proposal_scores(dc.prms, dc.crms.data(), 1, 10, 10, dc.proposals, dc.opts);
  CHECK(s[0][0] == doctest::Approx(0.436).epsilon(1e-6));
  CHECK(s[0][1] == doctest::Approx(0.6).epsilon(1e-6));
  auto inst = prm::extract_instances(dc.prms, dc.crms.data(), 1, 10, 10, dc.proposals, dc.opts);
  REQUIRE(inst.size() == 1);
  CHECK(inst[0].proposal == 1);

  dc.opts.area_penalty = 3;
  s = prm::proposal_scores(dc.prms, dc.crms.data(), 1, 10, 10, dc.proposals, dc.opts);
  CHECK(s[0][0] == doctest::Approx(0.166).epsilon(1e-6));
  CHECK(s[0][1] == doctest::Approx(-0.9).epsilon(1e-6));
  inst = prm::extract_instances(dc.prms, dc.crms.data(), 1, 10, 10, dc.proposals, dc.opts);
  REQUIRE(inst.size() == 1);
  CHECK(inst[0].proposal == 0);
  CHECK(inst[0].score == doctest::Approx(0.166).epsilon(1e-6));
}

TEST_CASE("area_penalty: negative or not finite is an error") {
  DiffuseCase dc;
  for (double bad : {-1.0, std::numeric_limits<double>::quiet_NaN(),
                     std::numeric_limits<double>::infinity()}) {
    dc.opts.area_penalty = bad;
    CHECK_THROWS_AS(prm::extract_instances(dc.prms, dc.crms.data(), 1, 10, 10, dc.proposals,
                                           dc.opts),
                    prm::Error);
  }
}

namespace {

int run(const std::string& args, const fs::path& dir, std::string* err = nullptr) {
  const fs::path err_file = dir / "stderr.txt";
  const std::string cmd =
      std::string(std::getenv("PRM_BIN")) + " " + args + " 2> " + err_file.string() + " >/dev/null";
  const int status = std::system(cmd.c_str());
  if (err) *err = prm::read_file_bytes(err_file.string());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

// prm eval --weights --dump on a tiny run: per image with peaks, the proposals [P, E, E], PRMs
// [K, E, E] and scores [K, P] at the extraction size, and a JSON whose instances each name the
// proposal that is the argmax of their peak's score row (extraction's choice, read back).
TEST_CASE("prm eval --weights --dump writes what extraction saw; --area-penalty is checked") {
  if (!std::getenv("PRM_BIN")) {
    MESSAGE("skipped: PRM_BIN not set (make test sets it)");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / "prm_demo_test_dump";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string data = (dir / "data").string(), runs = (dir / "run").string();
  std::string err;
  REQUIRE(run("synth --out " + data + " --train 8 --val 3 --size 64 --classes 2", dir) == 0);
  REQUIRE_MESSAGE(run("train --data " + data + " --out " + runs +
                          " --arch resnet18 --width 4 --size 48 --batch 4 --epochs 1 --workers 1",
                      dir, &err) == 0,
                  err);
  const std::string net = " --arch resnet18 --size 48 --extraction-size 64 --peak-threshold -1e9"
                          " --class-threshold -1e9 --area-penalty 2";
  const fs::path dump = dir / "dump";
  REQUIRE_MESSAGE(run("eval --weights " + runs + "/weights.safetensors --data " + data +
                          " --split val --out " + (dir / "eval").string() + net + " --dump " +
                          dump.string(),
                      dir, &err) == 0,
                  err);
  int images = 0;
  for (const auto& e : fs::directory_iterator(dump)) {
    if (e.path().extension() != ".json") continue;
    ++images;
    const std::string base = (dump / e.path().stem()).string();
    const prm::Json j = prm::parse_json(prm::read_file_bytes(e.path().string()), e.path().string());
    CHECK(j.at("extraction_size").as_int64() == 64);
    // 48 -> 24 (conv1) -> 12 (max-pool) -> 6 -> 3 -> 2 (layer2..4): a 2x2 CRM, x8 upsampled.
    CHECK(j.at("grid_height").as_int64() == 16);
    const int64_t K = static_cast<int64_t>(j.at("peaks").size());
    REQUIRE(K > 0);
    const std::vector<prm::Mask> proposals = prm::load_proposals_npy(base + "_proposals.npy");
    REQUIRE(!proposals.empty());
    CHECK(proposals[0].height == 64);
    CHECK(proposals[0].width == 64);
    const prm::Tensor prms = prm::load_npy(base + "_prms.npy");
    CHECK(prms.shape() == prm::Shape{K, 64, 64});
    const prm::Tensor scores = prm::load_npy(base + "_scores.npy");
    const int64_t P = static_cast<int64_t>(proposals.size());
    REQUIRE(scores.shape() == prm::Shape{K, P});
    const std::vector<double> s = scores.to_vector();
    for (size_t i = 0; i < j.at("instances").size(); ++i) {
      const prm::Json& inst = j.at("instances").items()[i];
      const int64_t k = inst.at("peak").as_int64(), chosen = inst.at("proposal").as_int64();
      REQUIRE(k >= 0);
      REQUIRE(k < K);
      int64_t best = 0;
      for (int64_t p = 1; p < P; ++p)
        if (s[k * P + p] > s[k * P + best]) best = p;
      CHECK(chosen == best);
      CHECK(inst.at("score").as_double() == doctest::Approx(s[k * P + best]).epsilon(1e-9));
    }
  }
  CHECK(images > 0);
  CHECK(run("eval --weights " + runs + "/weights.safetensors --data " + data +
                " --split val --out " + (dir / "eval2").string() +
                " --arch resnet18 --size 48 --area-penalty -1",
            dir, &err) != 0);
  CHECK(err.find("--area-penalty") != std::string::npos);
}
