#!/usr/bin/env python3
"""Mutation check: plants plausible one-line bugs in a scratch copy of the repository, one at a
time, and reports which ones the test suite catches. Run by hand, not by CI (python3 stdlib only).

A surviving mutant is a missing test (or, rarely, a change that cannot alter any result: say so
next to it in MUTATIONS). Add a mutation next to every op or metric you write, so that it is born
with tests that can fail.

How it works: the files of the repository (`git ls-files` plus untracked files git does not
ignore; or the files of one commit with --rev) are copied to SCRATCH/tree, once, and later runs
only rewrite the files that changed, so the CPU-only build there (`make -j2 USE_CUDA=0
BUILD=build`) stays incremental. The unmutated tree is built and tested first (the baseline must
pass). Then for each mutation: apply it, rebuild, run tools/run_tests.sh, restore the file.

  caught    the suite failed (or timed out, or crashed) with the mutant in place
  survived  the whole suite passed: a missing test
  stale     the pattern was not found (the code moved on): update or drop the mutation
  invalid   the mutant does not compile (not a test result; make the mutation compile)

Usage:
  tools/mutate.py                 all mutations on the working tree
  tools/mutate.py --list          list them, with whether each pattern still matches
  tools/mutate.py --only 3,7      only mutations 3 and 7 (1-based, as --list numbers them)
  tools/mutate.py --rev HEAD      mutate the files of a commit instead of the working tree
  tools/mutate.py --keep          keep SCRATCH (tree and build) for the next run
  tools/mutate.py --also-without='guards*'   also say which mutants only those tests catch
Exit status: 0 when nothing survived and nothing is stale or invalid, 1 otherwise.
"""
import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Site:
    """One place a mutation can be made: edits (pattern, replacement) all applied to `path`,
    each pattern matching exactly once."""
    path: str
    edits: List[Tuple[str, str]]
    regex: bool = False


@dataclass
class Mutation:
    description: str
    sites: List[Site]  # alternatives (e.g. before and after a refactor): the first that applies


def S(path: str, pattern: str, replacement: str, *more: str, regex: bool = False) -> Site:
    """S(path, pat, rep[, pat2, rep2 ...]): a site with one or more edits."""
    pairs = [(pattern, replacement)] + list(zip(more[0::2], more[1::2]))
    return Site(path, pairs, regex)


def R(path: str, pattern: str, replacement: str, *more: str) -> Site:
    """A site whose patterns are regular expressions (replacement may use \\1)."""
    return S(path, pattern, replacement, *more, regex=True)


def M(description: str, *sites: Site) -> Mutation:
    return Mutation(description, list(sites))


IM2COL = ["src/kernels/cpu/im2col.cpp", "src/kernels/im2col.h"]

