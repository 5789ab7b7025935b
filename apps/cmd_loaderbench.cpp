// prm loaderbench: images per second the threaded loader delivers on a VOC or COCO split (JPEG
// decode, bilinear resize, flip, normalisation, batching, and the host-to-device copy with
// --device cuda).
// One JSON object per line on stdout, like prm bench; human-readable text on stderr.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "args.h"
#include "commands.h"
#include "data/loader.h"
#include "data/synth.h"
#include "tensor/allocator.h"

namespace prm {

int cmd_loaderbench(int argc, char** argv) {
  Args args("loaderbench",
            "Measures the images per second the threaded loader delivers. Without --data it\n"
            "first writes a synthetic VOC-layout dataset of VOC-sized (500 px wide) JPEGs.");
  args.optional("data",
                "VOC or COCO root, the layout detected as prm train does (default: a synthetic "
                "dataset in a temporary folder)");
  args.option("split", "split: VOC ImageSets/Main/<split>.txt, COCO instances_<split>.json",
              "train");
  args.option("size", "square input size", "448");
  args.option("batch", "batch size", "16");
  args.option("workers", "worker threads (0: decode in the consumer thread)", "2");
  args.option("prefetch", "batches decoded ahead", "4");
  args.option("images", "images in the synthetic dataset", "160");
  args.option("epochs", "epochs to time (after one warm-up epoch)", "2");
  args.choice("device", kDeviceChoices, "where batches go (cuda: copied from pinned memory)",
              "cpu");
  if (!args.parse(argc, argv)) return 0;
  const Device device = args.get_device("device");  // before any work: fail fast

  std::string root;
  std::string temp;
  if (args.has("data")) {
    root = args.get("data");
  } else {
    temp = (std::filesystem::temp_directory_path() / "prm_loaderbench_voc").string();
    SynthOptions so;
    so.out = temp;
    so.train = static_cast<int>(args.get_int("images"));
    so.val = 1;
    so.size = 500;
    std::fprintf(stderr, "writing %d synthetic 500-px images to %s\n", so.train, temp.c_str());
    synthesize_voc(so);
    root = temp;
  }
  VocOptions vo;
  vo.root = root;
  vo.split = args.get("split");
  vo.format = "auto";
  VocDataset data(vo);
  LoaderOptions lo;
  lo.batch_size = static_cast<int>(args.get_int("batch"));
  lo.image_size = static_cast<int>(args.get_int("size"));
  lo.workers = static_cast<int>(args.get_int("workers"));
  lo.prefetch = static_cast<int>(args.get_int("prefetch"));
  lo.device = device;
  const int epochs = static_cast<int>(args.get_int("epochs"));
  Loader loader(data, lo);
  Batch batch;
  loader.start_epoch(0);  // warm-up: page cache, pinned buffers
  while (loader.next(batch)) {
  }
  int64_t images = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int e = 1; e <= epochs; ++e) {
    loader.start_epoch(e);
    while (loader.next(batch)) images += batch.images.size(0);
  }
  if (lo.device == Device::cuda) cuda_synchronize();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "%lld images in %.3f s with %d workers\n", static_cast<long long>(images), s,
               lo.workers);
  std::printf(
      "{\"bench\": \"loader\", \"size\": %d, \"batch\": %d, \"workers\": %d, \"device\": \"%s\", "
      "\"images\": %lld, \"seconds\": %.4f, \"images_per_s\": %.2f}\n",
      lo.image_size, lo.batch_size, lo.workers, device_name(lo.device),
      static_cast<long long>(images), s, images / s);
  if (!temp.empty()) std::filesystem::remove_all(temp);
  return 0;
}

}  // namespace prm
