// Data-parallel building blocks without mpirun: ranks as threads (dist/comm.h ThreadGroup).
// References are naive loops over the ranks' values and plain batch norm over the whole batch
// (itself gradient-checked), never the code under test.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "data/loader.h"
#include "data/synth.h"
#include "data/voc.h"
#include "dist/comm.h"
#include "dist/grad_reducer.h"
#include "dist/sync_batch_norm.h"
#include "layers/layers.h"
#include "layers/resnet.h"
#include "helpers.h"
#include "tensor/autograd.h"
#include "tensor/ops.h"

using namespace prm;
namespace fs = std::filesystem;

namespace {

// Runs body(rank) on R threads; a failed check inside a thread is reported by doctest.
void on_ranks(int R, const std::function<void(int)>& body) {
  std::vector<std::thread> threads;
  for (int r = 0; r < R; ++r) threads.emplace_back([&, r] { body(r); });
  for (std::thread& t : threads) t.join();
}

// Rows [b, e) of a host tensor as a new leaf.
Tensor rows(const Tensor& t, int64_t b, int64_t e, bool grad) {
  const std::vector<double> v = t.to_vector();
  const int64_t row = t.numel() / t.size(0);
  Shape shape = t.shape();
  shape[0] = e - b;
  Tensor out = Tensor::from_vector(std::vector<double>(v.begin() + b * row, v.begin() + e * row),
                                   shape, t.dtype());
  if (grad) out.set_requires_grad(true);
  return out;
}

std::vector<double> slice(const std::vector<double>& v, size_t b, size_t e) {
  return std::vector<double>(v.begin() + static_cast<long>(b), v.begin() + static_cast<long>(e));
}

}  // namespace

TEST_CASE("dist: shard_range splits a batch into contiguous parts, larger ones first") {
  for (size_t n : {0u, 1u, 2u, 5u, 7u, 16u})
    for (int R : {1, 2, 3, 4}) {
      size_t next = 0, largest = 0, smallest = n + 1;
      for (int r = 0; r < R; ++r) {
        const auto [b, e] = shard_range(n, r, R);
        CHECK(b == next);  // contiguous, in rank order
        CHECK(e >= b);
        if (r > 0) CHECK(e - b <= largest);  // never larger than an earlier part
        largest = std::max(largest, e - b);
        smallest = std::min(smallest, e - b);
        next = e;
      }
      CHECK(next == n);
      CHECK(largest - smallest <= 1);
    }
  // By hand: 5 over 3 ranks is 2, 2, 1; 1 over 2 ranks gives rank 0 the image.
  CHECK(shard_range(5, 2, 3) == std::pair<size_t, size_t>{4, 5});
  CHECK(shard_range(1, 0, 2) == std::pair<size_t, size_t>{0, 1});
  CHECK(shard_range(1, 1, 2) == std::pair<size_t, size_t>{1, 1});
}

TEST_CASE("dist: all-reduce over thread ranks, uneven sizes, a rank that holds zeros") {
  const int R = 3;
  ThreadGroup group(R);
  const std::vector<int64_t> sizes{1, 7, 1001};
  auto value = [](int r, size_t i) { return r == 1 ? 0.0 : (r + 1) * 0.5 + 0.001 * i; };
  on_ranks(R, [&](int r) {
    Comm& comm = group.comm(r);
    for (DType dt : {DType::f32, DType::f64})
      for (int64_t n : sizes) {
        std::vector<double> mine(static_cast<size_t>(n)), expected(static_cast<size_t>(n), 0.0);
        for (size_t i = 0; i < mine.size(); ++i) {
          mine[i] = value(r, i);
          for (int q = 0; q < R; ++q) expected[i] += value(q, i);
        }
        Tensor t = Tensor::from_vector(mine, {n}, dt);
        comm.all_reduce_sum(t);
        check_close(t, expected, dt == DType::f32 ? 1e-6 : 1e-15, 0);
      }
    double m[2] = {static_cast<double>(r), -static_cast<double>(r)};
    comm.all_reduce(m, 2, ReduceOp::max);
    CHECK(m[0] == R - 1);
    CHECK(m[1] == 0);
    std::string text = r == 2 ? "from rank 2" : "";
    comm.broadcast(text, 2);
    CHECK(text == "from rank 2");
  });
}

