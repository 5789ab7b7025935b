// What real users do to a run, through the program: folders of odd images, a reused output
// folder, a run killed while writing (tests/test_train.cpp has the kill -9 cases).
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "data/files.h"
#include "data/image.h"
#include "data/synth.h"
#include "helpers.h"
#include "data/json.h"
#include "data/voc.h"
#include "prm/infer.h"
#include "prm/train.h"
#include "layers/resnet.h"
#include "prm/weights.h"

using namespace prm;
namespace fs = std::filesystem;

namespace {

fs::path fresh(const std::string& name) {
  const fs::path p = fs::temp_directory_path() /
                     ("prm_reliability_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// A resnet18 of width 4 at 32 pixels, batch 4.
TrainConfig tiny_config(const std::string& data, const std::string& out, int64_t epochs) {
  TrainConfig c;
  c.data = data;
  c.arch = "resnet18";
  c.width = 4;
  c.size = 32;
  c.batch = 4;
  c.epochs = epochs;
  c.workers = 0;
  c.out = out;
  return c;
}

// A tiny trained network and its data, made once.
struct TinyRun {
  std::string data, weights;
};
const TinyRun& tiny_run() {
  static const TinyRun run = [] {
    const fs::path dir = fresh("run");
    SynthOptions o;
    o.out = (dir / "data").string();
    o.train = 4;
    o.val = 3;
    o.size = 48;
    o.classes = 2;
    o.seed = 2;
    synthesize_voc(o);
    train(tiny_config(o.out, (dir / "run").string(), 1));
    return TinyRun{o.out, (dir / "run" / "weights.safetensors").string()};
  }();
  return run;
}

std::string infer(const std::string& input, const std::string& out, const std::string& extra = "") {
  return prm_bin() + " infer --weights " + tiny_run().weights + " --arch resnet18 --size 32 " +
         "--extraction-size 32 --peak-threshold -1e9 --input " + input + " --out " + out + " " +
         extra;
}

void copy_image(const std::string& id, const fs::path& to) {
  fs::copy_file(tiny_run().data + "/JPEGImages/" + id + ".jpg", to);
}

// No line of stderr holds both the progress text and an error or a failure.
void check_lines_apart(const std::string& err) {
  std::string line;
  for (char ch : err) {
    if (ch == '\n' || ch == '\r') {
      CHECK_MESSAGE(!(line.find("inference:") != std::string::npos &&
                      (line.find("error") != std::string::npos ||
                       line.find("failed") != std::string::npos)),
                    line);
      line.clear();
    } else {
      line += ch;
    }
  }
}

}  // namespace

TEST_CASE("infer: a folder run goes past bad images, names each, and says so in its exit status") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh("folder");
  const fs::path in = dir / "in";
  fs::create_directories(in);
  copy_image("2012_000001", in / "a_good.jpg");
  copy_image("2012_000002", in / "c_good.jpg");
  {
    std::ofstream(in / "b_truncated.jpg") << "\xff\xd8\xff\xe0 cut short";
    std::ofstream(in / "notes.txt") << "not an image";
  }
  fs::create_symlink(in / "gone.jpg", in / "d_dangling.jpg");
  CommandResult r = run_command(infer(in.string(), (dir / "out").string()));
  CHECK(r.exit_code == 1);
  CHECK(fs::exists(dir / "out" / "a_good.json"));
  CHECK(fs::exists(dir / "out" / "c_good.json"));  // after the bad one, still done
  CHECK(r.err.find("b_truncated.jpg") != std::string::npos);
  CHECK(r.err.find("1 of 3 images failed") != std::string::npos);
  CHECK(r.err.find("d_dangling.jpg: a symbolic link to nothing") != std::string::npos);
  CHECK(r.err.find("wrote 2 results") != std::string::npos);
  check_lines_apart(r.err);
  // --skip-bad: the same, exit 0.
  r = run_command(infer(in.string(), (dir / "out2").string(), "--skip-bad"));
  CHECK(r.exit_code == 0);
  CHECK(fs::exists(dir / "out2" / "c_good.json"));
  CHECK(r.err.find("skipped, --skip-bad") != std::string::npos);
  // One image given by name: its error is the command's error.
  r = run_command(infer((in / "b_truncated.jpg").string(), (dir / "out3").string()));
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("b_truncated.jpg") != std::string::npos);
}

