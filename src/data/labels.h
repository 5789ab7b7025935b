// Image-level labels: which objects make an image positive for a class (docs/evaluation.md).
// One rule for training, validation, evaluation and the synthetic set's per-class lists.
#pragma once
#include <vector>

#include "data/voc.h"

namespace prm {

// VOC's per-class label of an image from its objects: 1 when it has an object of the class that
// is not difficult, 0 when all its objects of the class are difficult (VOC's "difficult only",
// ignored by the classification AP), -1 when it has none. Objects whose class lies outside
// [0, num_classes) are not counted.
std::vector<int> voc_image_labels(const std::vector<VocObject>& objects, int num_classes);

// Training's 0/1 target of a label: difficult objects count as positives (the paper's training),
// unless exclude_difficult.
inline float training_target(int label, bool exclude_difficult) {
  return label >= (exclude_difficult ? 1 : 0) ? 1.0f : 0.0f;
}

}  // namespace prm
