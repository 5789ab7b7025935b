#include "prm/proposal_files.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "data/image.h"
#include "tensor/error.h"

namespace prm {

namespace fs = std::filesystem;

namespace {

// Our own whole-file read and temp-file-then-rename write (the shared ones in data/ are being
// reorganised; these few lines keep proposals independent of that).
std::string read_bytes(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  PRM_CHECK(in.good(), what, " ", path, ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  PRM_CHECK(!in.bad(), what, " ", path, ": read error");
  return ss.str();
}

void write_bytes_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp" + std::to_string(std::hash<std::string>{}(bytes));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    PRM_CHECK(out.good(), "cannot write ", tmp);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    PRM_CHECK(out.good(), "cannot write ", tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  PRM_CHECK(!ec, "cannot rename ", tmp, " to ", path, ": ", ec.message());
}

// The value of `key` in a .npy header dict, as raw text up to the next top-level ',' or '}'.
std::string header_value(const std::string& header, const std::string& key,
                         const std::string& path) {
  size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) k = header.find("\"" + key + "\"");
  PRM_CHECK(k != std::string::npos, "proposals file ", path, ": .npy header has no '", key, "'");
  size_t p = header.find(':', k);
  PRM_CHECK(p != std::string::npos, "proposals file ", path, ": malformed .npy header");
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  size_t end = p;
  int depth = 0;
  while (end < header.size() && (depth > 0 || (header[end] != ',' && header[end] != '}'))) {
    depth += header[end] == '(';
    depth -= header[end] == ')';
    ++end;
  }
  return header.substr(p, end - p);
}

std::vector<int64_t> parse_shape(const std::string& text, const std::string& path) {
  PRM_CHECK(text.size() >= 2 && text.front() == '(' && text.back() == ')', "proposals file ", path,
            ": bad shape ", text);
  std::vector<int64_t> shape;
  size_t p = 1;
  while (p < text.size() - 1) {
    while (p < text.size() - 1 && (text[p] == ' ' || text[p] == ',')) ++p;
    if (p >= text.size() - 1) break;
    PRM_CHECK(std::isdigit(static_cast<unsigned char>(text[p])), "proposals file ", path,
              ": bad shape ", text);
    int64_t v = 0;
    while (p < text.size() - 1 && std::isdigit(static_cast<unsigned char>(text[p]))) {
      v = v * 10 + (text[p++] - '0');
      PRM_CHECK(v < (int64_t(1) << 40), "proposals file ", path, ": bad shape ", text);
    }
    shape.push_back(v);
  }
  return shape;
}

void check_size(const std::string& path, int h, int w, int height, int width) {
  PRM_CHECK((height < 0 || h == height) && (width < 0 || w == width), "proposals file ", path,
            ": masks are ", h, "x", w, " (HxW), the image is ", height, "x", width);
}

Mask read_png_mask(const std::string& path) {
  const std::string bytes = read_bytes(path, "proposal mask");
  PRM_CHECK(!bytes.empty(), "proposal mask ", path, ": empty file");
  static const char kSignature[] = "\x89PNG\r\n\x1a\n";
  const auto* u = reinterpret_cast<const uint8_t*>(bytes.data());
  Mask m;
  const bool png = bytes.size() >= 26 && std::memcmp(bytes.data(), kSignature, 8) == 0;
  if (png && (u[25] == 3 || (u[25] == 0 && u[24] == 8))) {  // IHDR colour type / bit depth
    const IndexedImage img = decode_indexed_png(u, bytes.size(), path);
    m = Mask(img.height, img.width);
    for (size_t i = 0; i < m.data.size(); ++i) m.data[i] = img.index[i] != 0;
  } else {
    const Image img = load_image(path, 1);
    m = Mask(img.height, img.width);
    for (size_t i = 0; i < m.data.size(); ++i) m.data[i] = img.pixels[i] != 0;
  }
  return m;
}

}  // namespace