TEST_CASE("infer: refused before any work: same-stem images, --out equal to --input") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh("stems");
  const fs::path in = dir / "in";
  fs::create_directories(in);
  copy_image("2012_000001", in / "x.jpg");
  copy_image("2012_000002", in / "x.JPEG");
  CommandResult r = run_command(infer(in.string(), (dir / "out").string()));
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("x.JPEG and x.jpg would write the same outputs") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "out"));
  fs::remove(in / "x.JPEG");
  r = run_command(infer(in.string(), in.string()));
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("is the input folder") != std::string::npos);
  CHECK_FALSE(fs::exists(in / "x.json"));
}

TEST_CASE("train: --out must be empty unless it holds a run; a killed write's temp files go") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh("out_folder");
  const std::string train = prm_bin() + " train --data " + tiny_run().data +
                            " --arch resnet18 --width 4 --size 32 --batch 4 --workers 0";
  // A folder with old files and no checkpoint: refused, nothing touched.
  fs::create_directories(dir / "old");
  std::ofstream(dir / "old" / "metrics.jsonl") << "{\"epoch\": 7}\n";
  CommandResult r = run_command(train + " --epochs 1 --out " + (dir / "old").string());
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("holds files but no training run") != std::string::npos);
  CHECK(read_file_bytes((dir / "old" / "metrics.jsonl").string()) == "{\"epoch\": 7}\n");
  // An empty existing folder is fine.
  fs::create_directories(dir / "empty");
  r = run_command(train + " --epochs 1 --out " + (dir / "empty").string());
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  // Temp files of writes a kill interrupted (write_file_atomic's names) are removed on resume;
  // other files stay.
  const fs::path run = dir / "empty";
  std::ofstream(run / "checkpoint.safetensors.tmp.4242.0") << "half a checkpoint";
  std::ofstream(run / "metrics.jsonl.tmp.17.3") << "half";
  std::ofstream(run / "notes.tmp.txt") << "mine";
  r = run_command(prm_bin() + " train --resume " + run.string() + " --epochs 2");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.err.find("removed 2 temporary file(s)") != std::string::npos);
  CHECK_FALSE(fs::exists(run / "checkpoint.safetensors.tmp.4242.0"));
  CHECK_FALSE(fs::exists(run / "metrics.jsonl.tmp.17.3"));
  CHECK(fs::exists(run / "notes.tmp.txt"));
}

TEST_CASE("files: remove_stale_temp_files takes write_file_atomic's names only") {
  const fs::path dir = fresh("stale");
  write_file_atomic((dir / "kept.bin").string(), "data");
  for (const char* name : {"a.tmp.1.2", "b.safetensors.tmp.99999.0", "c.tmp.x.1", "d.tmp.1",
                           "tmp.1.2", "e.tmp.1.2.bak"})
    std::ofstream(dir / name) << "x";
  CHECK(remove_stale_temp_files(dir.string()) == 2);
  for (const char* name : {"kept.bin", "c.tmp.x.1", "d.tmp.1", "tmp.1.2", "e.tmp.1.2.bak"})
    CHECK_MESSAGE(fs::exists(dir / name), name);
}

TEST_CASE("image: an unreadable file is named with the format its first bytes say") {
  const fs::path dir = fresh("formats");
  const std::string jpeg = read_file_bytes(tiny_run().data + "/JPEGImages/2012_000001.jpg");
  write_file_atomic((dir / "cut.jpg").string(), jpeg.substr(0, 20));
  std::string png = "\x89PNG\r\n\x1a\n";
  png += std::string(30, '\0');
  write_file_atomic((dir / "cut.png").string(), png);
  write_file_atomic((dir / "text.jpg").string(), "hello, not an image");
  write_file_atomic((dir / "empty.jpg").string(), "");
  CHECK_THROWS_WITH_AS(load_image((dir / "cut.jpg").string()),
                       doctest::Contains("cut.jpg: cannot decode this JPEG image (truncated or "
                                         "corrupt"),
                       Error);
  CHECK_THROWS_WITH_AS(load_image((dir / "cut.png").string()),
                       doctest::Contains("cannot decode this PNG image"), Error);
  CHECK_THROWS_WITH_AS(load_image((dir / "text.jpg").string()),
                       doctest::Contains("text.jpg: not an image format prm reads"), Error);
  CHECK_THROWS_WITH_AS(load_image((dir / "empty.jpg").string()),
                       doctest::Contains("empty.jpg: empty file, not an image"), Error);
  const unsigned char gif[] = {'G', 'I', 'F', '8', '9', 'a'}, bmp[] = {'B', 'M', 0, 0};
  CHECK(image_format_of(gif, sizeof gif) == "GIF");
  CHECK(image_format_of(bmp, sizeof bmp) == "BMP");
  CHECK(image_format_of(bmp, 1).empty());
}

