// The C++ half of tools/bench_coco_eval.py (not part of the build or the tests): reads the
// synthetic problem the script wrote, times prm::coco::evaluate_segm on it, prints one JSON line
// per thread count:
//   {"threads": 1, "read_s": .., "strings_s": .., "eval_s": .., "eval_cpu_s": .., "stats": [..]}
// read_s: reading the text file; strings_s: decoding every compressed RLE string; eval_s:
// evaluate_segm (IoUs, matching, accumulation, summary), the part compared with pycocotools'
// evaluate() + accumulate(), in wall-clock seconds; eval_cpu_s: the same in CPU seconds of the
// process, all threads together (on a busy machine, the fairer figure for one thread).
//
// Input lines (whitespace-separated; scores and areas written by Python's repr, so exact):
//   I <image id>                        an image to evaluate
//   C <category id>                     a category to evaluate
//   G <id> <image> <category> <iscrowd> <area> <h> <w> <counts string>
//   D <image> <category> <score> <h> <w> <counts string>
//
//   g++ -std=c++17 -O3 -march=native -fopenmp -Isrc tools/bench_coco_eval.cpp BUILD/libprm.a
//   ./a.out problem.txt 1 2        (thread counts)
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "data/coco_eval.h"
#include "tensor/error.h"

using namespace prm::coco;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Problem {
  std::vector<int64_t> images, categories;
  std::vector<GroundTruth> gts;
  std::vector<Detection> dts;
  std::vector<std::string> gt_strings, dt_strings;
};

Problem read_problem(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw prm::Error("cannot open " + path);
  Problem p;
  std::string line, tag;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    s >> tag;
    if (tag == "I") {
      int64_t id;
      s >> id;
      p.images.push_back(id);
    } else if (tag == "C") {
      int64_t id;
      s >> id;
      p.categories.push_back(id);
    } else if (tag == "G") {
      GroundTruth g;
      int crowd;
      std::string area;
      s >> g.id >> g.image_id >> g.category_id >> crowd >> area >> g.mask.h >> g.mask.w;
      g.iscrowd = crowd != 0;
      g.area = std::strtod(area.c_str(), nullptr);
      p.gt_strings.emplace_back();
      s >> p.gt_strings.back();
      p.gts.push_back(std::move(g));
    } else if (tag == "D") {
      Detection d;
      std::string score;
      s >> d.image_id >> d.category_id >> score >> d.mask.h >> d.mask.w;
      d.score = std::strtod(score.c_str(), nullptr);
      p.dt_strings.emplace_back();
      s >> p.dt_strings.back();
      p.dts.push_back(std::move(d));
    }
    if (!s) throw prm::Error("bad line in " + path + ": " + line.substr(0, 80));
  }
  return p;
}

void decode_strings(Problem& p) {
#pragma omp parallel for schedule(dynamic, 1024)
  for (int64_t n = 0; n < int64_t(p.gts.size()); ++n)
    p.gts[n].mask = rle_from_string(p.gt_strings[n], p.gts[n].mask.h, p.gts[n].mask.w);
#pragma omp parallel for schedule(dynamic, 1024)
  for (int64_t n = 0; n < int64_t(p.dts.size()); ++n)
    p.dts[n].mask = rle_from_string(p.dt_strings[n], p.dts[n].mask.h, p.dts[n].mask.w);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: bench_coco_eval PROBLEM.txt THREADS...\n";
    return 2;
  }
  try {
    const auto t0 = std::chrono::steady_clock::now();
    Problem p = read_problem(argv[1]);
    const double read_s = seconds_since(t0);
    for (int a = 2; a < argc; ++a) {
      const int threads = std::atoi(argv[a]);
      omp_set_num_threads(threads);
      const auto t1 = std::chrono::steady_clock::now();
      decode_strings(p);
      const double strings_s = seconds_since(t1);
      const auto t2 = std::chrono::steady_clock::now();
      const std::clock_t c2 = std::clock();
      const SegmEvaluation e = evaluate_segm(p.gts, p.dts, p.images, p.categories);
      const double eval_cpu_s = double(std::clock() - c2) / CLOCKS_PER_SEC;
      const double eval_s = seconds_since(t2);
      std::printf("{\"threads\": %d, \"read_s\": %.3f, \"strings_s\": %.3f, \"eval_s\": %.3f, "
                  "\"eval_cpu_s\": %.3f, \"gts\": %zu, \"dts\": %zu, \"stats\": [",
                  threads, read_s, strings_s, eval_s, eval_cpu_s, p.gts.size(), p.dts.size());
      for (size_t i = 0; i < e.stats.size(); ++i)
        std::printf("%s%.17g", i ? ", " : "", e.stats[i]);
      std::printf("]}\n");
      std::fflush(stdout);
    }
  } catch (const prm::Error& e) {
    std::cerr << "bench_coco_eval: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
