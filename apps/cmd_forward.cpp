// prm forward: eval-mode class response maps of a ResNet for an input tensor, and optionally the
// plain input gradient of sum(CRM * G) (the contract in docs/formats.md). The network's width and class
// count are read from the weights (conv1.weight, classifier.weight), so tiny test networks and
// full-size ones go through the same command.
#include <cstdio>
#include <filesystem>
#include <vector>

#include "args.h"
#include "commands.h"
#include "data/npy.h"
#include "data/safetensors.h"
#include "layers/resnet.h"
#include "prm/peak_backprop.h"
#include "prm/weights.h"
#include "tensor/ops.h"
#include "tensor/autograd.h"
#include "tensor/allocator.h"

namespace prm {

namespace {

// Peak back-propagation image by image; peaks carry the image index b.
void write_prm_dir(ResNet& net, const Tensor& x, const PeakBackpropOptions& opts,
                   const std::string& dir) {
  std::filesystem::create_directories(dir);
  std::vector<Peak> peaks;
  std::vector<Tensor> scores, prms;
  for (int64_t b = 0; b < x.size(0); ++b) {
    PeakResponse r = peak_response_maps(net, narrow(x, 0, b, 1), opts);
    for (Peak p : r.peaks) {
      p.b = b;
      peaks.push_back(p);
    }
    scores.push_back(r.scores.to(Device::cpu).to(DType::f32));
    prms.push_back(r.prms.to(Device::cpu).to(DType::f32));
  }
  const int64_t K = static_cast<int64_t>(peaks.size());
  const std::vector<int64_t> rows = peak_rows(peaks);
  save_npy(dir + "/peaks.npy",
           Tensor::from_vector(std::vector<double>(rows.begin(), rows.end()), {K, 4}, DType::i64));
  save_npy(dir + "/scores.npy", concat(scores, 0));
  save_npy(dir + "/prms.npy", concat(prms, 0));
  std::fprintf(stderr, "prm forward: %lld peak response maps -> %s\n", static_cast<long long>(K),
               dir.c_str());
}

}  // namespace

int cmd_forward(int argc, char** argv) {
  Args args("forward",
            "Eval-mode class response maps (CRMs) of a ResNet for an input tensor (.npy [N,3,H,W]);\n"
            "with --grad-output G.npy and --input-grad GX.npy also writes d sum(CRM*G) / d input.");
  args.choice("arch", kArchChoices,
              "the network [the weights': prm train writes it, torchvision's names show it]", "");
  args.required("weights",
                ".safetensors or PyTorch .pth: torchvision names, classifier.{weight,bias}");
  args.required("input", "input .npy, float32 or float64, [N, 3, H, W] (already normalised)");
  args.required("output", "where to write the CRMs (.npy [N, C, H/32, W/32])");
  args.optional("grad-output", "G (.npy, the CRMs' shape) for the input gradient");
  args.optional("input-grad", "where to write the input gradient (.npy [N, 3, H, W])");
  args.optional("prm-dir", "also write DIR/peaks.npy, DIR/scores.npy and DIR/prms.npy (PRMs)");
  args.option("peak-threshold", "PRMs only for peaks whose CRM value exceeds this", "30");
  args.option("class-threshold", "PRMs only for classes whose peak score reaches this", "0");
  args.choice("device", kDeviceChoices, "where to run", "cpu");
  args.choice("dtype", {"float32", "float64"}, "computation and output", "float32");
  if (!args.parse(argc, argv)) return 0;
  PRM_CHECK(args.has("grad-output") == args.has("input-grad"),
            "--grad-output and --input-grad go together");
  const Device device = args.get_device("device");
  const DType dtype = parse_dtype(args.get("dtype"));

  const std::string weights_path = args.get("weights");
  std::unique_ptr<ResNet> net_ptr =
      load_classifier(args.has("arch") ? args.get("arch") : "", weights_path, dtype, device);
  ResNet& net = *net_ptr;

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
  if (args.has("prm-dir")) {
    PeakBackpropOptions opts;
    opts.peak_threshold = args.get_double("peak-threshold");
    opts.class_threshold = args.get_double("class-threshold");
    write_prm_dir(net, x.detach(), opts, args.get("prm-dir"));
  }
  return 0;
}

}  // namespace prm
