// The training loop's arithmetic and state, checked against a step recomputed in the test:
// - the loss of every step, from CRMs the test upsamples (bilinear, align_corners, x8), stimulates
//   (3x3 peaks, median filter) and scores (multilabel soft margin) with its own naive loops;
// - the classifier bias's gradient, known in closed form from the peaks (it reaches the CRM
//   unchanged and upsampling's transpose keeps sums), inside SGD's momentum buffer together with
//   the weight decay and the momentum of the step before;
// - every parameter's update against its group's rate (the backbone multiplier, two rate drops);
// - the step counter after resuming from an end-of-epoch checkpoint;
// - the validation mAP recomputed from the checkpoint's weights with the difficult-only rule;
// - the loader's shuffle and flip seeds; the configuration's defaults and the flags' path.
// The network's forward and the loader are the library's (they have tests of their own); what is
// recomputed here is everything the loop does with them.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "data/files.h"
#include "data/json.h"
#include "data/labels.h"
#include "data/loader.h"
#include "data/safetensors.h"
#include "data/synth.h"
#include "data/transforms.h"
#include "data/voc.h"
#include "dist/comm.h"
#include "dist/grad_reducer.h"
#include "dist/sync_batch_norm.h"
#include "helpers.h"
#include "layers/resnet.h"
#include "prm/train.h"
#include "prm/train_step.h"
#include "prm/weights.h"
#include "tensor/autograd.h"
#include "tensor/ops.h"

using namespace prm;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("prm_train_loop_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(p);
  return p;
}

// A synthetic VOC set in a fresh folder.
std::string synth_set(const std::string& name, int train, int val, int size, int classes,
                      uint64_t seed) {
  SynthOptions o;
  o.out = scratch(name).string();
  o.train = train;
  o.val = val;
  o.size = size;
  o.classes = classes;
  o.seed = seed;
  synthesize_voc(o);
  return o.out;
}

// 4 training images (one batch of 4: one step per epoch) and 10 validation images, three of
// which have every object marked difficult (their classes are neither positive nor negative).
const std::string& one_step_dataset() {
  static const std::string root = [] {
    const std::string root = synth_set("data", 4, 10, 80, 3, 21);
    VocOptions vo;
    vo.root = root;
    vo.split = "val";
    const VocDataset val(vo);
    for (size_t i = 0; i < 3; ++i) {
      const std::string path = root + "/Annotations/" + val.sample(i).id + ".xml";
      std::string xml = read_file_bytes(path);
      for (size_t at; (at = xml.find("<difficult>0</difficult>")) != std::string::npos;)
        xml.replace(at, 24, "<difficult>1</difficult>");
      write_file_atomic(path, xml);
    }
    return root;
  }();
  return root;
}

TrainConfig one_step_config(const std::string& name) {
  TrainConfig c;
  c.data = one_step_dataset();
  c.arch = "resnet18";
  c.width = 4;
  c.size = 96;  // 3x3 CRMs, 24x24 after upsampling
  c.batch = 4;
  c.epochs = 1;
  c.lr = 0.2;
  c.backbone_lr_mult = 0.25;
  c.momentum = 0.9;
  c.weight_decay = 0.05;
  c.lr_drops = {2, 3};
  c.workers = 1;
  c.seed = 4;
  c.out = scratch(name).string();
  return c;
}

// ---- the PRM head, by naive loops over doubles ----

// Bilinear upsampling by 8 of one H x W map (align_corners: the corners map onto the corners).
std::vector<double> upsample8(const double* m, int H, int W, bool align_corners, int& OH,
                              int& OW) {
  OH = 8 * H;
  OW = 8 * W;
  auto source = [&](int o, int in, int out) {
    if (align_corners) return out > 1 ? o * double(in - 1) / double(out - 1) : 0.0;
    return std::max(0.0, (o + 0.5) * double(in) / double(out) - 0.5);
  };
  std::vector<double> up(static_cast<size_t>(OH) * OW);
  for (int oy = 0; oy < OH; ++oy)
    for (int ox = 0; ox < OW; ++ox) {
      const double sy = source(oy, H, OH), sx = source(ox, W, OW);
      const int y0 = std::min(static_cast<int>(sy), H - 1), x0 = std::min(static_cast<int>(sx), W - 1);
      const int y1 = std::min(y0 + 1, H - 1), x1 = std::min(x0 + 1, W - 1);
      const double fy = sy - y0, fx = sx - x0;
      up[oy * OW + ox] = (1 - fy) * ((1 - fx) * m[y0 * W + x0] + fx * m[y0 * W + x1]) +
                         fy * ((1 - fx) * m[y1 * W + x0] + fx * m[y1 * W + x1]);
    }
  return up;
}