TEST_CASE("infer: a point for every used peak, and the JSON lists every point and instance") {
  const std::unique_ptr<ResNet> net =
      load_classifier("resnet18", tiny_run().weights, DType::f32, Device::cpu);
  const Image image = load_image(tiny_run().data + "/JPEGImages/2012_000001.jpg", 3);
  InferOptions o;
  o.size = 32;
  o.extraction_size = 32;
  o.peaks.peak_threshold = -1e9;
  o.peaks.class_threshold = -1e9;
  o.proposals = "none";
  const ImageInference r = infer_image(*net, image, "x", Device::cpu, o);
  REQUIRE(r.response.count() > 0);
  REQUIRE(r.points.size() == static_cast<size_t>(r.response.count()));
  for (size_t k = 0; k < r.points.size(); ++k) {
    CHECK(r.points[k].class_index == r.response.peaks[k].c);
    CHECK(r.points[k].score == r.response.peaks[k].value);
    CHECK(r.points[k].x >= 0);
    CHECK(r.points[k].x <= image.width - 1);
    CHECK(r.points[k].y >= 0);
    CHECK(r.points[k].y <= image.height - 1);
  }
  REQUIRE_FALSE(r.instances.empty());
  const std::vector<std::string> classes = voc_class_names();
  std::vector<std::string> masks;
  for (size_t i = 0; i < r.instances.size(); ++i) masks.push_back("m" + std::to_string(i) + ".png");
  const Json j = parse_json(inference_json(r, classes, masks), "inference json");
  CHECK(j.at("points").items().size() == r.points.size());
  REQUIRE(j.at("instances").items().size() == r.instances.size());
  for (size_t i = 0; i < r.instances.size(); ++i) {
    CHECK(j.at("instances").items()[i].at("mask").as_string() == masks[i]);
    CHECK(j.at("instances").items()[i].at("class").as_string() == classes[r.instances[i].peak.c]);
  }
}

TEST_CASE("train: --resume reads the run's data from anywhere, and refuses a changed split") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh("moved");
  SynthOptions o;
  o.out = (dir / "work" / "data").string();
  o.train = 4;
  o.val = 1;
  o.size = 40;
  o.classes = 2;
  o.seed = 6;
  synthesize_voc(o);
  // Started with a relative --data from dir/work ...
  CommandResult r = run_command("cd " + (dir / "work").string() + " && " + prm_bin() +
                                " train --data data --out run --arch resnet18 --width 4 "
                                "--size 32 --batch 4 --epochs 1 --workers 0");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  // ... resumed from dir, where "data" is another (or no) folder: it reads the same data.
  r = run_command("cd " + dir.string() + " && " + prm_bin() + " train --resume work/run --epochs 2");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  // The data replaced by another set at the same place: refused, saying what differs.
  fs::remove_all(o.out);
  o.train = 6;
  o.seed = 9;
  synthesize_voc(o);
  r = run_command(prm_bin() + " train --resume " + (dir / "work" / "run").string() +
                  " --epochs 3");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("is not the one this run trained on: 6 images (the run had 4)") !=
        std::string::npos);
  CHECK(r.err.find("positive images (the run had") != std::string::npos);
}

TEST_CASE("image: a file that declares more pixels than the limit is refused before decoding") {
  const fs::path dir = fresh("bomb");
  // A PNG header declaring 12000 x 12000 (the rest need not exist: the limit is read first).
  std::string png = "\x89PNG\r\n\x1a\n";
  png += std::string("\x00\x00\x00\x0dIHDR", 8);
  png += std::string("\x00\x00\x2e\xe0\x00\x00\x2e\xe0\x08\x02\x00\x00\x00", 13);
  png += std::string("\x00\x00\x00\x00", 4);  // CRC (stb does not check it)
  write_file_atomic((dir / "bomb.png").string(), png);
  CHECK_THROWS_WITH_AS(load_image((dir / "bomb.png").string()),
                       doctest::Contains("bomb.png: 12000x12000 is 144000000 pixels, more than "
                                         "the limit of 100000000"),
                       Error);
  // A real image within a lower limit, and over it.
  const std::string jpg = tiny_run().data + "/JPEGImages/2012_000001.jpg";
  const Image img = load_image(jpg);
  CHECK_NOTHROW(load_image(jpg, 3, static_cast<int64_t>(img.width) * img.height));
  CHECK_THROWS_WITH_AS(load_image(jpg, 3, static_cast<int64_t>(img.width) * img.height - 1),
                       doctest::Contains("--max-pixels raises it"), Error);
  PRM_REQUIRE_BIN_OR_SKIP();
  const CommandResult r = run_command(infer(jpg, (dir / "out").string(), "--max-pixels 100"));
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("more than the limit of 100") != std::string::npos);
}

