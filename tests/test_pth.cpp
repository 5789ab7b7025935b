// PyTorch .pth files read without Python (data/pth.h, data/pickle.h, data/zip.h): the fixtures
// torch.save wrote (tests/fixtures/pth, tools/fixtures/make_pth_fixtures.py) equal their
// .safetensors twins bit for bit, and every kind of bad or malicious file is refused with one
// line naming the file and what was refused, nothing run. Bad files are built by hand
// (tests/pth_builder.h) or are a fixture with a few bytes changed.
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "data/files.h"
#include "data/pth.h"
#include "data/safetensors.h"
#include "helpers.h"
#include "layers/resnet.h"
#include "prm/weights.h"
#include "pth_builder.h"

using namespace prm;
using namespace pth_builder;
using namespace std::string_literals;
namespace fs = std::filesystem;

namespace {

const std::string kDir = "tests/fixtures/pth/";

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string pth_error(const std::string& bytes) {
  return error_of([&] { parse_pth(bytes, "bad.pth"); });
}

// Same names, dtypes, shapes and bytes (NaN payloads and signed zeros included).
void check_same_tensors(const TensorMap& got, const TensorMap& want) {
  REQUIRE(got.size() == want.size());
  for (const auto& [name, w] : want) {
    CAPTURE(name);
    auto it = got.find(name);
    REQUIRE(it != got.end());
    const Tensor& g = it->second;
    CHECK(g.dtype() == w.dtype());
    REQUIRE(g.shape() == w.shape());
    const size_t n = static_cast<size_t>(w.numel()) * dtype_size(w.dtype());
    CHECK((n == 0 || std::memcmp(g.raw_data(), w.raw_data(), n) == 0));
  }
}

// A float32 state_dict of one tensor "w" over storage "0" (4 floats), in the zip layout.
std::string one_tensor_zip(const TensorSpec& t, const std::string& storage_bytes) {
  return pth_zip(state_dict_pickle({t}, false), {{t.key, storage_bytes}});
}

const std::string kFour = bytes_of<float>({1.f, 2.f, 3.f, 4.f});

// Where a tar archive's two zero blocks end (after them comes padding to tarfile's record size).
size_t tar_end(const std::string& bytes) {
  size_t at = 0;
  while (bytes.compare(at, 512, std::string(512, '\0')) != 0) {
    size_t size = std::stoul(bytes.substr(at + 124, 12), nullptr, 8);
    at += 512 + (size + 511) / 512 * 512;
  }
  return at + 1024;
}

}  // namespace

TEST_CASE("pth: the torch.save fixtures equal their safetensors twins bit for bit") {
  const TensorMap resnet = load_safetensors(kDir + "resnet18w2.safetensors").tensors;
  const TensorMap dtypes = load_safetensors(kDir + "dtypes.safetensors").tensors;
  const std::vector<std::pair<std::string, WeightsFormat>> files = {
      {"resnet18w2", WeightsFormat::pth_zip},    {"resnet18w2_legacy", WeightsFormat::pth_legacy},
      {"resnet18w2_wrapped", WeightsFormat::pth_zip}, {"dtypes", WeightsFormat::pth_zip},
      {"dtypes_legacy", WeightsFormat::pth_legacy}, {"dtypes_p4", WeightsFormat::pth_zip},
      {"dtypes_zip64", WeightsFormat::pth_zip}, {"dtypes_tar", WeightsFormat::pth_tar},
      {"resnet18w2_tar", WeightsFormat::pth_tar}};
  for (const auto& [name, format] : files) {
    CAPTURE(name);
    WeightsFormat got_format;
    const SafetensorsContents c = load_weights_file(kDir + name + ".pth", &got_format);
    CHECK(got_format == format);
    CHECK(c.metadata.empty());
    check_same_tensors(c.tensors, name.rfind("resnet", 0) == 0 ? resnet : dtypes);
  }
  // The twins hold float16, bfloat16 and float64 tensors: what the fixtures were made to test.
  const std::string twin = read_file_bytes(kDir + "resnet18w2.safetensors");
  const std::string header = twin.substr(8, twin.find("}}") - 8);
  for (const char* dtype : {"\"F16\"", "\"BF16\"", "\"F64\"", "\"I64\""})
    CHECK(contains(header, dtype));
}