struct Stimulated {
  double score = 0;
  int peaks = 0;  // kept peaks
};

// Peaks of a 3x3 window (the first maximum in scan order wins), kept when >= the lower median.
Stimulated stimulate(const std::vector<double>& m, int H, int W) {
  std::vector<double> sorted = m;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[(sorted.size() - 1) / 2];
  Stimulated s;
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      int best = -1;
      double best_v = -std::numeric_limits<double>::infinity();
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
          if (m[yy * W + xx] > best_v) {
            best_v = m[yy * W + xx];
            best = yy * W + xx;
          }
        }
      if (best == y * W + x && m[best] >= median) {
        s.score += m[best];
        ++s.peaks;
      }
    }
  if (s.peaks > 0) s.score /= s.peaks;
  return s;
}

struct HeadResult {
  double loss = 0;
  std::vector<double> bias_grad_official, bias_grad_mean;  // [C]
};

// The class scores, loss and bias gradient of CRMs [N, C, H, W] against 0/1 targets [N][C].
HeadResult head(const Tensor& crm, const std::vector<std::vector<double>>& targets,
                bool align_corners = true) {
  const Shape s = crm.shape();
  const int N = static_cast<int>(s[0]), C = static_cast<int>(s[1]);
  const int H = static_cast<int>(s[2]), W = static_cast<int>(s[3]);
  const std::vector<double> v = crm.to_vector();
  HeadResult r;
  r.bias_grad_official.assign(C, 0.0);
  r.bias_grad_mean.assign(C, 0.0);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      int OH = 0, OW = 0;
      const std::vector<double> up =
          upsample8(v.data() + (static_cast<size_t>(n) * C + c) * H * W, H, W, align_corners, OH, OW);
      const Stimulated st = stimulate(up, OH, OW);
      const double y = targets[n][c], sig = 1 / (1 + std::exp(-st.score));
      r.loss -= (y * std::log(sig) + (1 - y) * std::log(1 - sig)) / (double(N) * C);
      const double ds = (sig - y) / (double(N) * C);
      // dL/dM = peak map * ds (official) or * ds / n (mean); summed over the upsampled grid
      // (bilinear weights of each output pixel sum to 1) and over the images.
      r.bias_grad_official[c] += ds * st.peaks;
      r.bias_grad_mean[c] += ds;
    }
  return r;
}

// Image-level training targets from the annotations: any object of the class, difficult included.
std::vector<std::vector<double>> train_targets(const VocDataset& set,
                                               const std::vector<size_t>& indices) {
  std::vector<std::vector<double>> t;
  for (size_t i : indices) {
    std::vector<double> row(set.classes().size(), 0.0);
    for (const VocObject& o : set.sample(i).annotation.objects) row.at(o.class_id) = 1;
    t.push_back(row);
  }
  return t;
}

// ---- AP by the VOC rule, written out ----

// Labels: 1 present, 0 only difficult objects (ignored), -1 absent.
double mean_ap(const std::vector<std::vector<double>>& scores,
               const std::vector<std::vector<int>>& labels) {
  const size_t C = scores.at(0).size();
  double sum = 0;
  int classes = 0;
  for (size_t c = 0; c < C; ++c) {
    std::vector<size_t> order(scores.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return scores[a][c] > scores[b][c]; });
    int positives = 0;
    for (const auto& l : labels) positives += l[c] == 1;
    if (positives == 0) continue;
    std::vector<double> rec{0}, prec{0};
    int tp = 0, fp = 0;
    for (size_t i : order) {
      if (labels[i][c] == 0) continue;
      (labels[i][c] == 1 ? tp : fp) += 1;
      rec.push_back(double(tp) / positives);
      prec.push_back(double(tp) / (tp + fp));
    }
    rec.push_back(1);
    prec.push_back(0);
    for (size_t i = prec.size() - 1; i > 0; --i) prec[i - 1] = std::max(prec[i - 1], prec[i]);
    double ap = 0;
    for (size_t i = 1; i < rec.size(); ++i) ap += (rec[i] - rec[i - 1]) * prec[i];
    sum += ap;
    ++classes;
  }
  return sum / classes;
}