std::vector<Mask> load_proposals_npy(const std::string& path, int height, int width) {
  const std::string bytes = read_bytes(path, "proposals file");
  PRM_CHECK(!bytes.empty(), "proposals file ", path, ": empty file");
  PRM_CHECK(bytes.size() >= 10 && bytes.compare(0, 6, "\x93NUMPY") == 0, "proposals file ", path,
            ": not a .npy file");
  const int major = static_cast<uint8_t>(bytes[6]);
  PRM_CHECK(major >= 1 && major <= 3, "proposals file ", path, ": unsupported .npy version ",
            major);
  const auto* u = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t header_len = 0, start = 0;
  if (major == 1) {
    header_len = u[8] | (size_t(u[9]) << 8);
    start = 10;
  } else {
    PRM_CHECK(bytes.size() >= 12, "proposals file ", path, ": truncated .npy header");
    header_len = u[8] | (size_t(u[9]) << 8) | (size_t(u[10]) << 16) | (size_t(u[11]) << 24);
    start = 12;
  }
  PRM_CHECK(start + header_len <= bytes.size(), "proposals file ", path, ": truncated .npy header");
  const std::string header = bytes.substr(start, header_len);
  const std::string descr = header_value(header, "descr", path);
  PRM_CHECK(descr == "'|u1'" || descr == "'<u1'" || descr == "'>u1'" || descr == "'|b1'",
            "proposals file ", path, ": dtype ", descr, ", expected uint8 ('|u1') or bool");
  PRM_CHECK(header_value(header, "fortran_order", path) == "False", "proposals file ", path,
            ": Fortran order is not supported");
  std::vector<int64_t> shape = parse_shape(header_value(header, "shape", path), path);
  if (shape.size() == 2) shape.insert(shape.begin(), 1);
  PRM_CHECK(shape.size() == 3, "proposals file ", path, ": shape has ", shape.size(),
            " dimensions, expected [P, H, W]");
  const int64_t P = shape[0], H = shape[1], W = shape[2];
  PRM_CHECK(P < (1 << 20) && H < (1 << 20) && W < (1 << 20) && (P == 0 || (H > 0 && W > 0)),
            "proposals file ", path, ": bad shape [", P, ", ", H, ", ", W, "]");
  const size_t data = start + header_len;
  PRM_CHECK(bytes.size() - data == static_cast<size_t>(P * H * W), "proposals file ", path, ": ",
            bytes.size() - data, " data bytes, the shape [", P, ", ", H, ", ", W, "] needs ",
            P * H * W);
  if (P > 0) check_size(path, static_cast<int>(H), static_cast<int>(W), height, width);
  // One mask at a time (never a prototype mask to copy): with P = 0 the header may name any
  // H x W (up to 2^40 bytes) that no data backs.
  std::vector<Mask> masks;
  masks.reserve(static_cast<size_t>(P));
  for (int64_t p = 0; p < P; ++p) {
    masks.emplace_back(static_cast<int>(H), static_cast<int>(W));
    const uint8_t* src = u + data + p * H * W;
    for (int64_t i = 0; i < H * W; ++i) masks[p].data[i] = src[i] != 0;
  }
  return masks;
}

std::vector<Mask> load_proposals_png_dir(const std::string& dir, int height, int width) {
  PRM_CHECK(fs::is_directory(dir), "proposals folder ", dir, ": not a directory");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (ext == ".png") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  std::vector<Mask> masks;
  for (const std::string& f : files) {
    masks.push_back(read_png_mask(f));
    check_size(f, masks.back().height, masks.back().width, height, width);
  }
  return masks;
}

std::vector<Mask> load_proposals(const std::string& root, const std::string& image_id, int height,
                                 int width) {
  const fs::path npy = fs::path(root) / (image_id + ".npy");
  if (fs::exists(npy)) return load_proposals_npy(npy.string(), height, width);
  const fs::path dir = fs::path(root) / image_id;
  PRM_CHECK(fs::is_directory(dir), "proposals for image ", image_id, ": neither ", npy.string(),
            " nor the folder ", dir.string(), " exists");
  return load_proposals_png_dir(dir.string(), height, width);
}

void save_proposals_npy(const std::string& path, const std::vector<Mask>& masks, int height,
                        int width) {
  for (const Mask& m : masks)
    PRM_CHECK(m.height == height && m.width == width, "save_proposals_npy ", path, ": a mask is ",
              m.height, "x", m.width, ", expected ", height, "x", width);
  std::string header = str_cat("{'descr': '|u1', 'fortran_order': False, 'shape': (", masks.size(),
                               ", ", height, ", ", width, "), }");
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xFF);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  for (const Mask& m : masks)
    for (uint8_t v : m.data) bytes += static_cast<char>(v != 0);
  write_bytes_atomic(path, bytes);
}

void save_proposals_png_dir(const std::string& dir, const std::vector<Mask>& masks) {
  fs::create_directories(dir);
  for (size_t i = 0; i < masks.size(); ++i) {
    Image img;
    img.height = masks[i].height;
    img.width = masks[i].width;
    img.channels = 1;
    img.pixels.resize(masks[i].data.size());
    for (size_t p = 0; p < img.pixels.size(); ++p) img.pixels[p] = masks[i].data[p] ? 255 : 0;
    char name[32];
    std::snprintf(name, sizeof(name), "%03zu.png", i);
    save_png((fs::path(dir) / name).string(), img);
  }
}

}  // namespace prm
