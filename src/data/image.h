// Image files: JPEG/PNG/BMP decoding and JPEG/PNG writing through stb, and our own reader and
// writer of 8-bit indexed (palette) PNGs, whose index values (not colours) carry VOC's
// segmentation labels: 0 background, 1..20 class or instance ids, 255 void. stb_image would
// expand a palette to RGB, so the indexed reader parses the PNG chunks itself and inflates the
// IDAT stream with stb_image's zlib decoder; the writer deflates with stb_image_write's
// compressor and adds the CRCs itself.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace prm {

struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;  // row-major, interleaved (HWC)
  uint8_t* at(int y, int x) { return &pixels[(static_cast<size_t>(y) * width + x) * channels]; }
  const uint8_t* at(int y, int x) const {
    return &pixels[(static_cast<size_t>(y) * width + x) * channels];
  }
};

// The format an image file's first bytes name ("JPEG", "PNG", "GIF", "BMP", "PSD", "HDR", "PNM"),
// or "" (TGA has no magic number). For error messages.
std::string image_format_of(const unsigned char* head, size_t n);

// The largest image load_image decodes by default, in pixels (width x height): 100 megapixels,
// above any camera's; a small file can declare a huge image (a decompression bomb: a 431 KB PNG
// of 20000 x 20000 would take 1.2 GB decoded and more once resized).
constexpr int64_t kDefaultMaxImagePixels = 100'000'000;

// The EXIF orientation tag (1..8) of a JPEG's bytes, or 1 (as stored) when it has none.
int jpeg_exif_orientation(const std::string& bytes);
// The image turned as an EXIF orientation tag says, so that it shows as viewers show it:
// 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90
// counter-clockwise; 1 (or an unknown value) leaves it as it is.
Image apply_orientation(const Image& image, int orientation);

// Decodes any stb-readable file into `channels` channels (3: RGB, 1: grey). Throws prm::Error
// naming the file when it is missing, unreadable, truncated, or larger than max_pixels (checked
// from the header, before decoding).
Image load_image(const std::string& path, int channels = 3,
                 int64_t max_pixels = kDefaultMaxImagePixels);
void save_jpeg(const std::string& path, const Image& image, int quality = 90);
void save_png(const std::string& path, const Image& image);

struct IndexedImage {
  int width = 0, height = 0;
  std::vector<uint8_t> index;    // one byte per pixel
  std::vector<uint8_t> palette;  // 3 * entries (empty for a greyscale file)
};

// Reads an 8-bit indexed (colour type 3) or 8-bit greyscale (colour type 0) PNG and returns the
// raw index / grey values. Bit depths 1/2/4 of indexed images are unpacked. Throws prm::Error
// naming the file for anything else (wrong type, bad CRC, truncated data, interlacing).
IndexedImage read_indexed_png(const std::string& path);
IndexedImage decode_indexed_png(const uint8_t* data, size_t size, const std::string& source);
// Writes an 8-bit indexed PNG with the given palette (3 * 256 bytes).
void write_indexed_png(const std::string& path, const IndexedImage& image);

// The PASCAL VOC colour map (bit-interleaved: index 1 is (128,0,0), 255 is (224,224,192)).
std::array<uint8_t, 768> voc_palette();

}  // namespace prm