MUTATIONS: List[Mutation] = [
    # ---- the six survivors of issue 11 ----
    M("col2im: column phase with +pad (wrong when 2*pad is not a multiple of stride >= 3)",
      *[S(p, "((kj * w.dilation - w.pad) % w.stride", "((kj * w.dilation + w.pad) % w.stride")
        for p in IM2COL]),
    M("im2col/col2im: the stride-2 fast path (dilation forced to 1) taken with dilation 2",
      S(IM2COL[0], "win.dilation == 1 && win.stride == 2", "win.stride == 2"),
      S(IM2COL[1], "if (win.dilation != 1) return 0;",
        "if (win.dilation != 1 && win.stride != 2) return 0;")),
    M("safetensors: a gap is only checked before the first tensor",
      R("src/data/safetensors.cpp", r"PRM_CHECK\(e\.begin == at,",
        "PRM_CHECK(!previous ? e.begin == at : true,")),
    M("VOC AP: precision not made monotone (running maximum from the right skipped)",
      S("src/data/metrics.cpp", "for (size_t i = mpre.size() - 1; i-- > 0;)",
        "for (size_t i = 0; i-- > 0;)")),
    M("mask IoU: void pixels where both masks are on still counted",
      S("src/data/metrics.cpp", "if (void_mask && void_mask[i]) continue;",
        "if (void_mask && void_mask[i] && !(a[i] && b[i])) continue;")),
    M("VOC dataset: difficult objects always dropped from the targets",
      S("src/data/voc.cpp", "if (!(o.difficult && options_.exclude_difficult))",
        "if (!o.difficult)")),
    M("VOC dataset: exclude_difficult ignored (difficult objects always positive)",
      S("src/data/voc.cpp", "if (!(o.difficult && options_.exclude_difficult))",
        "if (!(o.difficult && options_.skip_bad))")),
    # ---- relu, max-pool ties, SGD's weight decay, autograd reuse ----
    M("relu backward: gradient 1 at exactly 0",
      S("src/kernels/elementwise_math.h", "return inp > T(0) ? dout : T(0);",
        "return inp >= T(0) ? dout : T(0);")),
    M("max-pool: the last maximum wins ties",
      S("src/kernels/pooling_math.h", "const bool take = v > best || v != v;",
        "const bool take = v >= best || v != v;")),
    M("SGD: weight decay added after momentum (to the step, not to the buffer)",
      S("src/kernels/sgd_math.h",
        "if (h.weight_decay != T(0)) d += h.weight_decay * param;", "",
        "param -= h.lr * d;", "param -= h.lr * (d + h.weight_decay * param);")),
    M("SGD: weight decay skips the dampening of the buffer",
      S("src/kernels/sgd_math.h", "(T(1) - h.dampening) * d;",
        "(T(1) - h.dampening) * g + (d - g);")),
    M("SGD: nesterov looks ahead with the raw gradient, not the decayed one",
      S("src/kernels/sgd_math.h", "d = h.nesterov ? d + h.momentum * b : b;",
        "d = h.nesterov ? g + h.momentum * b : b;")),
    M("autograd: a second gradient reaching an intermediate tensor replaces the first",
      S("src/tensor/autograd.cpp", "slot->second = sum_of(slot->second, grads[i]);",
        # sum_of stays referenced: unused, it would not compile (-Werror).
        "slot->second = (false) ? sum_of(slot->second, grads[i]) : grads[i];")),
    M("autograd: summing two gradients writes into the first (shared with another edge)",
      S("src/tensor/autograd.cpp",
        "Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());\n  Strides flat;",
        "Tensor out = a;\n  Strides flat;")),
    M("autograd: a leaf's first gradient is kept by reference, not copied",
      S("src/tensor/autograd.cpp", "impl.grad = grad.detach().clone().impl_ptr();",
        "impl.grad = grad.detach().impl_ptr();")),
    M("autograd: topological sort without the visited set (a node runs once per path)",
      S("src/tensor/autograd.cpp", "if (child && visited.insert(child.get()).second)",
        "if (child && (visited.insert(child.get()), true))")),
    # Left out, equivalent today: dropping the engine's `!input.requires_grad()` test changes
    # nothing while every op returns undefined gradients for inputs that need none (the guard
    # "tensors that do not require grad get no gradient" checks that contract op by op).
    # ---- more plausible one-line bugs: metrics ----
    M("metrics: recall divided by the number of retrieved entries instead of the positives",
      S("src/data/metrics.cpp",
        "static_cast<double>(tp) / static_cast<double>(positives)",
        "static_cast<double>(tp) / static_cast<double>(tp + fp)")),
    M("metrics: AP area uses the precision of the previous recall step",
      S("src/data/metrics.cpp", "ap += (mrec[i] - mrec[i - 1]) * mpre[i];",
        "ap += (mrec[i] - mrec[i - 1]) * mpre[i - 1];")),
    M("metrics: classification counts difficult-only images as positives",
      S("src/data/metrics.cpp", "positives += l > 0;", "positives += l >= 0;")),
    M("metrics: pointwise positives include difficult boxes",
      S("src/data/metrics.cpp", "positives += b.class_id == c && !b.difficult;",
        "positives += b.class_id == c;")),
    M("metrics: pointwise tolerance box open on the right",
      S("src/data/metrics.cpp", "p.x <= b.xmax - 1 + tolerance", "p.x < b.xmax - 1 + tolerance")),
    M("metrics: pointwise point on a difficult box counted as a false positive",
      R("src/data/metrics.cpp", r"\} else if \(hits_difficult([^)]*)\) \{",
        r"} else if (hits_difficult\1 && false) {")),
    M("metrics: instance match needs IoU strictly above the threshold",
      S("src/data/metrics.cpp", "p.iou[best] >= iou_threshold", "p.iou[best] > iou_threshold")),
    M("metrics: instance matching allows one ground truth to be matched twice",
      S("src/data/metrics.cpp", "p.iou[best] >= iou_threshold && !matched[r.image][best]",
        "p.iou[best] >= iou_threshold")),
    M("metrics: mask IoU treats only void value 1 as void (VOC's void is 255)",
      S("src/data/metrics.cpp", "if (void_mask && void_mask[i]) continue;",
        "if (void_mask && void_mask[i] == 1) continue;")),
    M("metrics: semantic IoU without subtracting the true positives from the union",
      S("src/data/metrics.cpp", "static_cast<double>(tp) / static_cast<double>(gt + pred - tp)",
        "static_cast<double>(tp) / static_cast<double>(gt + pred)")),
    M("metrics: semantic painting lets the lowest score win a pixel",
      S("src/data/metrics.cpp", "return scores[a] < scores[b];", "return scores[a] > scores[b];"),
      S("src/data/metrics.cpp", "return scores[a] > scores[b];", "return scores[a] < scores[b];")),
    M("metrics: ABO takes the best overlap over predictions of any class",
      S("src/data/metrics.cpp",
        "if (p.class_id == im.gt_class[j]) best = std::max(best, p.iou[j]);",
        "best = std::max(best, p.iou[j]);")),
    # ---- VOC ----
    M("VOC: <difficult> read from <truncated>",
      S("src/data/voc.cpp", 'obj.difficult = flag_child(o, "difficult", source);',
        'obj.difficult = flag_child(o, "truncated", source);')),
    M("VOC: a one-pixel-wide box (xmin == xmax) rejected",
      S("src/data/voc.cpp", "PRM_CHECK(b.xmin <= b.xmax && b.ymin <= b.ymax",
        "PRM_CHECK(b.xmin < b.xmax && b.ymin <= b.ymax")),
    M("VOC: the instance's class vote never considers the last class",
      S("src/data/voc.cpp", "for (int c = 1; c <= num_classes; ++c)",
        "for (int c = 1; c < num_classes; ++c)")),
    M("VOC: split list keeps the per-class label column as an id",
      S("src/data/voc.cpp", "if (ls >> id) ids.push_back(id);",
        "if (ls >> id) ids.push_back(line);")),
    # ---- safetensors ----
    M("safetensors: more bytes than the shape needs accepted",
      S("src/data/safetensors.cpp", "PRM_CHECK(e.end - e.begin == bytes,",
        "PRM_CHECK(e.end - e.begin >= bytes,")),
    M("safetensors: bytes after the last tensor accepted",
      S("src/data/safetensors.cpp", "PRM_CHECK(at == buffer,", "PRM_CHECK(at <= buffer,")),
    M("safetensors: a header length running up to 8 bytes past the end accepted",
      S("src/data/safetensors.cpp", "PRM_CHECK(n <= bytes.size() - 8,",
        "PRM_CHECK(n <= bytes.size(),")),
    M("safetensors: half-precision exponent rebias off by one",
      S("src/data/safetensors.cpp", "bits = sign | ((exp + 112) << 23) | (mant << 13);",
        "bits = sign | ((exp + 111) << 23) | (mant << 13);")),
    # ---- ops (being refactored: these may go stale) ----
    M("conv2d: an input exactly as large as the dilated kernel rejected",
      S("src/tensor/ops/conv2d.cpp", "d.H + 2 * opt.padding >= reach_h",
        "d.H + 2 * opt.padding > reach_h")),
    M("conv2d: weight gradient overwritten per image instead of summed (GEMM beta 0)",
      S("src/tensor/ops/conv2d.cpp", "const T beta = n0 == 0 ? T(0) : T(1);",
        "const T beta = T(0);")),
    M("max_pool2d: an input exactly as large as the kernel rejected",
      S("src/tensor/ops/pooling.cpp", "H + 2 * padding >= kernel", "H + 2 * padding > kernel")),
    M("sub: the second operand's gradient not negated",
      S("src/tensor/ops/elementwise.cpp", "sum_to(mul_scalar(g, -1.0), ", "sum_to(g, ")),
    M("mean over dims: divided by the element count of every dim",
      S("src/tensor/ops/reduce.cpp", "if (reduced[d]) count *= x.shape()[d];",
        "count *= x.shape()[d];")),
    # ---- PRM core: peak stimulation, excitation backprop, batched cotangents ----
    M("peaks: ties go to the last maximum of the window (>= instead of >)",
      S("src/kernels/peaks_math.h", "if (p[yy * W + xx] > p[best]) best",
        "if (p[yy * W + xx] >= p[best]) best")),
    M("peaks: the median one past the lower middle (off by one)",
      S("src/kernels/cpu/peaks.cpp", "sorted.begin() + (HW - 1) / 2;", "sorted.begin() + HW / 2;")),
    M("peaks: kept peaks strictly above the median",
      S("src/kernels/cpu/peaks.cpp", "x[i] >= median && is_local_peak", "x[i] > median && is_local_peak")),
    M("peak backward: the mean and official rules swapped",
      S("src/kernels/peaks_math.h", "(mean_grad ? dscore / count : dscore)",
        "(mean_grad ? dscore : dscore / count)")),
    M("excitation: inputs not shifted by their minimum",
      S("src/tensor/ops/conv2d.cpp", "const Tensor x_hat = sub(x, min_all(x));",
        "const Tensor x_hat = x;")),
    # (Not a mutant: dropping the Z < 1e-10 mask is equivalent in exact arithmetic, since Z = 0
    # means every Û W+ product of that output is 0, so its spread is multiplied away by Û.)
    M("excitation: W+ is the weight itself (negative weights kept)",
      S("src/tensor/ops/conv2d.cpp", "const Tensor w_plus = relu_forward(weight);",
        "const Tensor w_plus = weight;")),
    M("batched cotangents: the argmax of the first gradient only (not repeated for each K)",
      S("src/tensor/ops/pooling.cpp", "device_copy(static_cast<char*>(argmax.raw_data()) + k * bytes,",
        "device_copy(static_cast<char*>(argmax.raw_data()) + 0 * k * bytes,")),
    M("PRM: negative input gradients kept (no clamp at 0)",
      S("src/prm/peak_backprop.cpp", "Tensor summed = relu_forward(sum(g, {1}));",
        "Tensor summed = sum(g, {1});")),
    M("conv weight gradient, chunked: each chunk's sum overwrites dW (beta 0 after the first)",
      S("src/tensor/ops/conv2d.cpp", "launch<Gemm, T>(dev, false, false, 1, OK, nb, T(1), ones.data<T>(), nb, partial.data<T>(), OK,\n                    beta, dw, OK);",
        "launch<Gemm, T>(dev, false, false, 1, OK, nb, T(1), ones.data<T>(), nb, partial.data<T>(), OK,\n                    T(0), dw, OK);")),
    # ---- data-parallel training (src/dist, docs/scaling.md) ----
    M("sync BN: pooled variance without the between-rank term (m_r - mean)^2",
      S("src/tensor/ops/batch_norm.cpp", "mul_scalar_forward(add(var, mul(d, d)), w);",
        "mul_scalar_forward(var, w);")),
    M("sync BN: the backward's dx uses this rank's sums (no group sum)",
      S("src/tensor/ops/batch_norm.cpp", "      saved.group->sum(group_sums);\n", "")),
    M("sync BN: dx divided by the local M, not the group's",
      S("src/tensor/ops/batch_norm.cpp", "      M = saved.group_values;", "      M = N * HW;")),
    M("shard_range: the larger parts last",
      S("src/data/loader.cpp", "const size_t begin = r * base + std::min(r, extra);",
        "const size_t begin = r * base + (r + extra > R ? r + extra - R : 0);",
        "return {begin, begin + base + (r < extra ? 1 : 0)};",
        "return {begin, begin + base + (r + extra >= R ? 1 : 0)};")),
    M("train: every rank's loss seeded with 1 / R instead of its share of the batch",
      S("src/prm/train.cpp", "static_cast<double>(n) / count, loss.dtype(),",
        "1.0 / comm.size() / c.micro_batches, loss.dtype(),")),
    M("grad reducer: a parameter without gradient leaves stale values in its bucket (not zeros)",
      S("src/dist/grad_reducer.cpp", "  if (!g.defined()) g = Tensor::zeros(p.shape(), p.dtype(), p.device());",
        "  if (!g.defined()) return;")),
    M("backward engine: leaves reported on their first gradient, not their last",
      S("src/tensor/autograd.cpp", "if (--leaf_edges[&input.impl()] == 0) on_leaf_ready(input);",
        "if (leaf_edges[&input.impl()]-- == 2 || leaf_edges[&input.impl()] == 0) on_leaf_ready(input);")),
    # ---- fused batch-norm epilogue and one-pass statistics (docs/batch_norm.md) ----
    M("batch_norm_act: the ReLU gate left out of the backward reductions (dweight, dbias)",
      S("src/kernels/cpu/batch_norm.cpp", "gated[k] = relu_grad(g[k], r[k]);", "gated[k] = r[k] == r[k] ? g[k] : g[k];")),
    M("batch_norm_act: the residual's gradient not gated by the ReLU",
      S("src/kernels/batch_norm.h", "if (dres != nullptr) dres[i] = d;",
        "if (dres != nullptr) dres[i] = dout[i];")),
    M("batch_norm_act: the gate read at the kink as >= 0",
      S("src/kernels/batch_norm_math.h", "return relu_out != nullptr ? relu_grad(dout, relu_out[i]) : dout;",
        "return relu_out != nullptr ? (relu_out[i] >= T(0) ? dout : T(0)) : dout;")),
    M("batch_norm_act: batched cotangents skip the gate",
      S("src/tensor/ops/batch_norm.cpp",
        "const Tensor d = saved.relu_out.defined() ? relu_backward(g, saved.relu_out) : g;",
        "const Tensor d = g;")),
    M("max-pool backward (CPU scatter): an input picked by two windows keeps only the last one's gradient",
      S("src/kernels/cpu/pooling.cpp", "d[picked[o]] += g[o];", "d[picked[o]] = g[o];")),
    M("max-pool forward: the window's row taken from the plane index (row / OH) instead of row % OH",
      S("src/kernels/pooling.h", "max_pool2d_window(row % OH, ow,", "max_pool2d_window(row / OH, ow,")),
    M("im2col: the last column that reads x left out (floor without the + 1)",
      S("src/kernels/im2col_math.h", "(W - 1 - x0) / win.stride + 1;", "(W - 1 - x0) / win.stride;")),
    M("im2col: the first column that reads x rounded down instead of up",
      S("src/kernels/im2col_math.h", "(-x0 + win.stride - 1) / win.stride;", "(-x0) / win.stride;")),
    M("batch-norm statistics: blocks merged without the between-block term delta^2",
      S("src/kernels/batch_norm_math.h", "a.m2 + b.m2 + delta * delta * a.n * wb",
        "a.m2 + b.m2")),
    M("batch-norm statistics: sum of squares in one pass (E[x^2] - mean^2 in double)",
      S("src/kernels/batch_norm_math.h",
        "for (int k = 0; k < count; ++k) m2 += (v[k] - mean) * (v[k] - mean);",
        "for (int k = 0; k < count; ++k) m2 += double(v[k]) * v[k];\n  m2 -= count * mean * mean;")),
]