// ---- a run's files ----

std::vector<Json> metrics_lines(const std::string& run) {
  std::ifstream in(run + "/metrics.jsonl");
  std::vector<Json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(parse_json(line, "metrics"));
  return lines;
}

ResNetOptions net_options(const TrainConfig& c) {
  ResNetOptions o;
  o.arch = c.arch;
  o.width = c.width;
  o.num_classes = 20;
  o.seed = c.seed;
  return o;
}

// The network as a checkpoint holds it (model.* tensors).
void load_checkpoint_weights(ResNet& net, const SafetensorsContents& ck) {
  TensorMap model;
  for (const auto& [name, t] : ck.tensors)
    if (name.rfind("model.", 0) == 0) model[name.substr(6)] = t;
  net.load_state_dict(model);
}

// name -> "sgd.<group>.<index>": the features group first, the classifier second, each in
// parameter order (ResNet::param_groups).
std::map<std::string, std::string> momentum_keys(const ResNet& net) {
  std::map<std::string, std::string> keys;
  int index[2] = {0, 0};
  for (const auto& [name, p] : net.named_parameters()) {
    const int g = name.rfind("classifier.", 0) == 0 ? 1 : 0;
    keys[name] = "sgd." + std::to_string(g) + "." + std::to_string(index[g]++);
  }
  return keys;
}

// The first batch of an epoch as the training loader makes it, and the training set.
Batch training_batch(const TrainConfig& c, int64_t epoch, std::unique_ptr<VocDataset>* set_out) {
  VocOptions vo;
  vo.root = c.data;
  vo.split = c.train_split;
  auto set = std::make_unique<VocDataset>(vo);
  LoaderOptions lo;
  lo.batch_size = static_cast<int>(c.batch);
  lo.image_size = static_cast<int>(c.size);
  lo.workers = 0;
  lo.seed = c.seed;
  Loader loader(*set, lo);
  loader.start_epoch(epoch);
  Batch batch;
  REQUIRE(loader.next(batch));
  *set_out = std::move(set);
  return batch;
}

// The loss and bias gradient of the network `before` the step on the step's batch (train-mode
// batch norm), recomputed.
HeadResult recompute_step(const TrainConfig& c, ResNet& before, int64_t epoch,
                          bool align_corners = true) {
  std::unique_ptr<VocDataset> set;
  const Batch batch = training_batch(c, epoch, &set);
  NoGradGuard no_grad;
  before.train();
  const Tensor crm = before.forward(batch.images);
  return head(crm, train_targets(*set, batch.indices), align_corners);
}

// The validation mAP of the weights in a checkpoint, recomputed (eval-mode batch norm).
double recompute_val_map(const TrainConfig& c, const SafetensorsContents& ck,
                         bool difficult_as_positive = false) {
  ResNet net(net_options(c));
  load_checkpoint_weights(net, ck);
  net.eval();
  VocOptions vo;
  vo.root = c.data;
  vo.split = c.val_split;
  const VocDataset val(vo);
  LoaderOptions lo;
  lo.batch_size = 3;
  lo.image_size = static_cast<int>(c.size);
  lo.workers = 0;
  lo.shuffle = false;
  lo.random_flip = false;
  Loader loader(val, lo);
  loader.start_epoch(0);
  std::vector<std::vector<double>> scores;
  std::vector<std::vector<int>> labels;
  NoGradGuard no_grad;
  for (Batch b; loader.next(b);) {
    const Tensor crm = net.forward(b.images);
    const Shape s = crm.shape();
    const std::vector<double> v = crm.to_vector();
    const int C = static_cast<int>(s[1]), H = static_cast<int>(s[2]), W = static_cast<int>(s[3]);
    for (size_t n = 0; n < b.indices.size(); ++n) {
      std::vector<double> row;
      for (int k = 0; k < C; ++k) {
        int OH = 0, OW = 0;
        const std::vector<double> up = upsample8(v.data() + (n * C + k) * H * W, H, W, true, OH, OW);
        row.push_back(stimulate(up, OH, OW).score);
      }
      scores.push_back(row);
      std::vector<int> label(C, -1);
      for (const VocObject& o : val.sample(b.indices[n]).annotation.objects) {
        const int l = o.difficult && !difficult_as_positive ? 0 : 1;
        label.at(o.class_id) = std::max(label.at(o.class_id), l);
      }
      labels.push_back(label);
    }
  }
  return mean_ap(scores, labels);
}