TEST_CASE("pth: the reader is chosen by content, not by the file's name") {
  const fs::path dir = fresh_temp_dir("pth_names");
  fs::copy_file(kDir + "dtypes_legacy.pth", dir / "weights.safetensors");
  fs::copy_file(kDir + "dtypes.safetensors", dir / "weights.pth");
  fs::copy_file(kDir + "dtypes.pth", dir / "weights");
  const TensorMap want = load_safetensors(kDir + "dtypes.safetensors").tensors;
  for (const char* name : {"weights.safetensors", "weights.pth", "weights"})
    check_same_tensors(load_weights_file((dir / name).string()).tensors, want);
}

TEST_CASE("pth: float16 and bfloat16 convert to float32 as the safetensors reader converts them") {
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
  const std::string bits = bytes_of(all);
  for (const char* type : {"HalfStorage", "BFloat16Storage"}) {
    CAPTURE(type);
    TensorSpec t{"w", "0", type, 65536, 0, {256, 256}, {256, 1}};
    const TensorMap got = parse_pth(one_tensor_zip(t, bits), "all.pth");
    const std::string st_dtype = std::string(type) == "HalfStorage" ? "F16" : "BF16";
    const std::string header = R"({"w":{"dtype":")" + st_dtype +
                               R"(","shape":[256,256],"data_offsets":[0,131072]}})";
    const TensorMap want = parse_safetensors(le(header.size(), 8) + header + bits, "all").tensors;
    check_same_tensors(got, want);
  }
}

TEST_CASE("pth: a pickle that calls os.system or eval is refused by name and runs nothing") {
  // The fixture script checked that Python's torch.load runs both (it creates the marker).
  const fs::path dir = fresh_temp_dir("pth_evil");
  const fs::path cwd = fs::current_path();
  const std::string system_pth = (cwd / kDir / "evil_system.pth").string();
  const std::string eval_pth = (cwd / kDir / "evil_eval_legacy.pth").string();
  std::string e1, e2;
  {
    struct Back {  // to the repository root, whatever happens
      fs::path to;
      ~Back() { fs::current_path(to); }
    } back{cwd};
    fs::current_path(dir);  // where the payload would create its marker
    e1 = error_of([&] { load_weights_file(system_pth); });
    e2 = error_of([&] { load_weights_file(eval_pth); });
  }
  CHECK(contains(e1, "evil_system.pth"));
  CHECK(contains(e1, "'posix.system'"));
  CHECK(contains(e2, "evil_eval_legacy.pth"));
  CHECK(contains(e2, "'__builtin__.eval'"));
  for (const std::string& e : {e1, e2}) {
    CHECK(contains(e, "refused"));
    CHECK(!contains(e, "\n"));
  }
  CHECK(!fs::exists(dir / "prm_pwned_marker"));

  // A network given such a file keeps its weights: nothing is loaded half-way.
  ResNetOptions o;
  o.arch = "resnet18";
  o.width = 2;
  ResNet net(o);
  const std::vector<double> before = net.state_dict().at("conv1.weight").to_vector();
  CHECK_THROWS_AS(load_resnet_weights(net, system_pth, false), Error);
  CHECK(net.state_dict().at("conv1.weight").to_vector() == before);
}

TEST_CASE("pth: globals outside the allow-list are refused when the pickle names them") {
  for (const auto& [module, name] : std::vector<std::pair<std::string, std::string>>{
           {"builtins", "eval"}, {"os", "system"}, {"subprocess", "Popen"},
           {"torch", "load"}, {"torch", "ByteStorage"}, {"torch._utils", "_rebuild_qtensor"},
           {"collections", "defaultdict"}, {"torch.nn.modules.conv", "Conv2d"}}) {
    CAPTURE(name);
    Pickle p;
    p.global(module, name).text("echo pwned").op(0x85).op('R');
    const std::string e = pth_error(pth_zip(p.done(), {}));
    CHECK(contains(e, "bad.pth"));
    CHECK(contains(e, "refused: the pickle asks for the global '" + module + "." + name + "'"));
    // The same through STACK_GLOBAL (pickle protocol 4).
    Pickle q;
    q.text(module).text(name).op(0x93);
    CHECK(contains(pth_error(pth_zip(q.done(), {})), "'" + module + "." + name + "'"));
  }
  // An allowed global called for what it is not.
  Pickle p;
  p.global("torch", "FloatStorage").op(')').op('R');
  CHECK(contains(pth_error(pth_zip(p.done(), {})), "only names a storage's elements"));
  CHECK(pth_allowed_globals().size() == 14);
}