# ---- sources ----

def run(cmd: List[str], cwd: str, timeout: Optional[float] = None,
        env: Optional[Dict[str, str]] = None) -> Tuple[int, str]:
    """Runs cmd, returns (exit status, stdout+stderr); 124 on timeout."""
    try:
        p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, env=env)
        return p.returncode, p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if e.stdout else ""
        return 124, out + f"\n(timed out after {timeout} s)"


def load_sources(rev: Optional[str]) -> Dict[str, Tuple[bytes, int]]:
    """path -> (content, mode) of the working tree's files, or of commit `rev`."""
    files: Dict[str, Tuple[bytes, int]] = {}
    if rev:
        p = subprocess.run(["git", "archive", "--format=tar", rev], cwd=REPO,
                           stdout=subprocess.PIPE, check=True)
        with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tar:
            for m in tar.getmembers():
                if m.isfile():
                    files[m.name] = (tar.extractfile(m).read(), m.mode)
        return files
    p = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       cwd=REPO, stdout=subprocess.PIPE, check=True)
    for rel in sorted(set(p.stdout.decode().split("\0")) - {""}):
        full = os.path.join(REPO, rel)
        if os.path.isfile(full) and not os.path.islink(full):  # deleted files are skipped
            with open(full, "rb") as f:
                files[rel] = (f.read(), os.stat(full).st_mode & 0o777)
    return files


