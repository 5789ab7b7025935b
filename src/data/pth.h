// PyTorch's torch.save files, read without Python (docs/weights.md):
//   zip format (torch >= 1.6): a zip archive of stored entries <archive>/data.pkl (the pickled
//     object), <archive>/data/<key> (each storage's bytes), <archive>/version and, from newer
//     torch, <archive>/byteorder; <archive> is whatever folder name the first entry has;
//   legacy format (torch 0.1.10 to 1.5): five pickles in a row, the magic number
//     0x1950a86a20f9469cfc6c, the protocol version 1001, the system info, the object, the sorted
//     list of storage keys; then, for each key, the storage's element count (int64) and its bytes;
//   tar format (torch before 0.1.10, early 2017: torchvision's first ResNet files): a tar archive
//     (data/tar.h) of sys_info, pickle (the object, tensors referred to by key), tensors (each
//     tensor's storage, sizes, strides and offset) and storages (their bytes, then storage views).
// All hold a pickle, read by data/pickle.h's restricted unpickler with this allow-list of
// globals, and nothing else (the tar format's tensor records may also name the tensor classes,
// torch.FloatTensor and the like, as type tags that are never called):
//   collections.OrderedDict                                  the state_dict container
//   torch._utils._rebuild_tensor_v2, torch._utils._rebuild_tensor   a tensor: storage, offset,
//                                                                    sizes, strides
//   torch._utils._rebuild_parameter                          an nn.Parameter (its tensor)
//   torch.{Float,Double,Half,BFloat16,Long}Storage and the torch.cuda.* ones: the element type
// Tensors come out as float32 (Float; Half and BFloat16 converted exactly, as the safetensors
// reader does), float64 (Double) or int64 (Long), contiguous, on the CPU: views at a storage
// offset, with any non-negative strides, and several tensors sharing a storage are gathered
// element by element. Every offset, size and stride is checked against the storage's bytes,
// with overflow-safe arithmetic, before anything is copied; storages must be as long as their
// header says; all tensors together may take at most 4x the file's size plus 16 MiB (a small file
// cannot ask for unbounded memory by repeating a storage or broadcasting it with stride 0).
//
// The object may be the state_dict itself (an OrderedDict or dict of tensors), or a dict that
// holds it under one of the keys `state_dict`, `model_state_dict`, `model` (looked up in that
// order; a checkpoint's other entries, optimizer state included, are ignored).
//
// Any other global, opcode or structure is refused: prm::Error, one line naming the file and what
// was refused; nothing is executed and nothing is returned half-loaded.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "tensor/tensor_map.h"

namespace prm {

// By content, not name: a zip archive ("PK\3\4", or "PK\5\6" for an empty one).
bool is_pth_zip(std::string_view bytes);
// By content: a pickle's PROTO opcode (0x80, protocol 2 to 5), which a .safetensors file (an
// 8-byte length, then '{') cannot also be.
bool is_pth_legacy(std::string_view bytes);
// By content: a tar archive ("ustar" at byte 257), torch's oldest format.
bool is_pth_tar(std::string_view bytes);

// The state_dict of a torch.save file in memory (any of the three formats); `name` (usually the
// path) starts every error message.
TensorMap parse_pth(std::string_view bytes, const std::string& name);
TensorMap load_pth(const std::string& path);

// The globals a pickle may name (the allow-list above), in that order.
const std::vector<std::string>& pth_allowed_globals();

}  // namespace prm