TEST_CASE("pth: opcodes a state_dict does not need are refused by name") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"i__builtin__\neval\n", "INST"},       {std::string("\x81", 1), "NEWOBJ"},
      {std::string("\x82\x01", 2), "EXT1"},  {"I1\n", "INT"},
      {"S'x'\n", "STRING"},                  {"o", "OBJ"},
      {"2", "DUP"},                          {std::string("\x8f", 1), "EMPTY_SET"},
      {"C\x01x", "SHORT_BINBYTES"},          {"Pabc\n", "PERSID"}};
  for (const auto& [bytes, name] : cases) {
    CAPTURE(name);
    const std::string e = pth_error(pth_zip(std::string("\x80\x02", 2) + bytes + ".", {}));
    CHECK(contains(e, "refused: the pickle uses opcode " + name + " ("));
    CHECK(contains(e, "nothing in the file was run"));
  }
  CHECK(contains(pth_error(pth_zip(std::string("\x80\x02\xff.", 4), {})),
                 "byte 0xff is not a pickle opcode"));
  CHECK(contains(pth_error(pth_zip(std::string("\x80\x07}.", 4), {})), "protocol 7"));
}

TEST_CASE("pth: sizes, offsets and strides are checked against the storage before any copy") {
  auto error_for = [](TensorSpec t, const std::string& bytes = kFour) {
    t.name = "w";
    return pth_error(one_tensor_zip(t, bytes));
  };
  TensorSpec ok{"w"};
  CHECK(parse_pth(one_tensor_zip(ok, kFour), "ok.pth").at("w").to_vector() ==
        std::vector<double>{1, 2, 3, 4});
  const std::string past = "reaches past the end of its storage '0' (4 elements)";
  CHECK(contains(error_for({"", "0", "FloatStorage", 4, 0, {10}, {1}}), "tensor 'w' (size [10]"));
  CHECK(contains(error_for({"", "0", "FloatStorage", 4, 0, {10}, {1}}), past));
  CHECK(contains(error_for({"", "0", "FloatStorage", 4, 4, {1}, {1}}), past));      // offset at end
  CHECK(contains(error_for({"", "0", "FloatStorage", 4, 1ll << 62, {1}, {1}}), past));
  CHECK(contains(error_for({"", "0", "FloatStorage", 4, 0, {2, 2}, {3, 1}}), past));
  CHECK(contains(error_for({"", "0", "FloatStorage", 4, 0, {2, 2}, {1, 1ll << 62}}), past));
  // Products that overflow 64 bits.
  CHECK(contains(error_for({"", "0", "FloatStorage", 4, 0, {1ll << 40, 1ll << 40}, {0, 0}}),
                 past));
  CHECK(contains(error_for({"", "0", "FloatStorage", 4, 3, {3, 1ll << 62}, {1ll << 62, 0}}), past));
  // An empty tensor whose other sizes could not be strided in 64 bits.
  CHECK(contains(error_for({"", "0", "FloatStorage", 4, 0, {1ll << 40, 1ll << 40, 0}, {1, 1, 1}}),
                 past));
  // Negative numbers.
  CHECK(contains(error_for({"", "0", "FloatStorage", 4, -1, {1}, {1}}), "offset -1 is negative"));
  CHECK(contains(error_for({"", "0", "FloatStorage", 4, 0, {-1}, {1}}), "size -1 is negative"));
  CHECK(contains(error_for({"", "0", "FloatStorage", 4, 0, {2}, {-1}}), "stride -1 is negative"));
  CHECK(contains(error_for({"", "0", "FloatStorage", 4, 0, {2, 2}, {1}}), "stride [1]"));
  // The storage's entry must hold what its header says.
  CHECK(contains(error_for({"", "0", "FloatStorage", 5, 0, {4}, {1}}),
                 "storage '0' should hold 5 elements of torch.FloatStorage but its entry has 16"));
  CHECK(contains(error_for({"", "0", "DoubleStorage", 4, 0, {4}, {1}}), "its entry has 16"));
  CHECK(contains(error_for({"", "0", "FloatStorage", 1ll << 62, 0, {4}, {1}}), "its entry has 16"));
  // A stride-0 broadcast may not make a small file take unbounded memory.
  CHECK(contains(error_for({"", "0", "FloatStorage", 4, 0, {1ll << 30, 1ll << 20}, {0, 0}}),
                 "would take more than"));
  TensorSpec broadcast{"w", "0", "FloatStorage", 4, 1, {3, 2}, {0, 1}};
  CHECK(parse_pth(one_tensor_zip(broadcast, kFour), "b.pth").at("w").to_vector() ==
        std::vector<double>{2, 3, 2, 3, 2, 3});
  // Legacy: the storage's count and bytes must be there.
  const std::string pickle = state_dict_pickle({ok}, true);
  CHECK(contains(pth_error(pth_legacy(pickle, {{"0", 3, kFour.substr(0, 12)}})),
                 "storage '0' holds 3 elements but the pickle says 4"));
  CHECK(contains(pth_error(pth_legacy(pickle, {{"0", 4, kFour.substr(0, 12)}})),
                 "storage '0' needs 16 bytes but the file has 12 left"));
  CHECK(contains(pth_error(pth_legacy(pickle, {})), "its storage '0' is not in the file"));
  CHECK(contains(pth_error(pth_legacy(pickle, {{"0", 4, kFour + "x"}})), "1 bytes follow"));
}