void check_update(const SafetensorsContents& before, const SafetensorsContents& after,
                  const TrainConfig& c, double lr) {
  ResNet net(net_options(c));
  for (const auto& [name, key] : momentum_keys(net)) {
    CAPTURE(name);
    const double rate = lr * (key.rfind("sgd.1.", 0) == 0 ? 1.0 : c.backbone_lr_mult);
    const std::vector<double> w0 = before.tensors.at("model." + name).to_vector();
    const std::vector<double> buf = after.tensors.at(key).to_vector();
    std::vector<double> expected(w0.size());
    for (size_t i = 0; i < w0.size(); ++i) expected[i] = w0[i] - rate * buf[i];
    check_close(after.tensors.at("model." + name).to_vector(), expected, 1e-6, 1e-8);
  }
}

}  // namespace

TEST_CASE("train loop: three one-step epochs against the step recomputed by hand") {
  TrainConfig c = one_step_config("steps");
  // Three checkpoints: the run of 1 epoch, resumed to 2, resumed to 3 (each from an end-of-epoch
  // checkpoint, where batch 0 and step e differ).
  train(c);
  std::vector<SafetensorsContents> ck;
  ck.push_back(load_safetensors(c.out + "/checkpoint.safetensors"));
  for (int64_t e = 2; e <= 3; ++e) {
    resume_training(c.out, e);
    ck.push_back(load_safetensors(c.out + "/checkpoint.safetensors"));
  }
  const std::vector<Json> lines = metrics_lines(c.out);
  REQUIRE(lines.size() == 3);

  ResNet initial(net_options(c));
  SafetensorsContents start;
  for (const auto& [name, t] : initial.state_dict()) start.tensors["model." + name] = t.clone();
  const double rates[3] = {c.lr, c.lr * 0.1, c.lr * 0.01};  // drops at epochs 2 and 3
  for (int e = 0; e < 3; ++e) {
    CAPTURE(e);
    const SafetensorsContents& before = e == 0 ? start : ck[e - 1];
    const SafetensorsContents& after = ck[e];
    // Position: one step per epoch.
    CHECK(after.metadata.at("epoch") == std::to_string(e + 1));
    CHECK(after.metadata.at("batch") == "0");
    CHECK(after.metadata.at("step") == std::to_string(e + 1));
    CHECK(lines[e].at("step").as_int64() == e + 1);
    CHECK(lines[e].at("lr").as_double() == doctest::Approx(rates[e]).epsilon(1e-12));
    // The loss and the classifier bias's gradient of the step, from the weights before it.
    ResNet net(net_options(c));
    load_checkpoint_weights(net, before);
    const HeadResult h = recompute_step(c, net, e);
    CHECK(lines[e].at("loss").as_double() == doctest::Approx(h.loss).epsilon(1e-5));
    // The momentum buffer: buf = momentum * buf_before + grad + weight_decay * w_before
    // (PyTorch's SGD; the first step's buffer is grad + weight_decay * w).
    const std::vector<double> b0 = before.tensors.at("model.classifier.bias").to_vector();
    const std::string key = momentum_keys(net).at("classifier.bias");
    std::vector<double> buf_before(b0.size(), 0.0);
    if (e > 0) buf_before = before.tensors.at(key).to_vector();
    std::vector<double> expected(b0.size());
    for (size_t k = 0; k < b0.size(); ++k)
      expected[k] = c.momentum * buf_before[k] + h.bias_grad_official[k] + c.weight_decay * b0[k];
    check_close(after.tensors.at(key).to_vector(), expected, 1e-4, 2e-6);
    // Every parameter moved by its group's rate times its buffer.
    check_update(before, after, c, rates[e]);
    // The validation mAP of the weights after the step, difficult-only classes ignored.
    CHECK(lines[e].at("val_map").as_double() ==
          doctest::Approx(recompute_val_map(c, after)).epsilon(1e-9));
  }

  // The checks above can fail: the quantities they pin differ under the plausible alternatives.
  ResNet net(net_options(c));
  const HeadResult aligned = recompute_step(c, net, 0, true);
  const HeadResult half_pixel = recompute_step(c, net, 0, false);
  CHECK(std::abs(aligned.loss - half_pixel.loss) > 1e-4 * aligned.loss);
  double rule_gap = 0;
  for (size_t k = 0; k < aligned.bias_grad_mean.size(); ++k)
    rule_gap = std::max(rule_gap, std::abs(aligned.bias_grad_official[k] - aligned.bias_grad_mean[k]));
  CHECK(rule_gap > 1e-4);
  CHECK(std::abs(recompute_val_map(c, ck[2]) - recompute_val_map(c, ck[2], true)) > 1e-3);
  CHECK(std::abs(lines[2].at("val_map").as_double() - lines[1].at("val_map").as_double()) > 0);
}