TEST_CASE("dist: GradReducer sums gradients bucket by bucket, in any readiness order") {
  const int R = 3;
  const std::vector<Shape> shapes{{3}, {5, 4}, {1}, {257}, {2, 2}};
  // Rank r's gradient of parameter k, element i; rank 2 gets no gradients at all (zeros).
  auto grad_value = [](int r, size_t k, size_t i) {
    return r == 2 ? 0.0 : std::sin(1.0 + r + 0.37 * k + 0.01 * i);
  };
  for (bool overlap : {true, false}) {
    CAPTURE(overlap);
    ThreadGroup group(R);
    on_ranks(R, [&](int r) {
      std::vector<Tensor> params;
      for (const Shape& s : shapes) {
        Tensor p = Tensor::zeros(s, DType::f64);
        p.set_requires_grad(true);
        params.push_back(p);
      }
      GradReducerOptions options;
      options.bucket_bytes = 64;  // several buckets
      options.overlap = overlap;
      GradReducer reducer(group.comm(r), params, options);
      CHECK(reducer.bucket_count() >= 3);
      for (int step = 0; step < 2; ++step) {
        reducer.begin();
        if (r != 2) {
          // Rank 0 reports in registration order, rank 1 in reverse: buckets still meet in order.
          for (size_t j = 0; j < params.size(); ++j) {
            const size_t k = r == 0 ? j : params.size() - 1 - j;
            std::vector<double> g(static_cast<size_t>(params[k].numel()));
            for (size_t i = 0; i < g.size(); ++i) g[i] = grad_value(r, k, i) * (step + 1);
            params[k].set_grad(Tensor::from_vector(g, params[k].shape(), DType::f64));
            reducer.on_grad_ready(params[k]);
          }
        } else {
          for (Tensor& p : params) p.zero_grad();
        }
        reducer.finish();
        for (size_t k = 0; k < params.size(); ++k) {
          std::vector<double> expected(static_cast<size_t>(params[k].numel()), 0.0);
          for (size_t i = 0; i < expected.size(); ++i)
            for (int q = 0; q < R; ++q) expected[i] += grad_value(q, k, i) * (step + 1);
          check_close(params[k].grad(), expected, 1e-15, 1e-15);
        }
      }
    });
  }
}

TEST_CASE("dist: the backward engine reports each leaf once, when its gradient is final") {
  // L = sum(w * x) + sum(w * w) + sum(b): w is used twice, b once, x needs no gradient.
  Tensor w = Tensor::from_vector({0.5, -1.5, 2.0}, {3}, DType::f64).set_requires_grad(true);
  Tensor b = Tensor::from_vector({1.0, 2.0}, {2}, DType::f64).set_requires_grad(true);
  Tensor x = Tensor::from_vector({3.0, 4.0, 5.0}, {3}, DType::f64);
  Tensor loss = add(add(sum(mul(w, x)), sum(mul(w, w))), sum(b));
  std::vector<std::string> reported;
  run_backward(loss, Tensor(), false, nullptr, [&](const Tensor& leaf) {
    if (&leaf.impl() == &w.impl()) {
      reported.push_back("w");
      check_close(leaf.grad(), {3.0 + 1.0, 4.0 - 3.0, 5.0 + 4.0}, 0, 1e-15);  // x + 2w: final
    } else if (&leaf.impl() == &b.impl()) {
      reported.push_back("b");
      check_close(leaf.grad(), {1.0, 1.0}, 0, 0);
    } else {
      reported.push_back("other");
    }
  });
  std::sort(reported.begin(), reported.end());
  CHECK(reported == std::vector<std::string>{"b", "w"});
}

