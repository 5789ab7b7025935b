// prm gradcheck: every registered op case, float64 central differences, one line per op with
// its worst error; non-zero exit when any op fails.
#include <cstdio>
#include <map>

#include "args.h"
#include "commands.h"
#include "tensor/allocator.h"
#include "tensor/gradcheck/gradcheck.h"

namespace prm {

int cmd_gradcheck(int argc, char** argv) {
  Args args("gradcheck",
            "Checks each differentiable op's analytic gradient against float64 central finite\n"
            "differences; prints one line per op with the worst relative error.");
  args.optional("op", "check only this op (e.g. conv2d)");
  args.choice("device", kDeviceChoices, "where to run", "cpu");
  args.option("seed", "random seed for the inputs", "1");
  if (!args.parse(argc, argv)) return 0;
  const Device device = args.get_device("device");
  const std::string only = args.has("op") ? args.get("op") : "";

  struct Summary {
    double worst = 0;
    std::string where;
    int cases = 0;
    bool ok = true;
  };
  std::map<std::string, Summary> per_op;
  std::vector<std::string> order;
  std::mt19937_64 rng(static_cast<uint64_t>(args.get_int("seed")));
  for (const GradcheckCase& c : gradcheck_cases()) {
    if (!only.empty() && c.op != only) continue;
    std::vector<Tensor> inputs = inputs_on(c.make_inputs(DType::f64, rng), device);
    GradcheckResult r = gradcheck(c.fn, inputs, c.eps, c.tol);
    if (!per_op.count(c.op)) order.push_back(c.op);
    Summary& s = per_op[c.op];
    ++s.cases;
    s.ok = s.ok && r.ok;
    if (r.max_error >= s.worst) {
      s.worst = r.max_error;
      s.where = c.variant + ": " + r.worst;
    }
  }
  PRM_CHECK(!order.empty(), "no gradcheck case for op '", only, "'");
  int failed = 0;
  for (const std::string& op : order) {
    const Summary& s = per_op[op];
    std::printf("%-24s %-4s cases %-2d worst rel err %.3e  (%s)\n", op.c_str(),
                s.ok ? "ok" : "FAIL", s.cases, s.worst, s.where.c_str());
    failed += !s.ok;
  }
  std::printf("gradcheck on %s: %zu ops, %d failed\n", device_name(device), order.size(), failed);
  return failed ? 1 : 0;
}

}  // namespace prm