TEST_CASE("train: metrics.jsonl and the checkpoint never disagree after a kill between them") {
  const fs::path dir = fresh("metrics");
  const TrainConfig c = tiny_config(tiny_run().data, (dir / "run").string(), 2);
  train(c);
  const std::string whole = read_file_bytes(c.out + "/metrics.jsonl");
  REQUIRE(std::count(whole.begin(), whole.end(), '\n') == 2);
  // As if killed after the epoch-2 checkpoint was renamed into place but before the file was
  // written: the file has epoch 1 only. The resume (nothing left to train) writes it again.
  write_file_atomic(c.out + "/metrics.jsonl", whole.substr(0, whole.find('\n') + 1));
  resume_training(c.out, 2);
  CHECK(read_file_bytes(c.out + "/metrics.jsonl") == whole);
  // And a line the checkpoint does not know (a later epoch's, its checkpoint lost) is dropped.
  write_file_atomic(c.out + "/metrics.jsonl", whole + "{\"epoch\": 3}\n");
  resume_training(c.out, 3);
  const std::string after = read_file_bytes(c.out + "/metrics.jsonl");
  CHECK(after.rfind(whole, 0) == 0);
  CHECK(after.find("{\"epoch\": 3}") == std::string::npos);
  CHECK(std::count(after.begin(), after.end(), '\n') == 3);  // epoch 3 trained, its own line
}

TEST_CASE("train: a flipped bit in a checkpoint's weights or position is refused, naming it") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh("bitflip");
  const TrainConfig c = tiny_config(tiny_run().data, (dir / "run").string(), 1);
  train(c);
  const std::string path = c.out + "/checkpoint.safetensors";
  const std::string good = read_file_bytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(good[i]);
  // A bit of the last tensor byte flipped (the data follows the header).
  std::string bad = good;
  bad[bad.size() - 3] ^= 0x04;
  write_file_atomic(path, bad);
  CommandResult r = run_command(prm_bin() + " train --resume " + c.out + " --epochs 2");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("checkpoint.safetensors: tensor '") != std::string::npos);
  CHECK(r.err.find("does not match its checksum") != std::string::npos);
  // The epoch in the metadata changed from 1 to 2 (the run would "finish" with epoch-1 weights).
  bad = good;
  const size_t at = bad.find("\"epoch\":\"1\"");
  REQUIRE(at != std::string::npos);
  REQUIRE(at < 8 + n);
  bad[at + 9] = '2';
  write_file_atomic(path, bad);
  r = run_command(prm_bin() + " train --resume " + c.out + " --epochs 2");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("the metadata does not match its checksum") != std::string::npos);
  // The good file still resumes.
  write_file_atomic(path, good);
  r = run_command(prm_bin() + " train --resume " + c.out + " --epochs 2");
  CHECK_MESSAGE(r.exit_code == 0, r.err);
}

TEST_CASE("weights say what they are: infer takes arch, size and classes from them") {
  PRM_REQUIRE_BIN_OR_SKIP();
  const fs::path dir = fresh("described");
  const std::string jpg = tiny_run().data + "/JPEGImages/2012_000001.jpg";
  const std::string bare = prm_bin() + " infer --weights " + tiny_run().weights +
                           " --extraction-size 32 --input " + jpg + " --out ";
  // No --arch, no --size: the weights' resnet18 at 32 pixels.
  CommandResult r = run_command(bare + (dir / "a").string());
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(fs::exists(dir / "a" / "2012_000001.json"));
  // A flag that disagrees with the file: refused, naming both.
  r = run_command(bare + (dir / "b").string() + " --size 64");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("--size 64 differs from") != std::string::npos);
  CHECK(r.err.find("which says 32") != std::string::npos);
  r = run_command(bare + (dir / "c").string() + " --arch resnet50");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("--arch resnet50 differs from") != std::string::npos);
  // Agreeing flags are fine.
  r = run_command(bare + (dir / "d").string() + " --arch resnet18 --size 32");
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  // What the file says, read back.
  WeightsInfo info;
  load_classifier("", tiny_run().weights, DType::f32, Device::cpu, &info);
  CHECK(info.present);
  CHECK(info.arch == "resnet18");
  CHECK(info.width == 4);
  CHECK(info.size == 32);
  CHECK(info.classes == voc_class_names());
  CHECK(info.head.upsample == 8.0);
  CHECK(info.head.window == 3);
}

