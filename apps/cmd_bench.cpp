// prm bench: forward and training-step time of a ResNet, as medians over repeated runs after
// warm-up, plus peak memory; one JSON object per line on stdout (the contract in docs/formats.md),
// human-readable progress on stderr. Compare with tools/bench_torch.py run the same way.
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "args.h"
#include "bench_gemm.h"
#include "data/json.h"
#include "commands.h"
#include "dist/comm.h"
#include "dist/grad_reducer.h"
#include "kernels/cpu_isa.h"
#include "layers/resnet.h"
#include "prm/peak_backprop.h"
#include "prm/train_step.h"
#include "tensor/allocator.h"
#include "tensor/ops.h"

namespace prm {

namespace {

struct Timing {
  double median_s = 0, min_s = 0;
  int runs = 0;
};

Timing summarize(std::vector<double> times) {
  std::sort(times.begin(), times.end());
  const size_t n = times.size();
  const double median = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
  return {median, times.front(), static_cast<int>(n)};
}

Timing time_runs(const std::function<void()>& run, int warmup, int runs, const char* what) {
  for (int i = 0; i < warmup; ++i) {
    run();
    cuda_synchronize();
  }
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    cuda_synchronize();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::fprintf(stderr, "\r%s: run %d/%d, %.3f s", what, i + 1, runs, times.back());
  }
  std::fprintf(stderr, "\n");
  return summarize(times);
}

// Peak resident memory of the process (CPU) or peak bytes allocated by our CUDA allocator.
double peak_memory_mb(Device device) {
  if (device == Device::cuda) return cuda_memory_stats().peak_allocated_bytes / 1048576.0;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

// PRM rows: one image; the forward (with its graph) is redone before each timed run and timed
// apart, so prm_batched / prm_per_peak time the back-propagation of the K peaks alone.
template <typename Emit>
void bench_prm(ResNet& net, int64_t size, Device device, int64_t peaks, int warmup, int runs,
               const std::string& modes, Emit emit) {
  std::mt19937_64 rng(1);
  const Tensor image = Tensor::randn({1, 3, size, size}, rng, DType::f32, device);
  PeakBackpropOptions opts;
  opts.peak_threshold = -1e30;  // random weights: take the first K kept peaks of any class
  opts.class_threshold = -1e30;
  opts.max_peaks = peaks;
  FrozenParameters frozen(net);
  for (bool batched : {true, false}) {
    if (modes != "both" && (modes == "batched") != batched) continue;
    cuda_reset_peak_memory();
    std::vector<double> forward_s, backprop_s;
    int64_t K = 0;
    for (int i = 0; i < warmup + runs; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      PeakGraph graph = peak_forward(net, image, opts);
      cuda_synchronize();
      const auto t1 = std::chrono::steady_clock::now();
      back_propagate_peaks(graph, batched);
      cuda_synchronize();
      const auto t2 = std::chrono::steady_clock::now();
      K = graph.response.count();
      if (i < warmup) continue;
      forward_s.push_back(std::chrono::duration<double>(t1 - t0).count());
      backprop_s.push_back(std::chrono::duration<double>(t2 - t1).count());
      std::fprintf(stderr, "\rprm (%s): run %d/%d, forward %.3f s, back-propagation %.3f s",
                   batched ? "batched" : "per peak", i - warmup + 1, runs, forward_s.back(),
                   backprop_s.back());
    }
    std::fprintf(stderr, "\n");
    const Json extra = Json::object({{"peaks", Json(K)}});
    if (batched || modes == "per-peak") emit("prm_forward", summarize(forward_s), 1, extra);
    emit(batched ? "prm_batched" : "prm_per_peak", summarize(backprop_s), 1, extra);
  }
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  Args args("bench",
            "Times a ResNet forward pass (eval mode, no graph), a full training step (forward,\n"
            "class scores by peak stimulation on the CRMs upsampled x8, multilabel soft-margin\n"
            "loss, backward, SGD update) and peak back-propagation of K peaks of one image\n"
            "(prm_forward, then prm_batched: one backward for all K, prm_per_peak: one backward\n"
            "per peak, the official way) and the all-reduce of the network's gradients over the\n"
            "ranks (`mpirun -np R prm bench --only allreduce`; one rank: the bucket copies only);\n"
            "one JSON line per measurement with median_s, min_s and peak_mem_mb.\n"
            "--only gemm: GFLOP/s of our CPU GEMM on the im2col GEMMs of the network's\n"
            "convolutions at batch 1 (forward, input and weight gradients; OpenBLAS beside it in\n"
            "a USE_OPENBLAS=1 build), as a fraction of the measured peak; --only peak: the peak\n"
            "float32 FMA rate per instruction set, one thread and all threads. PRM_CPU_ISA=\n"
            "avx512|avx2|scalar forces the CPU kernels' instruction set; every row says which ran.");
  args.choice("arch", kArchChoices, "the network", "resnet50");
  args.option("size", "input height and width", "448");
  args.option("batch", "batch size", "1");
  args.choice("device", kDeviceChoices, "where to run", "cpu");
  args.option("runs", "timed runs per measurement", "5");
  args.option("warmup", "untimed runs first", "1");
  args.option("width", "stem width (64 for the real networks)", "64");
  args.choice("only", {"forward", "train", "prm", "allreduce", "gemm", "peak"},
              "run only this one (default: all; under mpirun only allreduce)", "");
  args.choice("peak-grad", {"official", "mean"}, "class-score gradient in the training step",
              "official");
  args.option("peaks", "PRM rows: peaks back-propagated (K, the first K kept peaks)", "16");
  args.choice("prm-mode", {"both", "batched", "per-peak"},
              "PRM rows: all K peaks in one backward, one backward per peak, or both", "both");
  args.choice("conv-engine", {"native", "cudnn"}, "CUDA convolution: im2col + cuBLAS, or cuDNN",
              "native");
  args.choice("precision", kPrecisionChoices,
              "float32 GEMMs and convolutions: fp32 exact; tf32 tensor cores on CUDA (fp32 on the CPU); "
              "bf16 inputs with float32 sums (docs/precision.md)",
              "fp32");
  if (!args.parse(argc, argv)) return 0;
  const Device device = args.get_device("device");
  const Precision precision = parse_precision(args.get("precision"));
  set_matmul_precision(precision);
  const std::string only = args.has("only") ? args.get("only") : "";
  const PeakGrad peak_grad = parse_peak_grad(args.get("peak-grad"));
  const int64_t peaks = args.get_int("peaks");
  PRM_CHECK(peaks >= 1, "--peaks must be at least 1");
  const ConvEngine engine = parse_conv_engine(args.get("conv-engine"));
  if (device == Device::cuda) check_conv_engine_precision(engine, DType::f32);  // before any work
  Comm& comm = world(device);
  PRM_CHECK(comm.size() == 1 || only == "allreduce",
            "under mpirun, prm bench measures the gradient all-reduce only: add --only allreduce");
  const int64_t size = args.get_int("size"), batch = args.get_int("batch");
  const int runs = static_cast<int>(args.get_int("runs"));
  const int warmup = static_cast<int>(args.get_int("warmup"));
  PRM_CHECK(size >= 32 && batch >= 1 && runs >= 1 && warmup >= 0,
            "--size must be >= 32, --batch and --runs >= 1, --warmup >= 0");

  ResNetOptions options;
  options.arch = args.get("arch");
  options.width = args.get_int("width");
  if (only == "gemm" || only == "peak") {  // CPU kernels alone, no network
    PRM_CHECK(device == Device::cpu, "--only ", only, " measures the CPU: use --device cpu");
    const BenchEmit emit_row = [&](const char* bench, double median_s, double min_s, int n,
                                   const Json& extra) {
      Json line = Json::object({{"bench", Json(bench)},
                                {"arch", Json(options.arch)},
                                {"size", Json(size)},
                                {"batch", Json(int64_t(1))},
                                {"device", Json("cpu")},
                                {"median_s", Json(median_s)},
                                {"min_s", Json(min_s)},
                                {"runs", Json(n)},
                                {"peak_mem_mb", Json(peak_memory_mb(Device::cpu))},
                                {"threads", Json(omp_get_max_threads())},
                                {"cpu_isa", Json(cpu_isa_name(cpu_isa_active()))},
                                {"cpu_features", Json(cpu_features())}});
      for (const auto& [key, value] : extra.fields()) line.set(key, value);
      std::printf("%s\n", write_json(line).c_str());
      std::fflush(stdout);
    };
    if (only == "peak") bench_peak(runs, emit_row);
    else bench_gemm(options.arch, size, options.width, options.num_classes, warmup, runs, emit_row);
    return 0;
  }
  ResNet net(options);
  net.to(device);
  set_conv_engine(net, engine);
  std::mt19937_64 rng(0);
  Tensor x = Tensor::randn({batch, 3, size, size}, rng, DType::f32, device);
  Tensor target = Tensor::uniform({batch, options.num_classes}, 0, 1, rng);
  target = Tensor::from_vector([&] {
    std::vector<double> t = target.to_vector();
    for (double& v : t) v = v > 0.7 ? 1.0 : 0.0;
    return t;
  }(), target.shape(), DType::f32, device);

  // One JSON line per measurement: the contract's fields, then `extra`'s (an object).
  // images: images per timed run.
  auto emit = [&](const char* bench, const Timing& t, int64_t images, const Json& extra) {
    Json line = Json::object({{"bench", Json(bench)},
                              {"impl", Json("prm")},
                              {"arch", Json(options.arch)},
                              {"size", Json(size)},
                              {"batch", Json(images)},
                              {"device", Json(device_name(device))},
                              {"median_s", Json(t.median_s)},
                              {"min_s", Json(t.min_s)},
                              {"runs", Json(t.runs)},
                              {"peak_mem_mb", Json(peak_memory_mb(device))},
                              {"images_per_s", Json(images / t.median_s)},
                              {"threads", Json(omp_get_max_threads())},
                              {"conv_engine", Json(conv_engine_name(engine))},
                              {"precision", Json(precision_name(precision))},
                              {"cpu_isa", Json(cpu_isa_name(cpu_isa_active()))},
                              {"cpu_winograd", Json(conv_winograd())}});
    for (const auto& [key, value] : extra.fields()) line.set(key, value);
    std::printf("%s\n", write_json(line).c_str());
    std::fflush(stdout);
  };

  if (only.empty() || only == "forward") {
    net.eval();
    cuda_reset_peak_memory();
    NoGradGuard no_grad;
    // As in prm infer: the weights are constants of the run, packed for the GEMM by the first
    // (untimed) run and kept, as ONNX Runtime's session prepacks them.
    const ConstantWeights constant_weights;
    emit("forward", time_runs([&] { net(x); }, warmup, runs, "forward"), batch,
         Json::object({{"constant_weights", Json(true)}}));
  }
  if (only.empty() || only == "train") {
    // prm train's own step (prm/train_step.h) with a run's default settings, on a fixed batch
    // (tools/bench_torch.py times the same recipe, so the two stay comparable).
    net.train();
    TrainConfig config;
    config.size = size;
    config.device = device_name(device);
    config.head.peak_grad = peak_grad;
    StandaloneStep train_step(net, config);
    Batch fixed;
    fixed.images = x;
    fixed.targets = target;
    for (int64_t i = 0; i < batch; ++i) fixed.indices.push_back(static_cast<size_t>(i));
    cuda_reset_peak_memory();
    auto step = [&] { train_step(fixed); };
    emit("train_step", time_runs(step, warmup, runs, "train_step"), batch,
         Json::object({{"peak_grad", Json(peak_grad_name(peak_grad))}}));
  }
  if (only.empty() || only == "prm") {
    const ConstantWeights constant_weights;  // as in prm infer
    bench_prm(net, size, device, peaks, warmup, runs, args.get("prm-mode"), emit);
  }
  if (only.empty() || only == "allreduce") {
    // The data-parallel step's communication: every parameter's gradient (here all ones) into
    // its bucket, one all-reduce per bucket, the sums back (dist/grad_reducer.h). A run's time is
    // the slowest rank's.
    const std::vector<Tensor> params = net.parameters();
    auto ones = [&] {
      for (Tensor p : params) p.set_grad(Tensor::full(p.shape(), 1.0, p.dtype(), p.device()));
    };
    GradReducer reducer(comm, params);
    auto reduce = [&] {
      reducer.begin();
      for (size_t k = params.size(); k-- > 0;) reducer.on_grad_ready(params[k]);
      reducer.finish();
    };
    std::vector<double> times;
    for (int i = -warmup; i < runs; ++i) {
      ones();
      comm.barrier();
      const auto t0 = std::chrono::steady_clock::now();
      reduce();
      cuda_synchronize();
      double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      comm.all_reduce(&t, 1, ReduceOp::max);
      if (i >= 0) times.push_back(t);
    }
    const double expected = static_cast<double>(comm.size());
    PRM_CHECK(params.front().grad().to_vector().front() == expected,
              "bench: the all-reduce of ones over ", comm.size(), " ranks gave ",
              params.front().grad().to_vector().front());
    const Timing t = summarize(times);
    const double bytes = static_cast<double>(reducer.total_bytes());
    const double R = comm.size();
    const Json extra = Json::object(
        {{"ranks", Json(comm.size())},
         {"backend", Json(comm.backend())},
         {"bytes", Json(bytes)},
         {"buckets", Json(static_cast<int64_t>(reducer.bucket_count()))},
         {"overlap_thread", Json(reducer.overlapping())},
         {"algbw_gb_s", Json(bytes / t.median_s / 1e9)},
         {"busbw_gb_s", Json(2 * (R - 1) / R * bytes / t.median_s / 1e9)}});
    if (comm.rank() == 0) emit("allreduce", t, 0, extra);
  }
  return 0;
}

}  // namespace prm
