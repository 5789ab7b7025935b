// prm graph: the autograd graph of one training step, for study. Builds the step (forward in
// training mode, class scores, multilabel soft-margin loss), runs backward with an observer, and
// prints every node in the order backward runs it: the op, its input and output shapes, the named
// backward function the node calls, and the norm of the gradient that flowed into its output.
// --dot FILE also writes the graph as Graphviz DOT (`dot -Tsvg FILE > graph.svg`).
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "data/files.h"
#include "layers/resnet.h"
#include "tensor/autograd.h"
#include "tensor/ops.h"

namespace prm {

namespace {

struct GraphRow {
  const Node* node = nullptr;
  std::string op, backward_name;
  std::vector<Shape> input_shapes;
  Shape output_shape;
  double grad_norm = 0;
  std::vector<const Node*> producers;    // grad_fn of each input (null for a leaf)
  std::vector<std::string> leaf_names;   // the parameter name of each leaf input, or ""
};

double l2_norm(const Tensor& g) {
  double sum = 0;
  for (double v : g.to_vector()) sum += v * v;
  return std::sqrt(sum);
}

std::string shapes_str(const std::vector<Shape>& shapes) {
  std::string s;
  for (size_t i = 0; i < shapes.size(); ++i) s += (i ? " " : "") + shape_str(shapes[i]);
  return s;
}

std::string dot_escape(const std::string& s) {
  std::string out;
  for (char c : s) out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  return out;
}

std::string to_dot(const std::vector<GraphRow>& rows) {
  std::map<const Node*, size_t> id;
  for (size_t i = 0; i < rows.size(); ++i) id[rows[i].node] = i;
  std::ostringstream os;
  os << "digraph backward {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const GraphRow& r = rows[i];
    os << "  n" << i << " [label=\"" << i << ": " << dot_escape(r.op) << "\\n"
       << dot_escape(r.backward_name) << "\\nout " << shape_str(r.output_shape) << "\\n|g| "
       << r.grad_norm << "\"];\n";
  }
  size_t leaves = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t k = 0; k < rows[i].producers.size(); ++k) {
      auto found = id.find(rows[i].producers[k]);
      if (found != id.end()) {
        os << "  n" << i << " -> n" << found->second << ";\n";  // gradient flows to the input
      } else if (!rows[i].leaf_names[k].empty()) {
        os << "  p" << leaves << " [shape=ellipse, label=\"" << dot_escape(rows[i].leaf_names[k])
           << "\"];\n  n" << i << " -> p" << leaves << ";\n";
        ++leaves;
      }
    }
  }
  os << "}\n";
  return os.str();
}

}  // namespace

int cmd_graph(int argc, char** argv) {
  Args args("graph",
            "Builds one training step of a ResNet (forward in training mode, class scores as the\n"
            "spatial mean of the class response maps, multilabel soft-margin loss), runs\n"
            "backward, and prints the autograd graph in the order backward runs it: node, op,\n"
            "input and output shapes, the named backward function it calls, and the norm of\n"
            "the gradient that flowed into its output.");
  args.choice("arch", kArchChoices, "the network", "resnet18");
  args.option("size", "input height and width", "64");
  args.option("batch", "batch size", "2");
  args.option("width", "stem width (64 for the real networks)", "64");
  args.option("classes", "number of classes", "20");
  args.choice("device", kDeviceChoices, "where to run", "cpu");
  args.option("seed", "weights and input seed", "0");
  args.optional("dot", "also write the graph as Graphviz DOT to this file");
  if (!args.parse(argc, argv)) return 0;
  const Device device = args.get_device("device");
  const int64_t size = args.get_int("size"), batch = args.get_int("batch");
  PRM_CHECK(size >= 32 && batch >= 1, "--size must be >= 32 and --batch >= 1");

  ResNetOptions options;
  options.arch = args.get("arch");
  options.width = args.get_int("width");
  options.num_classes = args.get_int("classes");
  options.seed = static_cast<uint64_t>(args.get_int("seed"));
  ResNet net(options);
  net.to(device);
  net.train(true);
  std::map<const TensorImpl*, std::string> param_names;
  for (const auto& [name, p] : net.named_parameters()) param_names[&p.impl()] = name;

  std::mt19937_64 rng(static_cast<uint64_t>(args.get_int("seed")));
  Tensor x = Tensor::randn({batch, 3, size, size}, rng, DType::f32, device);
  std::vector<double> labels(static_cast<size_t>(batch * options.num_classes), 0.0);
  for (int64_t b = 0; b < batch; ++b) labels[b * options.num_classes + b % options.num_classes] = 1;
  Tensor target = Tensor::from_vector(labels, {batch, options.num_classes}, DType::f32, device);

  Tensor crm = net.forward(x);
  Tensor loss = multilabel_soft_margin(mean(crm, {2, 3}), target);

  std::vector<GraphRow> rows;
  run_backward(loss, Tensor(), /*retain_graph=*/false, [&](const Node& node, const Tensor& g) {
    GraphRow row;
    row.node = &node;
    row.op = node.name;
    row.backward_name = node.backward_name;
    row.output_shape = node.output_shape;
    row.grad_norm = l2_norm(g);
    for (const Tensor& in : node.inputs) {
      row.input_shapes.push_back(in.shape());
      row.producers.push_back(in.grad_fn().get());
      auto name = param_names.find(&in.impl());
      row.leaf_names.push_back(name == param_names.end() ? "" : name->second);
    }
    rows.push_back(std::move(row));
  });

  std::printf("# backward of one training step: %s, input [%lld, 3, %lld, %lld], loss %.6g\n",
              options.arch.c_str(), static_cast<long long>(batch), static_cast<long long>(size),
              static_cast<long long>(size), loss.item());
  std::printf("%5s  %-22s %-34s %-20s %-36s %s\n", "node", "op", "inputs", "output", "backward",
              "|grad out|");
  for (size_t i = 0; i < rows.size(); ++i) {
    const GraphRow& r = rows[i];
    std::printf("%5zu  %-22s %-34s %-20s %-36s %.6g\n", i, r.op.c_str(),
                shapes_str(r.input_shapes).c_str(), shape_str(r.output_shape).c_str(),
                r.backward_name.c_str(), r.grad_norm);
  }
  std::printf("# %zu nodes\n", rows.size());
  if (args.has("dot")) {
    write_file_atomic(args.get("dot"), to_dot(rows));
    std::fprintf(stderr, "wrote %s\n", args.get("dot").c_str());
  }
  return 0;
}

}  // namespace prm
