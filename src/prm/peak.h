// A peak of the upsampled class response maps (docs/prm.md step 2), the one type every stage of
// PRM passes peaks around in: image b, class c, row y, column x on the upsampled grid, and the
// map's value there. Files hold peaks as int64 [K, 4] rows (b, c, y, x): peak_rows and
// peaks_from_rows convert at that edge.
#pragma once
#include <cstdint>
#include <vector>

namespace prm {

struct Peak {
  int64_t b = 0, c = 0, y = 0, x = 0;
  double value = 0;
};

inline std::vector<int64_t> peak_rows(const std::vector<Peak>& peaks) {
  std::vector<int64_t> rows;
  rows.reserve(peaks.size() * 4);
  for (const Peak& p : peaks) rows.insert(rows.end(), {p.b, p.c, p.y, p.x});
  return rows;
}

// Values are unknown in a [K, 4] file: they come back as 0.
inline std::vector<Peak> peaks_from_rows(const int64_t* rows, int64_t K) {
  std::vector<Peak> peaks(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k)
    peaks[k] = Peak{rows[4 * k], rows[4 * k + 1], rows[4 * k + 2], rows[4 * k + 3], 0.0};
  return peaks;
}

}  // namespace prm