TEST_CASE("train loop: --peak-grad mean divides the class gradient by the kept peaks") {
  TrainConfig c = one_step_config("mean");
  c.head.peak_grad = PeakGrad::mean;
  c.weight_decay = 0;
  train(c);
  const SafetensorsContents ck = load_safetensors(c.out + "/checkpoint.safetensors");
  ResNet net(net_options(c));
  const HeadResult h = recompute_step(c, net, 0);
  check_close(ck.tensors.at(momentum_keys(net).at("classifier.bias")).to_vector(),
              h.bias_grad_mean, 1e-4, 2e-6);
}

TEST_CASE("train loop: resuming an end-of-epoch checkpoint counts steps, not batches") {
  // 12 images in batches of 4: 3 steps an epoch. After epoch 1 the checkpoint says batch 0,
  // step 3; the resumed run must end at step 6, with every epoch's line saying so.
  TrainConfig c = one_step_config("counter");
  c.data = synth_set("data12", 12, 2, 64, 2, 8);
  c.val_split = "";
  c.size = 48;
  train(c);
  const SafetensorsContents first = load_safetensors(c.out + "/checkpoint.safetensors");
  CHECK(first.metadata.at("batch") == "0");
  CHECK(first.metadata.at("step") == "3");
  const TrainResult r = resume_training(c.out, 2);
  CHECK(r.position.epoch == 2);
  CHECK(r.position.batch == 0);
  CHECK(r.position.step == 6);
  const std::vector<Json> lines = metrics_lines(c.out);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].at("step").as_int64() == 3);
  CHECK(lines[1].at("step").as_int64() == 6);
  CHECK(lines[1].at("epoch").as_int64() == 2);
  const SafetensorsContents second = load_safetensors(c.out + "/checkpoint.safetensors");
  CHECK(second.metadata.at("step") == "6");
  CHECK(second.metadata.at("epoch") == "2");
  CHECK(lines[1].at("lr").as_double() == doctest::Approx(c.lr * 0.1).epsilon(1e-12));
}

TEST_CASE("train loop: the loader's order and flips depend on the seed and the epoch") {
  VocOptions vo;
  vo.root = synth_set("data_order", 16, 0, 32, 2, 3);
  const VocDataset set(vo);
  std::set<std::vector<size_t>> orders;
  std::set<std::vector<bool>> flips;
  for (uint64_t seed = 1; seed <= 3; ++seed)
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      CAPTURE(seed);
      CAPTURE(epoch);
      LoaderOptions lo;
      lo.batch_size = 16;
      lo.image_size = 16;
      lo.workers = 0;
      lo.seed = seed;
      Loader loader(set, lo);
      loader.start_epoch(epoch);
      Batch b;
      REQUIRE(loader.next(b));
      std::vector<size_t> sorted = b.indices;
      std::sort(sorted.begin(), sorted.end());
      for (size_t i = 0; i < sorted.size(); ++i) CHECK(sorted[i] == i);  // a permutation
      orders.insert(b.indices);
      std::vector<bool> f;
      int heads = 0;
      for (int64_t s = 0; s < 64; ++s) {
        f.push_back(flip_for(seed, epoch, s));
        heads += f.back();
      }
      CHECK(heads > 16);  // about half of the samples flipped
      CHECK(heads < 48);
      flips.insert(f);
      // The batch's flips are those of its samples.
      for (size_t k = 0; k < b.indices.size(); ++k)
        CHECK(b.flipped[k] == flip_for(seed, epoch, static_cast<int64_t>(b.indices[k])));
    }
  CHECK(orders.size() == 9);  // every (seed, epoch) its own order
  CHECK(flips.size() == 9);
}