def write_if_changed(path: str, data: bytes, mode: int) -> bool:
    """Writes only when the content differs, so make sees new mtimes on changed files only."""
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return False
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return True


def sync_tree(tree: str, files: Dict[str, Tuple[bytes, int]]) -> int:
    """Makes `tree` hold exactly `files` (build/ untouched). Returns how many files changed."""
    changed = sum(write_if_changed(os.path.join(tree, rel), data, mode)
                  for rel, (data, mode) in files.items())
    for root, dirs, names in os.walk(tree):
        rel_root = os.path.relpath(root, tree)
        if rel_root == ".":
            dirs[:] = [d for d in dirs if d != "build"]
        for n in names:
            rel = os.path.normpath(os.path.join(rel_root, n))
            if rel not in files:
                os.remove(os.path.join(root, n))
                changed += 1
    return changed


# ---- applying a mutation ----

def count_matches(text: str, pattern: str, regex: bool) -> int:
    return len(re.findall(pattern, text)) if regex else text.count(pattern)


def plan(mutation: Mutation, files: Dict[str, Tuple[bytes, int]]) -> Tuple[Optional[Site], str]:
    """The first site whose file exists and whose every pattern matches exactly once."""
    why = []
    for site in mutation.sites:
        if site.path not in files:
            why.append(f"{site.path}: no such file")
            continue
        text = files[site.path][0].decode()
        counts = [count_matches(text, p, site.regex) for p, _ in site.edits]
        if all(c == 1 for c in counts):
            return site, ""
        why.append(f"{site.path}: pattern matches {counts} times (need 1 each)")
    return None, "; ".join(why)


