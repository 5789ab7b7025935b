// prm: Peak Response Maps from scratch. One program, one subcommand per job.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include <unistd.h>
#if defined(__SSE2__)
#include <pmmintrin.h>  // _MM_DENORMALS_ZERO_ON (and, through it, xmmintrin.h)
#endif

#include "commands.h"
#include "data/progress.h"
#include "dist/comm.h"
#include "kernels/cpu_isa.h"
#include "tensor/ops/conv2d.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

const Command kCommands[] = {
    {"train", prm::cmd_train, "train the PRM classifier on a VOC or COCO dataset (checkpoints, resume)"},
    {"gradcheck", prm::cmd_gradcheck,
     "check every differentiable op's gradient against finite differences"},
    {"infer", prm::cmd_infer, "instances, peak response maps and pictures for images"},
    {"forward", prm::cmd_forward, "class response maps (and an input gradient) of a ResNet"},
    {"bench", prm::cmd_bench, "time forward and training steps (JSON lines)"},
    {"synth", prm::cmd_synth, "write a synthetic dataset in the PASCAL VOC 2012 or MS COCO layout"},
    {"data", prm::cmd_data, "check a dataset's annotations (VOC or COCO) and count what they hold"},
    {"eval", prm::cmd_eval, "score predictions against VOC ground truth (mAP, mAP^r, ABO, mIoU)"},
    {"loaderbench", prm::cmd_loaderbench, "images per second the threaded loader delivers"},
    {"graph", prm::cmd_graph, "print the autograd graph of one training step (study; --dot)"},
    {"convert", prm::cmd_convert,
     "write any weights file prm reads (PyTorch .pth too) as .safetensors"},
};

void print_usage(FILE* out) {
  std::fprintf(out,
               "usage: prm <command> [flags]   (prm <command> --help for its flags)\n\n"
               "Peak Response Maps (Zhou et al., CVPR 2018) from scratch: a tensor and autograd\n"
               "library with CPU and CUDA backends, a fully convolutional ResNet classifier\n"
               "trained with image-level labels (peak stimulation), peak back-propagation to\n"
               "peak response maps, segment proposals and instance masks, VOC data and\n"
               "evaluation. `make demo` runs it all on synthetic data. `prm --version`: the\n"
               "build's options, the CPU's features and the GEMM path chosen for them.\n\n"
               "commands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  // OpenMP's idle threads spin a while (libgomp's default) before they sleep, so that the next
  // parallel region (a network runs hundreds a step) finds them awake; "passive" makes them
  // sleep at once, which cost 10-25 % of a forward pass or a training step here. But a spinning
  // thread holds a core: where others need it, we set "passive" when the user has not chosen a
  // policy, and re-execute ourselves once (libgomp reads OMP_WAIT_POLICY only when it loads):
  //   - with OpenBLAS (USE_OPENBLAS=1), whose own threads alternate with OpenMP's (on a 2-core
  //     machine a ResNet-50 forward pass ran ~5x slower with both spinning);
  //   - under a launcher with several ranks (mpirun -np R), whose threads share the cores.
  if (!std::getenv("OMP_WAIT_POLICY") && (PRM_USE_OPENBLAS || prm::launched_ranks() > 1)) {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv);  // returns only on failure; then run as we are
  }
  // Subnormal floats (magnitudes below 1.2e-38) send x86 arithmetic down a slow microcode path.
  // A training step whose gradients underflow (on a batch the network has already learned) took
  // 44 s instead of 0.73 s. As TensorFlow does by default (and torch.set_flush_denormal(True)),
  // prm flushes them to zero: MXCSR's flush-to-zero and denormals-are-zero bits, set here before
  // any other thread exists, so that OpenMP's and the data loader's threads inherit them.
  // PRM_DENORMALS=keep keeps IEEE's gradual underflow.
  const char* denormals = std::getenv("PRM_DENORMALS");
  if (denormals != nullptr && std::strcmp(denormals, "keep") != 0 &&
      std::strcmp(denormals, "flush") != 0) {
    std::fprintf(stderr, "prm: error: PRM_DENORMALS is '%s'; use keep or flush\n", denormals);
    return 2;
  }
#if defined(__SSE2__)
  if (denormals == nullptr || std::strcmp(denormals, "flush") == 0)
    _mm_setcsr(_mm_getcsr() | _MM_FLUSH_ZERO_ON | _MM_DENORMALS_ZERO_ON);
#endif
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    try {
      std::printf("prm: CUDA %s, cuDNN %s, OpenBLAS %s, MPI %s\nCPU features: %s\n"
                  "CPU GEMM path: %s (PRM_CPU_ISA=avx512|avx2|scalar forces one)\n"
                  "CPU Winograd F(4x4, 3x3) and F(2x2, 3x3) for large 3x3 convolutions: %s "
                  "(PRM_WINOGRAD=0|1)\n",
                  PRM_USE_CUDA ? "yes" : "no", PRM_USE_CUDNN ? "yes" : "no",
                  PRM_USE_OPENBLAS ? "yes (the CPU GEMM)" : "no", PRM_USE_MPI ? "yes" : "no",
                  prm::cpu_features().c_str(), prm::cpu_isa_name(prm::cpu_isa_active()),
                  prm::conv_winograd() ? "on" : "off");
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "prm: error: %s\n", e.what());
      return 1;
    }
  }
  for (const Command& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      prm::cpu_isa_active();  // a bad PRM_CPU_ISA is refused here, before any work
      const int status = c.run(argc - 2, argv + 2);
      prm::shutdown_world();  // NCCL and MPI ended here, not by static destructors after main
      return status;
    } catch (const std::exception& e) {
      prm::progress_end();  // the error on a line of its own
      std::fprintf(stderr, "prm %s: error: %s\n", c.name, e.what());
      try {
        prm::shutdown_world();
      } catch (const std::exception&) {  // the first error is the one to report
      }
      return 1;
    }
  }
  std::fprintf(stderr, "prm: unknown command '%s'\n", argv[1]);
  print_usage(stderr);
  return 2;
}