TEST_CASE("train loop: the configuration's defaults are the paper's, and flags reach the run") {
  const TrainConfig d;
  CHECK(d.arch == "resnet50");
  CHECK(d.width == 64);
  CHECK(d.size == 448);
  CHECK(d.batch == 16);
  CHECK(d.epochs == 20);
  CHECK(d.lr == 0.01);
  CHECK(d.backbone_lr_mult == 0.01);
  CHECK(d.momentum == 0.9);
  CHECK(d.weight_decay == 1e-4);
  CHECK(d.lr_drops.empty());
  CHECK(d.head.peak_grad == PeakGrad::official);
  CHECK(d.head.upsample == 8.0);
  CHECK(d.head.window == 3);
  CHECK(d.seed == 1);
  CHECK(d.train_split == "train");
  CHECK(d.val_split == "val");
  CHECK(d.precision == "fp32");
  CHECK(d.micro_batches == 1);
  CHECK_FALSE(d.sync_bn);
  CHECK_FALSE(d.skip_bad);
  // A configuration from before precision, sync_bn, micro_batches, lr_drops and the head were
  // stored (the gradient rule was a field of its own).
  Json old = d.to_json();
  Json trimmed = Json::object();
  for (const auto& [key, value] : old.fields())
    if (key != "precision" && key != "sync_bn" && key != "micro_batches" && key != "lr_drops" &&
        key != "head")
      trimmed.set(key, value);
  trimmed.set("peak_grad", "mean");
  const TrainConfig back = TrainConfig::from_json(trimmed, "old.json");
  CHECK(back.head.peak_grad == PeakGrad::mean);
  CHECK(back.head.upsample == 8.0);
  CHECK(back.head.window == 3);
  CHECK(back.precision == "fp32");
  CHECK_FALSE(back.sync_bn);
  CHECK(back.micro_batches == 1);
  CHECK(back.lr_drops.empty());

  PRM_REQUIRE_BIN_OR_SKIP();
  const std::string data = one_step_dataset();
  const fs::path dir = scratch("cli");
  fs::create_directories(dir);
  const std::string base = prm_bin() + " train --data " + data + " --arch resnet18 --width 4 "
                           "--size 32 --batch 4 --epochs 1 --workers 1";
  // Defaults through the command line.
  CommandResult r = run_command(base + " --out " + (dir / "defaults").string());
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  Json j = parse_json(read_file_bytes((dir / "defaults/config.json").string()), "config.json");
  CHECK(j.at("lr").as_double() == 0.01);
  // No --pretrained: the backbone trains from scratch at the full rate, and the run says so.
  CHECK(j.at("backbone_lr_mult").as_double() == 1.0);
  CHECK(r.err.find("--backbone-lr-mult 1") != std::string::npos);
  CHECK(j.at("momentum").as_double() == 0.9);
  CHECK(j.at("weight_decay").as_double() == 1e-4);
  CHECK(j.at("head").at("peak_grad").as_string() == "official");
  CHECK(j.at("head").at("upsample").as_double() == 8.0);
  CHECK(j.at("head").at("window").as_int64() == 3);
  CHECK(j.at("seed").as_int64() == 1);
  CHECK(j.at("lr_drops").items().empty());
  CHECK(j.at("micro_batches").as_int64() == 1);
  CHECK(j.at("train_split").as_string() == "train");
  CHECK(j.at("val_split").as_string() == "val");
  // With --pretrained (ImageNet weights, here a fresh network's): the paper's 0.01.
  {
    ResNetOptions o;
    o.arch = "resnet18";
    o.width = 4;
    ResNet net(o);
    save_weights(net, (dir / "backbone.safetensors").string());
  }
  r = run_command(base + " --out " + (dir / "pretrained").string() + " --pretrained " +
                  (dir / "backbone.safetensors").string());
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  j = parse_json(read_file_bytes((dir / "pretrained/config.json").string()), "config.json");
  CHECK(j.at("backbone_lr_mult").as_double() == 0.01);
  // Every flag given.
  r = run_command(base + " --out " + (dir / "flags").string() +
                  " --lr 0.03 --backbone-lr-mult 0.5 --momentum 0.7 --weight-decay 0.002 "
                  "--peak-grad mean --seed 9 --lr-drops 3,5 --val-split none --micro-batches 2");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  j = parse_json(read_file_bytes((dir / "flags/config.json").string()), "config.json");
  CHECK(j.at("lr").as_double() == 0.03);
  CHECK(j.at("backbone_lr_mult").as_double() == 0.5);
  CHECK(j.at("momentum").as_double() == 0.7);
  CHECK(j.at("weight_decay").as_double() == 0.002);
  CHECK(j.at("head").at("peak_grad").as_string() == "mean");
  CHECK(j.at("seed").as_int64() == 9);
  REQUIRE(j.at("lr_drops").items().size() == 2);
  CHECK(j.at("lr_drops").items()[0].as_int64() == 3);
  CHECK(j.at("lr_drops").items()[1].as_int64() == 5);
  CHECK(j.at("val_split").as_string() == "");
  CHECK(j.at("micro_batches").as_int64() == 2);
  CHECK(j.at("width").as_int64() == 4);
  CHECK(j.at("size").as_int64() == 32);
  CHECK(j.at("batch").as_int64() == 4);
}