TEST_CASE("weights without a description: the architecture their tensor names show") {
  const fs::path dir = fresh("undescribed");
  for (const char* arch : {"resnet18", "resnet34", "resnet50", "resnet101"}) {
    CAPTURE(arch);
    ResNetOptions o;
    o.arch = arch;
    o.width = 2;
    ResNet net(o);
    const std::string path = (dir / (std::string(arch) + ".safetensors")).string();
    save_weights(net, path);  // no description, as torchvision's files
    WeightsInfo info;
    const std::unique_ptr<ResNet> loaded = load_classifier("", path, DType::f32, Device::cpu, &info);
    CHECK_FALSE(info.present);
    CHECK(loaded->options().arch == arch);
  }
}

namespace {

// A JPEG of `img` with an APP1 Exif segment (big- or little-endian TIFF) whose IFD0 holds only
// the orientation tag, inserted after SOI.
std::string jpeg_with_orientation(const Image& img, int orientation, bool big_endian,
                                  const fs::path& dir) {
  const std::string path = (dir / "plain.jpg").string();
  save_jpeg(path, img, 95);
  const std::string jpeg = read_file_bytes(path);
  auto u16 = [&](uint32_t v) {
    return big_endian ? std::string{char(v >> 8), char(v & 0xFF)}
                      : std::string{char(v & 0xFF), char(v >> 8)};
  };
  auto u32 = [&](uint32_t v) {
    return big_endian ? u16(v >> 16) + u16(v & 0xFFFF) : u16(v & 0xFFFF) + u16(v >> 16);
  };
  std::string tiff = std::string(big_endian ? "MM" : "II") + u16(42) + u32(8);  // IFD0 at 8
  tiff += u16(1);                                                            // one entry
  tiff += u16(0x0112) + u16(3) + u32(1) + u16(static_cast<uint32_t>(orientation)) + u16(0);
  tiff += u32(0);  // no next IFD
  const std::string body = std::string("Exif\0\0", 6) + tiff;
  const size_t length = body.size() + 2;
  const std::string app1 = std::string("\xFF\xE1", 2) + char(length >> 8) + char(length & 0xFF) + body;
  return jpeg.substr(0, 2) + app1 + jpeg.substr(2);
}

}  // namespace

TEST_CASE("image: EXIF orientation read from the JPEG and applied as viewers do") {
  const fs::path dir = fresh("exif");
  // A 3 x 2 image (W 3, H 2) of flat 16-pixel blocks, so JPEG keeps each block's colour: block
  // (x, y) has red 40 + 60 x and green 40 + 100 y.
  Image img;
  img.width = 48;
  img.height = 32;
  img.channels = 3;
  img.pixels.assign(48 * 32 * 3, 0);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 48; ++x) {
      img.at(y, x)[0] = static_cast<uint8_t>(40 + 60 * (x / 16));
      img.at(y, x)[1] = static_cast<uint8_t>(40 + 100 * (y / 16));
    }
  for (bool big : {true, false})
    for (int o = 1; o <= 8; ++o) {
      CAPTURE(big);
      CAPTURE(o);
      const std::string bytes = jpeg_with_orientation(img, o, big, dir);
      CHECK(jpeg_exif_orientation(bytes) == o);
      write_file_atomic((dir / "o.jpg").string(), bytes);
      const Image shown = apply_orientation(load_image((dir / "o.jpg").string()), o);
      // Where stored block (bx, by) shows, by the EXIF definitions written out per case.
      CHECK(shown.width == (o >= 5 ? 32 : 48));
      CHECK(shown.height == (o >= 5 ? 48 : 32));
      const int SW = 3, SH = 2;  // stored blocks
      for (int by = 0; by < SH; ++by)
        for (int bx = 0; bx < SW; ++bx) {
          int dx = bx, dy = by;  // displayed block
          switch (o) {
            case 2: dx = SW - 1 - bx; break;
            case 3: dx = SW - 1 - bx; dy = SH - 1 - by; break;
            case 4: dy = SH - 1 - by; break;
            case 5: dx = by; dy = bx; break;
            case 6: dx = SH - 1 - by; dy = bx; break;   // 90 degrees clockwise
            case 7: dx = SH - 1 - by; dy = SW - 1 - bx; break;
            case 8: dx = by; dy = SW - 1 - bx; break;   // 90 degrees counter-clockwise
          }
          const uint8_t* p = shown.at(dy * 16 + 8, dx * 16 + 8);
          CHECK(std::abs(p[0] - (40 + 60 * bx)) <= 6);
          CHECK(std::abs(p[1] - (40 + 100 * by)) <= 6);
        }
    }
  CHECK(jpeg_exif_orientation(read_file_bytes((dir / "plain.jpg").string())) == 1);
  CHECK(jpeg_exif_orientation("not a jpeg") == 1);
}
