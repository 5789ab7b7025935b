// prm forward: eval-mode class response maps of a ResNet for an input tensor, and optionally the
// plain input gradient of sum(CRM * G) (the contract in DESIGN.md). The network's width and class
// count are read from the weights (conv1.weight, classifier.weight), so tiny test networks and
// full-size ones go through the same command.
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "data/npy.h"
#include "data/safetensors.h"
#include "layers/resnet.h"
#include "tensor/autograd.h"
#include "tensor/allocator.h"

namespace prm {

namespace {

int64_t leading_dim(const TensorMap& tensors, const std::string& name, const std::string& path) {
  auto it = tensors.find(name);
  PRM_CHECK(it != tensors.end(), path, ": no tensor '", name, "' (needed to size the network)");
  PRM_CHECK(it->second.dim() == 4, path, ": tensor '", name, "' has shape ",
            it->second.shape_str(), ", expected 4 dims");
  return it->second.size(0);
}

}  // namespace

int cmd_forward(int argc, char** argv) {
  Args args("forward",
            "Eval-mode class response maps (CRMs) of a ResNet for an input tensor (.npy [N,3,H,W]);\n"
            "with --grad-output G.npy and --input-grad GX.npy also writes d sum(CRM*G) / d input.");
  args.required("arch", "resnet18 | resnet34 | resnet50 | resnet101");
  args.required("weights", ".safetensors with torchvision names and classifier.{weight,bias}");
  args.required("input", "input .npy, float32 or float64, [N, 3, H, W] (already normalised)");
  args.required("output", "where to write the CRMs (.npy [N, C, H/32, W/32])");
  args.optional("grad-output", "G (.npy, the CRMs' shape) for the input gradient");
  args.optional("input-grad", "where to write the input gradient (.npy [N, 3, H, W])");
  args.option("device", "cpu or cuda", "cpu");
  args.option("dtype", "float32 or float64 (computation and output)", "float32");
  if (!args.parse(argc, argv)) return 0;
  PRM_CHECK(args.has("grad-output") == args.has("input-grad"),
            "--grad-output and --input-grad go together");
  const Device device = args.get_device("device");
  const DType dtype = parse_dtype(args.get("dtype"));
  PRM_CHECK(dtype != DType::i64, "--dtype must be float32 or float64");

  const std::string weights_path = args.get("weights");
  SafetensorsContents weights = load_safetensors(weights_path);
  ResNetOptions options;
  options.arch = args.get("arch");
  options.width = leading_dim(weights.tensors, "conv1.weight", weights_path);
  options.num_classes = leading_dim(weights.tensors, "classifier.weight", weights_path);
  ResNet net(options);
  LoadOptions load;
  load.skip_prefixes = {"fc."};
  net.load_state_dict(weights.tensors, load, weights_path);
  net.to(dtype);
  net.to(device);
  net.eval();

  const std::string input_path = args.get("input");
  Tensor x = load_npy(input_path);
  PRM_CHECK(x.dim() == 4 && x.size(1) == 3, input_path, ": input has shape ", x.shape_str(),
            ", expected [N, 3, H, W]");
  PRM_CHECK(x.dtype() != DType::i64, input_path, ": input is int64, expected float32 or float64");
  x = x.to(dtype).to(device).detach();

  const bool want_grad = args.has("grad-output");
  Tensor grad_output;
  if (want_grad) {
    grad_output = load_npy(args.get("grad-output"));
    x.set_requires_grad(true);
  }
  Tensor crm;
  {
    std::unique_ptr<NoGradGuard> no_grad(want_grad ? nullptr : new NoGradGuard());
    crm = net(x);
  }
  save_npy(args.get("output"), crm.to(Device::cpu));
  std::fprintf(stderr, "prm forward: CRMs %s -> %s\n", crm.shape_str().c_str(),
               args.get("output").c_str());
  if (want_grad) {
    PRM_CHECK(grad_output.shape() == crm.shape(), args.get("grad-output"), ": shape ",
              grad_output.shape_str(), " does not match the CRMs' ", crm.shape_str());
    PRM_CHECK(grad_output.dtype() != DType::i64, args.get("grad-output"),
              ": int64, expected float32 or float64");
    crm.backward(grad_output.to(dtype).to(device).detach());
    save_npy(args.get("input-grad"), x.grad().to(Device::cpu));
    std::fprintf(stderr, "prm forward: input gradient %s -> %s\n", x.shape_str().c_str(),
                 args.get("input-grad").c_str());
  }
  return 0;
}

}  // namespace prm