TEST_CASE("train loop: prm bench's step is train's step (the same weights bit for bit)") {
  // A one-step run, and StandaloneStep (what `prm bench --only train` times) on the same batch
  // from the same initial network: the same function, head, loss and update.
  TrainConfig c = one_step_config("bench_step");
  train(c);
  const SafetensorsContents ck = load_safetensors(c.out + "/checkpoint.safetensors");
  ResNet net(net_options(c));
  StandaloneStep step(net, c);
  std::unique_ptr<VocDataset> set;
  const Batch batch = training_batch(c, 0, &set);
  net.train();
  const StepOutcome out = step(batch);
  CHECK(out.stepped);
  CHECK(out.images == c.batch);
  CHECK(metrics_lines(c.out).at(0).at("loss").as_double() == out.loss);
  for (const auto& [name, t] : net.state_dict()) {
    CAPTURE(name);
    CHECK(t.to_vector() == ck.tensors.at("model." + name).to_vector());
  }
}

TEST_CASE("labels: VOC's image-level rule, for training, validation and evaluation alike") {
  auto object = [](int c, bool difficult) {
    VocObject o;
    o.class_id = c;
    o.difficult = difficult;
    return o;
  };
  // Class 0: one plain object; 1: only difficult ones; 2: a difficult and a plain one; 3: none;
  // class 7 lies outside the 4 classes and is not counted.
  const std::vector<VocObject> objects = {object(1, true), object(0, false), object(2, true),
                                          object(1, true), object(2, false), object(7, false)};
  CHECK(voc_image_labels(objects, 4) == std::vector<int>{1, 0, 1, -1});
  CHECK(voc_image_labels({}, 2) == std::vector<int>{-1, -1});
  CHECK(training_target(1, false) == 1.0f);
  CHECK(training_target(0, false) == 1.0f);  // difficult counts as positive in training
  CHECK(training_target(-1, false) == 0.0f);
  CHECK(training_target(0, true) == 0.0f);   // unless excluded
  CHECK(training_target(1, true) == 1.0f);
}

