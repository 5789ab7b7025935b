// libFuzzer target for the prediction-file readers behind `prm eval --pred` (data/eval.h):
// classification.txt, points.txt and instances.txt. The first input byte picks the file (its
// value mod 3, in that order), the rest is the file's text; prm::evaluate then scores it against a
// small synthetic VOC dataset made once per process (prm synth: 1 train, 2 val images) whose
// predictions folder also holds one valid mask PNG per image (masks/<id>_1.png) and one of the
// wrong size (masks/small.png). Any input must either evaluate or throw prm::Error; crashes,
// hangs, leaks and sanitizer reports are bugs. Build with build.sh.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/eval.h"
#include "data/predictions.h"
#include "data/synth.h"
#include "fuzz_util.h"
#include "tensor/error.h"

namespace {

namespace fs = std::filesystem;

struct Setup {
  std::string voc, pred;
};

const Setup& setup() {
  static const Setup s = [] {
    Setup r;
    r.voc = prm_fuzz::scratch_dir() + "/voc";
    r.pred = prm_fuzz::scratch_dir() + "/pred";
    prm::SynthOptions so;
    so.out = r.voc;
    so.train = 1;
    so.val = 2;
    so.size = 48;
    const std::vector<prm::VocAnnotation> annotations = prm::synthesize_voc(so);
    {
      prm::PredictionWriter writer(r.pred);
      for (int i = 0; i < so.train + so.val; ++i) {
        const prm::VocAnnotation& a = annotations[i];
        std::vector<uint8_t> mask(static_cast<size_t>(a.width) * a.height, 0);
        for (size_t p = 0; p < mask.size(); p += 3) mask[p] = 1;
        writer.add_instance(prm::synth_image_id(i), "person", 0.5, mask, a.width, a.height);
      }
      writer.add_instance("small", "cat", 0.5, std::vector<uint8_t>(6, 1), 3, 2);
      writer.flush();
    }
    fs::rename(fs::path(r.pred) / "masks" / "small_1.png", fs::path(r.pred) / "masks" / "small.png");
    return r;
  }();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* const kFiles[] = {"classification.txt", "points.txt", "instances.txt"};
  const Setup& s = setup();
  for (const char* f : kFiles) fs::remove(fs::path(s.pred) / f);
  prm_fuzz::write_bytes((fs::path(s.pred) / kFiles[data[0] % 3]).string(),
                        std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  prm::EvalOptions o;
  o.data = s.voc;
  o.split = "val";
  o.pred = s.pred;
  try {
    const prm::EvalReport r = prm::evaluate(o);
    prm::report_json(r);
    prm::report_markdown(r);
  } catch (const prm::Error&) {
  }
  return 0;
}