namespace {

// Synchronised batch norm on R thread ranks holding rows [bounds[r], bounds[r+1]) of x (a rank
// with an empty range holds a placeholder image), checked against batch_norm over all of x.
void check_sync_batch_norm(const std::vector<int64_t>& bounds, int64_t C = 3, int64_t H = 2,
                           int64_t W = 3, DType dt = DType::f64, double tol = 1e-10) {
  const int R = static_cast<int>(bounds.size()) - 1;
  std::mt19937_64 rng(11);
  const int64_t N = bounds.back();
  const Tensor x = Tensor::randn({N, C, H, W}, rng, dt);
  const Tensor g = Tensor::randn({N, C, H, W}, rng, dt);
  const Tensor weight0 = Tensor::uniform({C}, 0.5, 1.5, rng, dt);
  const Tensor bias0 = Tensor::randn({C}, rng, dt);
  auto leaf = [](const Tensor& t) { return t.clone().detach().set_requires_grad(true); };

  // Reference: one batch norm over the whole batch, and its running buffers.
  Tensor xr = leaf(x), wr = leaf(weight0), br = leaf(bias0);
  Tensor rm = Tensor::zeros({C}, dt), rv = Tensor::full({C}, 1.0, dt);
  Tensor y = batch_norm(xr, wr, br, rm, rv, true, 0.1, 1e-5);
  y.backward(g);
  const std::vector<double> y_ref = y.to_vector(), dx_ref = xr.grad().to_vector();
  const int64_t row = x.numel() / N;

  ThreadGroup group(R);
  std::vector<std::vector<double>> dweight(R), dbias(R);
  on_ranks(R, [&](int r) {
    CommBatchNormGroup bn(group.comm(r));
    const int64_t b = bounds[r], e = bounds[r + 1];
    const bool placeholder = e == b;
    bn.set_samples(e - b, N);
    Tensor xs = placeholder ? Tensor::zeros({1, C, H, W}, dt).set_requires_grad(true)
                            : rows(x, b, e, true);
    Tensor gs = placeholder ? Tensor::zeros({1, C, H, W}, dt) : rows(g, b, e, false);
    Tensor w = leaf(weight0), bi = leaf(bias0);
    Tensor m = Tensor::zeros({C}, dt), v = Tensor::full({C}, 1.0, dt);
    Tensor ys = batch_norm(xs, w, bi, m, v, true, 0.1, 1e-5, &bn);
    ys.backward(gs);
    if (!placeholder) {
      check_close(ys, slice(y_ref, b * row, e * row), tol, tol);
      check_close(xs.grad(), slice(dx_ref, b * row, e * row), tol, tol);
    }
    // Every rank's running buffers move with the global statistics.
    check_close(m, rm.to_vector(), tol, tol);
    check_close(v, rv.to_vector(), tol, tol);
    dweight[r] = w.grad().to_vector();
    dbias[r] = bi.grad().to_vector();
  });
  // dweight and dbias are each rank's own sums: the gradient all-reduce adds them up.
  std::vector<double> dw(C, 0.0), db(C, 0.0);
  for (int r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      dw[c] += dweight[r][c];
      db[c] += dbias[r][c];
    }
  check_close(dw, wr.grad().to_vector(), tol, tol);
  check_close(db, br.grad().to_vector(), tol, tol);
}

}  // namespace

TEST_CASE("dist: synchronised batch norm on 2 ranks (3 + 2 images) equals batch norm on 5") {
  check_sync_batch_norm({0, 3, 5});
}

TEST_CASE("dist: synchronised batch norm with a rank that has no images (placeholder)") {
  check_sync_batch_norm({0, 2, 4, 4});
}

TEST_CASE("dist: synchronised batch norm at a ResNet layer's size (float32 and float64)") {
  check_sync_batch_norm({0, 4, 8}, 128, 6, 6, DType::f64, 1e-10);
  check_sync_batch_norm({0, 4, 8}, 128, 6, 6, DType::f32, 1e-4);
}