namespace {

// train_step on R thread-ranks (ThreadGroup), rank r holding rows parts[r] of the global batch,
// with the GradReducer and optionally synchronised batch norm: the weights after one step, rank
// 0's (every rank's must be the same).
std::vector<std::vector<double>> ranks_step(const TrainConfig& c, const Batch& global,
                                            const std::vector<std::pair<int64_t, int64_t>>& parts,
                                            double* loss) {
  const int R = static_cast<int>(parts.size());
  ThreadGroup group(R);
  std::vector<std::unique_ptr<ResNet>> nets;
  for (int r = 0; r < R; ++r) {
    nets.push_back(std::make_unique<ResNet>(net_options(c)));
    nets.back()->train();
  }
  std::vector<std::vector<std::vector<double>>> weights(R);
  std::vector<double> losses(R);
  std::vector<std::thread> threads;
  for (int r = 0; r < R; ++r)
    threads.emplace_back([&, r] {
      std::unique_ptr<SGD> sgd = make_sgd(*nets[r], c);
      GradReducer reducer(group.comm(r), nets[r]->parameters());
      CommBatchNormGroup bn(group.comm(r));
      if (c.sync_bn) set_batch_norm_group(*nets[r], &bn);
      StepContext s;
      s.net = nets[r].get();
      s.sgd = sgd.get();
      s.head = c.head;
      s.comm = &group.comm(r);
      s.reducer = &reducer;
      s.sync_bn = c.sync_bn;
      s.bn_group = c.sync_bn ? &bn : nullptr;
      s.size = c.size;
      s.classes = 20;
      Batch part;
      const auto [b, e] = parts[r];
      if (e > b) {
        part.images = narrow(global.images, 0, b, e - b);
        part.targets = narrow(global.targets, 0, b, e - b);
        part.indices.assign(global.indices.begin() + b, global.indices.begin() + e);
      }
      losses[r] = train_step(s, part).loss;
      if (c.sync_bn) set_batch_norm_group(*nets[r], nullptr);
      for (const Tensor& p : nets[r]->parameters()) weights[r].push_back(p.to_vector());
    });
  for (std::thread& t : threads) t.join();
  for (int r = 1; r < R; ++r) CHECK(weights[r] == weights[0]);
  CHECK(losses[R - 1] == losses[0]);
  *loss = losses[0];
  return weights[0];
}

std::vector<std::vector<double>> one_process_step(const TrainConfig& c, const Batch& batch,
                                                  double* loss) {
  ResNet net(net_options(c));
  net.train();
  StandaloneStep step(net, c);
  *loss = step(batch).loss;
  std::vector<std::vector<double>> w;
  for (const Tensor& p : net.parameters()) w.push_back(p.to_vector());
  return w;
}

void check_same_weights(const std::vector<std::vector<double>>& a,
                        const std::vector<std::vector<double>>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    check_close(a[i], b[i], 1e-5, 1e-7);
  }
}

}  // namespace

TEST_CASE("train loop: train_step on thread-ranks with the gradient all-reduce makes the "
          "one-process update") {
  // The one-process twins of the mpirun tests: 2 ranks without synchronised batch norm train
  // like one process with 2 micro-batches; with it, like one process with the whole batch; a
  // rank with no image (a 1-image batch on 2 ranks) takes part with its placeholder.
  TrainConfig c = one_step_config("ranks");
  std::unique_ptr<VocDataset> set;
  const Batch batch = training_batch(c, 0, &set);  // 4 images
  double ranks_loss = 0, one_loss = 0;

  TrainConfig pieces = c;
  pieces.micro_batches = 2;
  const auto plain = ranks_step(c, batch, {{0, 2}, {2, 4}}, &ranks_loss);
  const auto plain_one = one_process_step(pieces, batch, &one_loss);
  check_same_weights(plain, plain_one);
  CHECK(ranks_loss == doctest::Approx(one_loss).epsilon(1e-6));

  TrainConfig sync = c;
  sync.sync_bn = true;
  INFO("2 ranks (3 + 1 images) with synchronised batch norm");
  const auto synced = ranks_step(sync, batch, {{0, 3}, {3, 4}}, &ranks_loss);
  check_same_weights(synced, one_process_step(c, batch, &one_loss));
  CHECK(ranks_loss == doctest::Approx(one_loss).epsilon(1e-6));

  Batch single;
  single.images = narrow(batch.images, 0, 0, 1);
  single.targets = narrow(batch.targets, 0, 0, 1);
  single.indices = {batch.indices[0]};
  INFO("2 ranks (1 + 0 images) with synchronised batch norm");
  const auto placeholder = ranks_step(sync, single, {{0, 1}, {1, 1}}, &ranks_loss);
  check_same_weights(placeholder, one_process_step(c, single, &one_loss));
  CHECK(ranks_loss == doctest::Approx(one_loss).epsilon(1e-6));
}