def mutate_text(text: str, site: Site) -> str:
    for pattern, replacement in site.edits:
        if site.regex:
            text = re.sub(pattern, replacement, text, count=1)
        else:
            text = text.replace(pattern, replacement, 1)
    return text


# ---- build and test ----

def build(tree: str, jobs: int, timeout: float) -> Tuple[bool, str]:
    rc, out = run(["make", f"-j{jobs}", "USE_CUDA=0", "BUILD=build", "build/prm_tests",
                   "build/prm"], tree, timeout)
    return rc == 0, out


def failing_cases(out: str) -> List[str]:
    """Names of the doctest cases that reported errors or crashed."""
    names = []
    for block in out.split("=" * 79):
        m = re.search(r"^TEST CASE:\s+(.*)$", block, re.M)
        # doctest's own failure lines ("file:line: ERROR: ...", "FATAL ERROR: ... CRASHED"),
        # not just any word: the tests' stderr is interleaved with doctest's report.
        if m and re.search(r"^\S+:\d+: (FATAL )?ERROR:|^\S+:\d+: .*THREW exception|CRASHED",
                           block, re.M):
            name = m.group(1).strip()
            if name not in names:
                names.append(name)
    return names


def test(tree: str, doctest_args: List[str], timeout: float) -> Tuple[int, str]:
    env = dict(os.environ, PRM_BIN=os.path.join(tree, "build", "prm"))
    env.pop("PRM_REQUIRE_GPU", None)
    return run(["bash", "tools/run_tests.sh", "build/prm_tests"] + doctest_args, tree, timeout,
               env)


