// prm loaderbench: placeholder while the data work lands.
#include "commands.h"
#include "tensor/error.h"

namespace prm {

int cmd_loaderbench(int, char**) { throw Error("prm loaderbench: not implemented yet"); }

}  // namespace prm