TEST_CASE("pth: zip archives: missing, compressed, damaged or misplaced entries are refused") {
  const TensorSpec t{"w"};
  const std::string pickle = state_dict_pickle({t}, false);
  CHECK(contains(pth_error(pth_zip(pickle, {})),
                 "storage '0' has no entry 'archive/data/0' in the archive"));
  CHECK(contains(pth_error(zip_stored({{"archive/version", "3\n"}})),
                 "no 'archive/data.pkl': not a torch.save file"));
  CHECK(contains(pth_error(zip_stored({{"data.pkl", pickle}})), "is in no folder"));
  CHECK(contains(pth_error(zip_stored({})), "empty zip archive"));
  CHECK(contains(pth_error(zip_stored({{"a/data.pkl", pickle}, {"a/data.pkl", pickle}})),
                 "entry 'a/data.pkl' appears twice"));
  CHECK(contains(pth_error(zip_stored({{"a/data.pkl", pickle}, {"a/byteorder", "big"}})),
                 "only little-endian"));
  // CRC-32s are not checked, as torch.load does not: files written without them load.
  CHECK(parse_pth(pth_zip(pickle, {{"0", kFour}}, false), "nocrc.pth").at("w").numel() == 4);
  // torch writes every entry stored; a re-zipped (deflated) file is refused, naming the entry.
  const std::string deflated = error_of([] { load_pth(kDir + "dtypes_deflated.pth"); });
  CHECK(contains(deflated, "dtypes_deflated.pth"));
  CHECK(contains(deflated, "is deflate (method 8); prm reads only stored entries"));
  // A local header that names another entry, and a central directory that points nowhere.
  std::string renamed = one_tensor_zip(t, kFour);
  renamed[renamed.find("archive/data/0")] = 'X';
  CHECK(contains(pth_error(renamed), "its local header names another entry"));
  std::string moved = one_tensor_zip(t, kFour);
  moved[moved.size() - 3] = 0x7f;  // the central directory's offset, its highest byte
  CHECK(contains(pth_error(moved), "runs outside the archive"));
  CHECK(contains(pth_error(std::string("PK\3\4", 4) + std::string(40, '\0')),
                 "no end-of-central-directory record"));
}

TEST_CASE("pth: every truncation of a small file is refused cleanly") {
  for (const char* name :
       {"dtypes.pth", "dtypes_legacy.pth", "dtypes_zip64.pth", "dtypes_tar.pth"}) {
    CAPTURE(name);
    std::string bytes = read_file_bytes(kDir + name);
    if (std::string(name) == "dtypes_tar.pth") {  // up to the two zero blocks; padding follows
      const size_t end = tar_end(bytes);
      REQUIRE(end < bytes.size());
      bytes.resize(end);
    }
    REQUIRE(bytes.size() < 20000);
    for (size_t n = 0; n < bytes.size(); ++n) {
      CAPTURE(n);
      const std::string e = pth_error(bytes.substr(0, n));
      CHECK_MESSAGE(contains(e, "bad.pth"), e);
    }
  }
  // Through the file-level sniffing too: a prefix of any length is an error, never a crash.
  const fs::path dir = fresh_temp_dir("pth_cut");
  const std::string bytes = read_file_bytes(kDir + "dtypes_legacy.pth");
  for (size_t n = 0; n < 40; ++n) {
    write_bytes((dir / "cut.pth").string(), bytes.substr(0, n));
    CHECK_THROWS_AS(load_weights_file((dir / "cut.pth").string()), Error);
  }
}