TEST_CASE("dist: sharded loaders give, in rank order, the unsharded batches") {
  const std::string dir =
      (fs::temp_directory_path() / ("prm_test_dist_voc_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  SynthOptions so;
  so.out = dir;
  so.train = 7;
  so.val = 1;
  so.size = 32;
  so.seed = 3;
  synthesize_voc(so);
  VocOptions vo;
  vo.root = dir;
  vo.split = "train";
  const VocDataset data(vo);
  LoaderOptions lo;
  lo.batch_size = 3;  // batches of 3, 3, 1
  lo.image_size = 32;
  lo.workers = 1;
  Loader whole(data, lo);
  std::vector<std::unique_ptr<Loader>> parts;
  for (int r = 0; r < 2; ++r) {
    LoaderOptions o = lo;
    o.shard_rank = r;
    o.shard_count = 2;
    parts.push_back(std::make_unique<Loader>(data, o));
  }
  whole.start_epoch(4);
  for (auto& p : parts) p->start_epoch(4);
  Batch full;
  int batches = 0;
  while (whole.next(full)) {
    std::vector<size_t> joined;
    std::vector<double> pixels;
    for (int r = 0; r < 2; ++r) {
      Batch b;
      REQUIRE(parts[r]->next(b));
      CHECK(b.index == full.index);
      joined.insert(joined.end(), b.indices.begin(), b.indices.end());
      if (b.images.defined()) {
        const std::vector<double> v = b.images.to_vector();
        pixels.insert(pixels.end(), v.begin(), v.end());
      } else {
        CHECK(b.indices.empty());  // the last batch of 1: rank 1's part is empty
      }
    }
    CHECK(joined == full.indices);
    check_close(pixels, full.images.to_vector(), 0, 0);  // the same flips: keyed by the sample
    ++batches;
  }
  CHECK(batches == 3);
  for (auto& p : parts) {
    Batch b;
    CHECK_FALSE(p->next(b));
  }
  fs::remove_all(dir);
}

TEST_CASE("dist: a ResNet with synchronised batch norm on 2 thread-ranks has the 1-rank gradients") {
  // float64, the whole network at 192 px (layer4 is 6x6): ranks hold images [0, 2) and [2, 4),
  // each back-propagates sum(CRM * G) over its images; the sum of the ranks' parameter gradients
  // must be the one-process gradient of the 4 images. (In float32 the same check agrees to 2e-6.)
  const int64_t N = 4, S = 192;
  std::mt19937_64 rng(3);
  const Tensor x = Tensor::randn({N, 3, S, S}, rng, DType::f64);
  ResNetOptions o;
  o.arch = "resnet18";
  o.width = 8;
  o.num_classes = 3;
  auto make = [&] {
    auto net = std::make_unique<ResNet>(o);
    net->to(DType::f64);
    net->train();
    return net;
  };
  auto one = make();
  const Tensor crm_all = one->forward(x);
  const Tensor G = Tensor::randn(crm_all.shape(), rng, DType::f64);
  sum(mul(crm_all, G)).backward();
  const NamedTensors ref = one->named_parameters();

  ThreadGroup group(2);
  std::vector<std::unique_ptr<ResNet>> nets;
  for (int r = 0; r < 2; ++r) nets.push_back(make());
  on_ranks(2, [&](int r) {
    CommBatchNormGroup bn(group.comm(r));
    bn.set_samples(2, N);
    set_batch_norm_group(*nets[r], &bn);
    const Tensor crm = nets[r]->forward(rows(x, 2 * r, 2 * r + 2, false));
    sum(mul(crm, rows(G, 2 * r, 2 * r + 2, false))).backward();
    set_batch_norm_group(*nets[r], nullptr);
  });
  const NamedTensors p0 = nets[0]->named_parameters(), p1 = nets[1]->named_parameters();
  REQUIRE(p0.size() == ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    CAPTURE(ref[i].first);
    const std::vector<double> a = p0[i].second.grad().to_vector(),
                              b = p1[i].second.grad().to_vector();
    std::vector<double> both(a.size());
    for (size_t j = 0; j < a.size(); ++j) both[j] = a[j] + b[j];
    check_close(both, ref[i].second.grad().to_vector(), 1e-10, 1e-12);
  }
}

TEST_CASE("dist: one GPU per local rank; more ranks than GPUs on a node is refused by name") {
  CHECK(pick_local_gpu(0, 1, 1) == 0);
  CHECK(pick_local_gpu(3, 4, 8) == 3);
  CHECK(pick_local_gpu(1, 2, 2) == 1);
  // Two ranks on a one-GPU machine: the first rank would have shared GPU 0 with the second
  // (local_rank % count), which NCCL refuses; both must stop with the counts named.
  for (int r = 0; r < 2; ++r) {
    try {
      pick_local_gpu(r, 2, 1);
      FAIL("2 ranks on 1 GPU accepted");
    } catch (const Error& e) {
      const std::string m = e.what();
      CHECK(m.find("2 ranks on this node") != std::string::npos);
      CHECK(m.find("1 CUDA device:") != std::string::npos);
      CHECK(m.find("start at most 1 rank per node (mpirun -np 1 on one machine)") !=
            std::string::npos);
    }
  }
  CHECK_THROWS_WITH_AS(pick_local_gpu(0, 3, 2),
                       doctest::Contains("3 ranks on this node, which has 2 CUDA devices: "),
                       Error);
  CHECK_THROWS_WITH_AS(pick_local_gpu(0, 3, 2), doctest::Contains("start at most 2 ranks per node"),
                       Error);
  CHECK_THROWS_AS(pick_local_gpu(0, 1, 0), Error);
  CHECK_THROWS_AS(pick_local_gpu(2, 2, 4), Error);
}

TEST_CASE("dist: shutdown_world ends the process group; world() afterwards starts a new one") {
  Comm& first = world();
  CHECK(world_initialised());
  CHECK(first.size() == 1);
  shutdown_world();
  CHECK_FALSE(world_initialised());
  shutdown_world();  // twice is harmless
  CHECK_FALSE(world_initialised());
  CHECK(world().size() == 1);
  CHECK(world_initialised());
}
