#include "data/labels.h"

#include <algorithm>

namespace prm {

std::vector<int> voc_image_labels(const std::vector<VocObject>& objects, int num_classes) {
  std::vector<int> labels(static_cast<size_t>(std::max(num_classes, 0)), -1);
  for (const VocObject& o : objects)
    if (o.class_id >= 0 && o.class_id < num_classes)
      labels[o.class_id] = std::max(labels[o.class_id], o.difficult ? 0 : 1);
  return labels;
}

}  // namespace prm
