// Gradient-check cases for the elementwise ops.
#include "tensor/gradcheck/gradcheck.h"

namespace prm {

void add_elementwise_cases(std::vector<GradcheckCase>& /*cases*/) {}

}  // namespace prm
