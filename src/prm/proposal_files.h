// Segment proposals from files, so that users with MCG or COB proposals can reproduce the paper:
//   - a NumPy .npy of dtype uint8 (or bool) and shape [P, H, W] (a 2-D [H, W] file is one mask),
//     C order; non-zero = on;
//   - a folder of PNG masks, one file per proposal, read in file-name order; non-zero = on.
//     Palette and 8-bit grey PNGs are read by index / grey value (so a palette whose entry 0 is
//     not black still means "off"); other PNGs (RGB, 16-bit, 1-bit grey) through stb as grey.
// Per image, load_proposals looks for ROOT/<image_id>.npy, then ROOT/<image_id>/*.png.
// Defined results: a [0, H, W] file or a folder without PNG files gives no proposals (an empty
// vector). Errors (prm::Error, one line naming the file): unreadable, empty or malformed file,
// a wrong dtype, masks whose size differs from the image's, no proposals at all for an image
// (neither the .npy nor the folder exists). All-zero masks are kept as they are, in order.
#pragma once
#include <string>
#include <vector>

#include "prm/mask.h"

namespace prm {

// height/width < 0: accept any size (all masks of a file share one size anyway).
std::vector<Mask> load_proposals_npy(const std::string& path, int height = -1, int width = -1);
std::vector<Mask> load_proposals_png_dir(const std::string& dir, int height = -1, int width = -1);
std::vector<Mask> load_proposals(const std::string& root, const std::string& image_id, int height,
                                 int width);

// Writes masks (all of one size) as uint8 [P, H, W]; H and W are needed when masks is empty.
void save_proposals_npy(const std::string& path, const std::vector<Mask>& masks, int height,
                        int width);
// Writes DIR/000.png, 001.png, ... as 8-bit grey PNGs (0 / 255); creates DIR.
void save_proposals_png_dir(const std::string& dir, const std::vector<Mask>& masks);

}  // namespace prm
