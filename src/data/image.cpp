// The one translation unit that compiles stb_image and stb_image_write.
#include "data/image.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <memory>

#include "data/files.h"
#include "tensor/error.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#endif
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#include <stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace prm {

std::string image_format_of(const unsigned char* head, size_t n) {
  auto starts = [&](std::initializer_list<int> magic) {
    if (n < magic.size()) return false;
    size_t i = 0;
    for (int m : magic)
      if (head[i++] != m) return false;
    return true;
  };
  if (starts({0xFF, 0xD8, 0xFF})) return "JPEG";
  if (starts({0x89, 'P', 'N', 'G'})) return "PNG";
  if (starts({'G', 'I', 'F', '8'})) return "GIF";
  if (starts({'B', 'M'})) return "BMP";
  if (starts({'8', 'B', 'P', 'S'})) return "PSD";
  if (starts({'#', '?'})) return "HDR";
  if (n >= 2 && head[0] == 'P' && head[1] >= '1' && head[1] <= '6') return "PNM";
  return "";
}

Image load_image(const std::string& path, int channels, int64_t max_pixels) {
  PRM_CHECK(channels >= 1 && channels <= 4, "load_image: channels must be 1..4, got ", channels);
  FILE* f = std::fopen(path.c_str(), "rb");
  PRM_CHECK(f != nullptr, path, ": cannot open image file");
  int w = 0, h = 0, n = 0;
  if (stbi_info_from_file(f, &w, &h, &n) &&
      static_cast<int64_t>(w) * static_cast<int64_t>(h) > max_pixels) {
    std::fclose(f);
    throw Error(str_cat(path, ": ", w, "x", h, " is ", static_cast<int64_t>(w) * h,
                        " pixels, more than the limit of ", max_pixels,
                        " (--max-pixels raises it)"));
  }
  // stbi_failure_reason() is a thread-local string in stb when STBI_THREAD_LOCAL is available.
  uint8_t* data = stbi_load_from_file(f, &w, &h, &n, channels);
  if (data == nullptr) {
    // stb tries each decoder in turn and reports the last one's complaint ("Not a PNG" for a cut
    // JPEG): name the format by the file's first bytes instead, then stb's reason.
    const std::string reason = stbi_failure_reason() ? stbi_failure_reason() : "unknown";
    unsigned char head[8] = {};
    std::rewind(f);
    const size_t got = std::fread(head, 1, sizeof head, f);
    std::fclose(f);
    PRM_CHECK(got > 0, path, ": empty file, not an image");
    const std::string format = image_format_of(head, got);
    if (!format.empty())
      throw Error(str_cat(path, ": cannot decode this ", format, " image (truncated or corrupt; ",
                          "the decoder says: ", reason, ")"));
    throw Error(str_cat(path, ": not an image format prm reads (JPEG, PNG, BMP, GIF, TGA, PSD, ",
                        "PNM, HDR) by its first bytes (the decoder says: ", reason, ")"));
  }
  std::fclose(f);
  Image img;
  img.width = w;
  img.height = h;
  img.channels = channels;
  img.pixels.assign(data, data + static_cast<size_t>(w) * h * channels);
  stbi_image_free(data);
  return img;
}

int jpeg_exif_orientation(const std::string& b) {
  auto u16 = [&](size_t at, bool big) -> uint32_t {
    if (at + 2 > b.size()) return 0;
    const uint32_t x = static_cast<uint8_t>(b[at]), y = static_cast<uint8_t>(b[at + 1]);
    return big ? (x << 8) | y : (y << 8) | x;
  };
  auto u32 = [&](size_t at, bool big) -> uint32_t {
    return big ? (u16(at, true) << 16) | u16(at + 2, true)
               : (u16(at + 2, false) << 16) | u16(at, false);
  };
  if (b.size() < 4 || static_cast<uint8_t>(b[0]) != 0xFF || static_cast<uint8_t>(b[1]) != 0xD8)
    return 1;
  // Markers after SOI until the image data: APP1 "Exif\0\0" holds a TIFF header and IFD0.
  for (size_t at = 2; at + 4 <= b.size() && static_cast<uint8_t>(b[at]) == 0xFF;) {
    const uint8_t marker = static_cast<uint8_t>(b[at + 1]);
    const size_t length = u16(at + 2, true);
    if (marker == 0xDA || length < 2) break;  // start of scan: no more metadata
    const size_t body = at + 4;
    if (marker == 0xE1 && body + 14 <= b.size() &&
        b.compare(body, 6, std::string("Exif\0\0", 6)) == 0) {
      const size_t tiff = body + 6;
      const bool big = b[tiff] == 'M';
      const size_t ifd = tiff + u32(tiff + 4, big);
      const uint32_t entries = u16(ifd, big);
      for (uint32_t k = 0; k < entries; ++k) {
        const size_t e = ifd + 2 + 12 * static_cast<size_t>(k);
        if (e + 12 > b.size()) break;
        if (u16(e, big) == 0x0112) {
          const uint32_t v = u16(e + 8, big);
          return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
        }
      }
      return 1;
    }
    at = body - 2 + length;
  }
  return 1;
}

