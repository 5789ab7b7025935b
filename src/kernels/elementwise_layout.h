// Host-side helpers that turn shapes into the Strides the strided kernels walk: broadcasting
// strides (0 on broadcast dims) and coalescing of dims that every operand walks contiguously, so
// a same-shape op is one flat loop and [N,C,H,W] op [C,1,1] is a 3-dim walk (N, C, H*W).
#pragma once
#include <vector>

#include "kernels/common.h"
#include "tensor/error.h"

namespace prm {

// Row-major strides of a contiguous tensor of the given sizes.
inline std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& sizes) {
  std::vector<int64_t> strides(sizes.size());
  int64_t step = 1;
  for (size_t d = sizes.size(); d-- > 0;) {
    strides[d] = step;
    step *= sizes[d];
  }
  return strides;
}

// Strides for reading a contiguous tensor of shape `in` while walking the shape `out` it
// broadcasts to (dims aligned at the end; 0 where `in` has size 1 or lacks the dim).
inline std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& in,
                                              const std::vector<int64_t>& out) {
  const std::vector<int64_t> own = contiguous_strides(in);
  std::vector<int64_t> strides(out.size(), 0);
  const size_t lead = out.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d)
    strides[lead + d] = (in[d] == 1 && out[lead + d] != 1) ? 0 : own[d];
  return strides;
}

// One Strides per operand over the common `sizes`: size-1 dims are dropped and a dim is merged
// into the previous one when every operand steps through both as one run.
inline std::vector<Strides> coalesce(const std::vector<int64_t>& sizes,
                                     const std::vector<std::vector<int64_t>>& strides) {
  std::vector<int64_t> merged_sizes;
  std::vector<std::vector<int64_t>> merged(strides.size());
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    bool can_merge = !merged_sizes.empty();
    for (size_t k = 0; k < strides.size() && can_merge; ++k)
      can_merge = merged[k].back() == strides[k][d] * sizes[d];
    if (can_merge) {
      merged_sizes.back() *= sizes[d];
      for (size_t k = 0; k < strides.size(); ++k) merged[k].back() = strides[k][d];
    } else {
      merged_sizes.push_back(sizes[d]);
      for (size_t k = 0; k < strides.size(); ++k) merged[k].push_back(strides[k][d]);
    }
  }
  PRM_CHECK(merged_sizes.size() <= static_cast<size_t>(kMaxDims), "strided kernel: ",
            merged_sizes.size(), " dims after merging, at most ", kMaxDims, " supported");
  std::vector<Strides> out(strides.size());
  for (size_t k = 0; k < strides.size(); ++k) {
    out[k].ndim = static_cast<int>(merged_sizes.size());
    for (size_t d = 0; d < merged_sizes.size(); ++d) {
      out[k].size[d] = merged_sizes[d];
      out[k].stride[d] = merged[k][d];
    }
  }
  return out;
}

}  // namespace prm
