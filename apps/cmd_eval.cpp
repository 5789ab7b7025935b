// prm eval: placeholder while the data work lands.
#include "commands.h"
#include "tensor/error.h"

namespace prm {

int cmd_eval(int, char**) { throw Error("prm eval: not implemented yet"); }

}  // namespace prm