Image apply_orientation(const Image& in, int orientation) {
  if (orientation < 2 || orientation > 8) return in;
  const bool swap = orientation >= 5;  // 5..8 turn the image by a quarter
  Image out;
  out.width = swap ? in.height : in.width;
  out.height = swap ? in.width : in.height;
  out.channels = in.channels;
  out.pixels.resize(in.pixels.size());
  const int W = in.width, H = in.height, C = in.channels;
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;  // the stored pixel shown at (x, y)
      switch (orientation) {
        case 2: sx = W - 1 - x; break;
        case 3: sx = W - 1 - x; sy = H - 1 - y; break;
        case 4: sy = H - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = H - 1 - x; break;
        case 7: sx = W - 1 - y; sy = H - 1 - x; break;
        case 8: sx = W - 1 - y; sy = x; break;
      }
      std::copy_n(in.at(sy, sx), C, out.at(y, x));
    }
  return out;
}

void save_jpeg(const std::string& path, const Image& image, int quality) {
  PRM_CHECK(stbi_write_jpg(path.c_str(), image.width, image.height, image.channels,
                           image.pixels.data(), quality) != 0,
            path, ": cannot write JPEG");
}

void save_png(const std::string& path, const Image& image) {
  PRM_CHECK(stbi_write_png(path.c_str(), image.width, image.height, image.channels,
                           image.pixels.data(), image.width * image.channels) != 0,
            path, ": cannot write PNG");
}

std::array<uint8_t, 768> voc_palette() {
  std::array<uint8_t, 768> pal{};
  for (int i = 0; i < 256; ++i) {
    int r = 0, g = 0, b = 0, c = i;
    for (int j = 0; j < 8; ++j) {
      r |= ((c >> 0) & 1) << (7 - j);
      g |= ((c >> 1) & 1) << (7 - j);
      b |= ((c >> 2) & 1) << (7 - j);
      c >>= 3;
    }
    pal[3 * i] = static_cast<uint8_t>(r);
    pal[3 * i + 1] = static_cast<uint8_t>(g);
    pal[3 * i + 2] = static_cast<uint8_t>(b);
  }
  return pal;
}

namespace {

const uint8_t kPngSignature[8] = {137, 80, 78, 71, 13, 10, 26, 10};

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0) {
  static uint32_t table[256];
  static const bool init = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return true;
  }();
  (void)init;
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

void put_be32(std::string& out, uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}

int paeth(int a, int b, int c) {
  int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
}

}  // namespace

IndexedImage decode_indexed_png(const uint8_t* data, size_t size, const std::string& source) {
  PRM_CHECK(size >= 8 && std::memcmp(data, kPngSignature, 8) == 0, source, ": not a PNG file");
  size_t pos = 8;
  int width = 0, height = 0, depth = 0, color = -1;
  std::string idat;
  IndexedImage img;
  bool seen_end = false;
  while (!seen_end) {
    PRM_CHECK(pos + 12 <= size, source, ": truncated PNG (chunk header)");
    const uint32_t len = be32(data + pos);
    PRM_CHECK(len <= size - pos - 12, source, ": truncated PNG (chunk of ", len, " bytes)");
    const uint8_t* type = data + pos + 4;
    const uint8_t* body = data + pos + 8;
    PRM_CHECK(crc32(type, len + 4) == be32(body + len), source, ": PNG chunk '",
              std::string(reinterpret_cast<const char*>(type), 4), "' has a bad CRC");
    if (!std::memcmp(type, "IHDR", 4)) {
      PRM_CHECK(len == 13, source, ": bad IHDR");
      width = static_cast<int>(be32(body));
      height = static_cast<int>(be32(body + 4));
      depth = body[8];
      color = body[9];
      PRM_CHECK(width > 0 && height > 0 && width <= 1 << 15 && height <= 1 << 15, source,
                ": bad PNG size ", width, "x", height);
      PRM_CHECK(color == 3 || (color == 0 && depth == 8), source,
                ": expected an 8-bit indexed or greyscale PNG, got colour type ", color, " depth ",
                depth);
      PRM_CHECK(depth == 1 || depth == 2 || depth == 4 || depth == 8, source, ": bit depth ",
                depth);
      PRM_CHECK(body[12] == 0, source, ": interlaced PNGs are not supported");
    } else if (!std::memcmp(type, "PLTE", 4)) {
      PRM_CHECK(len % 3 == 0 && len <= 768, source, ": bad PLTE chunk");
      img.palette.assign(body, body + len);
    } else if (!std::memcmp(type, "IDAT", 4)) {
      idat.append(reinterpret_cast<const char*>(body), len);
    } else if (!std::memcmp(type, "IEND", 4)) {
      seen_end = true;
    }
    pos += 12 + len;
  }
  PRM_CHECK(width > 0, source, ": PNG without IHDR");
  PRM_CHECK(!idat.empty(), source, ": PNG without image data");
  const size_t row_bytes = (static_cast<size_t>(width) * depth + 7) / 8;
  const size_t expect = (row_bytes + 1) * height;
  int raw_len = 0;
  char* raw = stbi_zlib_decode_malloc_guesssize_headerflag(
      idat.data(), static_cast<int>(idat.size()), static_cast<int>(expect), &raw_len, 1);
  PRM_CHECK(raw != nullptr, source, ": corrupt PNG image data (", stbi_failure_reason(), ")");
  std::unique_ptr<char, void (*)(void*)> raw_owner(raw, stbi_image_free);
  PRM_CHECK(static_cast<size_t>(raw_len) >= expect, source, ": truncated PNG image data (", raw_len,
            " of ", expect, " bytes)");

  // Undo the per-row filters (bytes per pixel is 1 for every format accepted here).
  std::vector<uint8_t> prev(row_bytes, 0), cur(row_bytes);
  img.width = width;
  img.height = height;
  img.index.resize(static_cast<size_t>(width) * height);
  const uint8_t* src = reinterpret_cast<const uint8_t*>(raw);
  for (int y = 0; y < height; ++y) {
    const uint8_t filter = *src++;
    PRM_CHECK(filter <= 4, source, ": bad PNG filter type ", int(filter), " on row ", y);
    for (size_t i = 0; i < row_bytes; ++i) {
      const int a = i ? cur[i - 1] : 0, b = prev[i], c = i ? prev[i - 1] : 0;
      const int pred = filter == 0   ? 0
                       : filter == 1 ? a
                       : filter == 2 ? b
                       : filter == 3 ? (a + b) / 2
                                     : paeth(a, b, c);
      cur[i] = static_cast<uint8_t>(src[i] + pred);
    }
    src += row_bytes;
    uint8_t* out = &img.index[static_cast<size_t>(y) * width];
    const int per_byte = 8 / depth, mask = (1 << depth) - 1;
    for (int x = 0; x < width; ++x) {
      if (depth == 8) {
        out[x] = cur[x];
      } else {
        const int shift = 8 - depth * (x % per_byte + 1);
        out[x] = static_cast<uint8_t>((cur[x / per_byte] >> shift) & mask);
      }
    }
    std::swap(prev, cur);
  }
  return img;
}