TEST_CASE("pth: legacy files: magic number, protocol, byte order") {
  std::string bytes = read_file_bytes(kDir + "dtypes_legacy.pth");
  std::string bad_magic = bytes;
  bad_magic[6] ^= 0x40;
  CHECK(contains(pth_error(bad_magic), "not torch's magic number"));
  std::string bad_protocol = bytes;
  REQUIRE(bad_protocol.substr(15, 6) == std::string("\x80\x02M\xe9\x03.", 6));
  bad_protocol[18] = '\xe8';  // 1000
  CHECK(contains(pth_error(bad_protocol), "legacy protocol 1000, not 1001"));
  const TensorSpec t{"w"};
  CHECK(contains(pth_error(pth_legacy(state_dict_pickle({t}, true), {{"0", 4, kFour}}, false)),
                 "big-endian"));
  CHECK(contains(pth_error("\x80\x02}."), "not torch's magic number"));
  CHECK(contains(pth_error("not a weights file at all"), "not a torch.save file"));
}

TEST_CASE("pth: Python 2 era legacy pickles (byte strings, OrderedDict of pairs, storage views)") {
  // torch 0.x under Python 2: SHORT_BINSTRING keys, OrderedDict([[key, value], ...]),
  // _rebuild_tensor (4 arguments), a CUDA storage, and a storage view (key, offset, size).
  auto storage = [](Pickle& p) {
    p.mark().py2_text("storage").global("torch.cuda", "FloatStorage").py2_text("9");
    p.py2_text("cuda:0").integer(6);
  };
  Pickle p;
  p.global("collections", "OrderedDict").op(']').mark();
  p.op(']').mark().py2_text("a").global("torch._utils", "_rebuild_tensor").mark();
  storage(p);
  p.op('N').tuple().op('Q').integer(1).ints({2}).ints({2}).tuple().op('R').op('e');
  p.op(']').mark().py2_text("b").global("torch._utils", "_rebuild_tensor").mark();
  storage(p);
  p.mark().py2_text("v").integer(2).integer(3).tuple().tuple().op('Q');
  p.integer(0).ints({3}).ints({1}).tuple().op('R').op('e');
  p.op('e').op(0x85).op('R');
  const std::string six = bytes_of<float>({0, 1, 2, 3, 4, 5});
  const TensorMap m = parse_pth(pth_legacy(p.done(), {{"9", 6, six}}), "py2.pth");
  CHECK(m.at("a").to_vector() == std::vector<double>{1, 3});
  CHECK(m.at("b").to_vector() == std::vector<double>{2, 3, 4});
}

TEST_CASE("pth: tar archives of torch before 0.1.10 (torchvision's first ResNet files)") {
  TarSpec ok;
  ok.bytes = kFour;
  CHECK(parse_pth(pth_tar(ok), "t.pth").at("w").to_vector() == std::vector<double>{1, 2, 3, 4});
  TarSpec view = ok;  // the tensor over a view of the storage's last two elements
  view.views = "](X\x01\x00\x00\x00vX\x01\x00\x00\x00sK\x02K\x02ta"s;
  view.tensor_storage = "v";
  view.size = {2};
  CHECK(parse_pth(pth_tar(view), "t.pth").at("w").to_vector() == std::vector<double>{3, 4});
  auto error_for = [](const TarSpec& t) { return pth_error(pth_tar(t)); };
  TarSpec t = ok;
  t.tensor_type = "LongTensor";
  CHECK(contains(error_for(t), "tensor '1' is a torch.LongTensor over a torch.FloatStorage"));
  t = ok;
  t.tensor_type = "ByteTensor";
  CHECK(contains(error_for(t), "refused: the pickle asks for the global 'torch.ByteTensor'"));
  t = ok;
  t.size = {5};
  CHECK(contains(error_for(t), "tensor 'w' (size [5], stride [1], offset 0) reaches past"));
  t = ok;
  t.numel = 6;
  CHECK(contains(error_for(t), "storage 's' needs 24 bytes but the file has 20 left"));
  t = ok;
  t.views = "](X\x01\x00\x00\x00vX\x01\x00\x00\x00sK\x03K\x02ta"s;
  CHECK(contains(error_for(t), "storage view 'v' (2 elements at 3) runs past its storage 's'"));
  t = ok;
  t.size = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
  t.stride = t.size;
  CHECK(contains(error_for(t), "17 dimensions"));
  std::string archive = pth_tar(ok);
  archive[3] ^= 1;  // a byte of the first member's name: its header no longer sums up
  CHECK(contains(pth_error(archive), "does not match its checksum"));
  CHECK(contains(pth_error(tar_archive({{"pickle", "\x80\x02}."}})),
                 "a tar archive with no 'storages' member"));
  // A persistent id that is not a tensor's key: a module's source, as torch 0.1 could save.
  Pickle module;
  module.empty_ordered_dict().text("w").mark().text("x").text("y").tuple().op('Q').op('s');
  CHECK(contains(pth_error(tar_archive({{"pickle", module.done()},
                                        {"tensors", Pickle().integer(0).done()},
                                        {"storages", Pickle().integer(0).done() + "\x80\x02]."}})),
                 "refused: a persistent id other than a tensor's key"));
}