def summary_line(out: str) -> str:
    lines = [l for l in out.splitlines() if l.startswith("tests: ")]
    return lines[-1] if lines else "(no summary line)"


# ---- main ----

def parse_only(spec: Optional[str], n: int) -> List[int]:
    if not spec:
        return list(range(1, n + 1))
    picked = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            picked.extend(range(int(a), int(b) + 1))
        elif part.strip():
            picked.append(int(part))
    bad = [i for i in picked if not 1 <= i <= n]
    if bad:
        sys.exit(f"mutate.py: --only {spec}: no mutation {bad} (there are {n})")
    return picked


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--only", help="mutations to run: 3 or 3,7 or 2-5 (1-based)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the scratch tree and build for the next run")
    ap.add_argument("--rev", help="mutate the files of this commit instead of the working tree")
    ap.add_argument("--scratch", default="/tmp/prm-mutate", help="scratch folder")
    ap.add_argument("--jobs", type=int, default=2, help="make -j (default 2)")
    ap.add_argument("--build-timeout", type=float, default=1800)
    ap.add_argument("--test-timeout", type=float, default=600)
    ap.add_argument("--doctest-args", default="",
                    help="extra arguments for the test binary, e.g. '-tce=guards*'")
    ap.add_argument("--also-without", metavar="PATTERN",
                    help="for each caught mutant, also run the suite without the test cases "
                         "matching PATTERN (doctest -tce) and say whether they alone caught it")
    args = ap.parse_args()

    files = load_sources(args.rev)
    picked = parse_only(args.only, len(MUTATIONS))
    source = f"commit {args.rev}" if args.rev else "the working tree"

    if args.list:
        for i in picked:
            m = MUTATIONS[i - 1]
            site, why = plan(m, files)
            where = site.path if site else f"STALE ({why})"
            print(f"{i:3d}. {m.description}\n     {where}")
        return 0

    tree = os.path.join(args.scratch, "tree")
    os.makedirs(tree, exist_ok=True)
    changed = sync_tree(tree, files)
    print(f"mutate.py: {len(picked)} mutations on {source}, copied to {tree} "
          f"({changed} files changed since the last run)", flush=True)
    doctest_args = args.doctest_args.split() if args.doctest_args else []

    t0 = time.time()
    ok, out = build(tree, args.jobs, args.build_timeout)
    if not ok:
        print(out[-4000:])
        print(f"mutate.py: the unmutated copy does not build ({source}); nothing to judge. "
              "If someone is mid-edit, try --rev HEAD.")
        return 2
    rc, out = test(tree, doctest_args, args.test_timeout)
    if rc != 0:
        print(out[-4000:])
        print("mutate.py: the unmutated copy fails its tests; nothing to judge.")
        return 2
    print(f"baseline: builds and passes ({summary_line(out)}), {time.time() - t0:.0f} s",
          flush=True)

    results = []  # (index, status, detail)
    only_by: List[int] = []  # caught only by the --also-without tests
    for i in picked:
        m = MUTATIONS[i - 1]
        site, why = plan(m, files)
        if site is None:
            results.append((i, "stale", f"pattern not found: {why}"))
            print(f"[{i:2d}] stale (pattern not found): {m.description}\n     {why}", flush=True)
            continue
        path = os.path.join(tree, site.path)
        original, mode = files[site.path]
        t1 = time.time()
        try:
            write_if_changed(path, mutate_text(original.decode(), site).encode(), mode)
            ok, bout = build(tree, args.jobs, args.build_timeout)
            if not ok:
                err = [l.strip() for l in bout.splitlines() if "error:" in l][:2]
                status, detail = "invalid", "does not compile: " + " | ".join(err)
            else:
                rc, tout = test(tree, doctest_args, args.test_timeout)
                if rc == 0:
                    status, detail = "survived", summary_line(tout)
                else:
                    cases = failing_cases(tout)
                    how = "timed out" if rc == 124 else summary_line(tout)
                    status = "caught"
                    detail = how + (" by: " + "; ".join(cases[:4]) if cases else "") + \
                        (f" (+{len(cases) - 4} more)" if len(cases) > 4 else "")
                    if args.also_without:
                        rc2, _ = test(tree, doctest_args + [f"-tce={args.also_without}"],
                                      args.test_timeout)
                        only = rc2 == 0
                        detail += f"\n     without '{args.also_without}': " + \
                            ("survives (caught only by those tests)" if only else "still caught")
                        if only:
                            only_by.append(i)
        finally:
            write_if_changed(path, original, mode)
        results.append((i, status, detail))
        print(f"[{i:2d}] {status}: {m.description} ({site.path}, {time.time() - t1:.0f} s)\n"
              f"     {detail}", flush=True)

    # Leave the build matching the unmutated files, so the next run starts incremental.
    build(tree, args.jobs, args.build_timeout)

    counts: Dict[str, int] = {}
    for _, status, _ in results:
        counts[status] = counts.get(status, 0) + 1
    print("\nsummary: " + ", ".join(f"{counts.get(s, 0)} {s}"
                                    for s in ("caught", "survived", "stale", "invalid")) +
          f" of {len(results)} ({time.time() - t0:.0f} s)")
    for i, status, detail in results:
        if status != "caught":
            print(f"  {status}: [{i}] {MUTATIONS[i - 1].description}")
    if args.also_without:
        print(f"caught only by the '{args.also_without}' tests: {len(only_by)} "
              f"{sorted(only_by)}")
    if not args.keep:
        shutil.rmtree(args.scratch, ignore_errors=True)
    return 0 if all(s == "caught" for _, s, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