IndexedImage read_indexed_png(const std::string& path) {
  const std::string bytes = read_file_bytes(path);
  return decode_indexed_png(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

void write_indexed_png(const std::string& path, const IndexedImage& image) {
  PRM_CHECK(image.width > 0 && image.height > 0 &&
                image.index.size() == static_cast<size_t>(image.width) * image.height,
            path, ": write_indexed_png: bad image size ", image.width, "x", image.height);
  PRM_CHECK(!image.palette.empty() && image.palette.size() % 3 == 0 && image.palette.size() <= 768,
            path, ": write_indexed_png: palette must hold 1..256 RGB entries");
  // Filter type 0 on every row: label maps are mostly flat runs, which deflate handles well.
  std::vector<uint8_t> filtered;
  filtered.reserve((static_cast<size_t>(image.width) + 1) * image.height);
  for (int y = 0; y < image.height; ++y) {
    filtered.push_back(0);
    const uint8_t* row = &image.index[static_cast<size_t>(y) * image.width];
    filtered.insert(filtered.end(), row, row + image.width);
  }
  int zlen = 0;
  unsigned char* z =
      stbi_zlib_compress(filtered.data(), static_cast<int>(filtered.size()), &zlen, 8);
  PRM_CHECK(z != nullptr, path, ": deflate failed");
  std::string out(reinterpret_cast<const char*>(kPngSignature), 8);
  auto chunk = [&out](const char* type, const uint8_t* body, size_t len) {
    put_be32(out, static_cast<uint32_t>(len));
    std::string typed(type, 4);
    if (len) typed.append(reinterpret_cast<const char*>(body), len);
    out += typed;
    put_be32(out, crc32(reinterpret_cast<const uint8_t*>(typed.data()), typed.size()));
  };
  uint8_t ihdr[13] = {};
  for (int i = 0; i < 4; ++i) {
    ihdr[i] = static_cast<uint8_t>(image.width >> (24 - 8 * i));
    ihdr[4 + i] = static_cast<uint8_t>(image.height >> (24 - 8 * i));
  }
  ihdr[8] = 8;  // bit depth
  ihdr[9] = 3;  // colour type: indexed
  chunk("IHDR", ihdr, 13);
  chunk("PLTE", image.palette.data(), image.palette.size());
  chunk("IDAT", z, static_cast<size_t>(zlen));
  STBIW_FREE(z);
  chunk("IEND", nullptr, 0);
  std::ofstream f(path, std::ios::binary);
  PRM_CHECK(f.good(), path, ": cannot create file");
  f.write(out.data(), static_cast<std::streamsize>(out.size()));
  PRM_CHECK(f.good(), path, ": write failed");
}

}  // namespace prm