TEST_CASE("pth: the state_dict itself, or in a dict under state_dict, model_state_dict, model") {
  const TensorSpec t{"w"};
  const std::string sd = state_dict_pickle({t}, false);
  const std::string inner = sd.substr(2, sd.size() - 3);  // the opcodes between PROTO and STOP
  for (const char* key : {"state_dict", "model_state_dict", "model"}) {
    CAPTURE(key);
    Pickle p;
    p.op('}').mark().text("epoch").integer(3).text("best").op('G').raw(std::string(8, '\0'));
    p.text(key).raw(inner).text("opt").op('}').op('u');
    CHECK(parse_pth(pth_zip(p.done(), {{"0", kFour}}), "c.pth").at("w").numel() == 4);
  }
  Pickle other;
  other.op('}').text("epoch").integer(3).op('s');
  CHECK(contains(pth_error(pth_zip(other.done(), {})),
                 "none of the keys state_dict, model_state_dict, model"));
  Pickle list;
  list.op(']');
  CHECK(contains(pth_error(pth_zip(list.done(), {})), "holds a list, not a state_dict"));
  Pickle mixed;  // a state_dict entry that is not a tensor, under "state_dict"
  mixed.op('}').text("state_dict").op('}').text("x").integer(1).op('s').op('s');
  CHECK(contains(pth_error(pth_zip(mixed.done(), {})), "state_dict entry 'x' is an int"));
  Pickle twice;
  twice.empty_ordered_dict().mark().text("w");
  rebuild_tensor(twice, t, false);
  twice.text("w");
  rebuild_tensor(twice, t, false);
  twice.op('u');
  CHECK(contains(pth_error(pth_zip(twice.done(), {{"0", kFour}})), "key 'w' appears twice"));
  // A tensor stored under two names (tied weights) is two tensors here.
  Pickle tied;
  tied.empty_ordered_dict().mark().text("a");
  rebuild_tensor(tied, t, false);
  tied.op('q').raw(le(200, 1)).text("b").op('h').raw(le(200, 1)).op('u');
  const TensorMap m = parse_pth(pth_zip(tied.done(), {{"0", kFour}}), "tied.pth");
  CHECK(m.at("a").to_vector() == m.at("b").to_vector());
}

TEST_CASE("pth: damaged pickles are refused, naming the file") {
  // The opcodes after PROTO 2, as they stand (no STOP is added).
  const std::vector<std::pair<std::string, std::string>> cases = {
      {""s, "ends before its STOP"},
      {"}"s, "ends before its STOP"},
      {"X\xff\xff\xff\x7f"s, "ends in the middle of an opcode"},
      {"a."s, "stack empty"},
      {"}K\x01."s, "2 values and 0 marks"},
      {"t."s, "needs a MARK"},
      {"h\x05."s, "memo slot 5, never set"},
      {"}(K\x01u."s, "a key and no value"},
      {"K\x01K\x02R."s, "REDUCE calls an int"},
      {"]K\x01K\x02s."s, "SETITEM on a list"},
      {"}K\x01" "a."s, "APPEND to a dict"},
      {"]}b."s, "BUILD on a list"},
      {"ccollections\nOrderedDict"s, "no end of line"},
      {"(X\x07\x00\x00\x00storageX\x01\x00\x00\x00xtQ."s, "persistent id has 2 items, not 5"},
      {"(X\x06\x00\x00\x00moduleX\x01\x00\x00\x00xtQ."s, "other than a storage"},
      {"K\x01Q."s, "persistent id that is not a tuple"},
  };
  for (const auto& [ops, message] : cases) {
    CAPTURE(message);
    const std::string e = pth_error(pth_zip("\x80\x02"s + ops, {}));
    CHECK_MESSAGE(contains(e, message), e);
    CHECK(contains(e, "pth: bad.pth: "));
  }
}
