#!/usr/bin/env python3
"""Compares two runs of the same prm commands on two devices (tools/gpu_check.sh's e2e step:
the CPU against CUDA), within stated tolerances. Standard library only (the GPU machine has no
registry; numpy is not needed for a few thousand numbers).

    compare_runs.py [--train RUN_A RUN_B] [--weights A.safetensors B.safetensors]
                    [--infer OUT_A OUT_B] [--eval EVAL_A EVAL_B] [--expect-epochs N]

--train    two `prm train` run folders: RUN/metrics.jsonl line by line (epoch, step, lr equal;
           loss within --loss-rtol; val_map within --map-atol); with --expect-epochs N both must
           hold exactly epochs 1..N with steps rising by the same count each epoch (a resumed run
           continued instead of starting again).
--weights  two safetensors files: the same tensors, names, dtypes and shapes; float tensors within
           --weight-rtol of the tensor's largest magnitude, other dtypes byte for byte.
--infer    two `prm infer` output folders: the same image ids; per image the same size, class
           scores within --rtol/--atol, the same points (class and position exactly, score within
           tolerance), the same instances (class and peak exactly, score within tolerance, mask
           IoU >= --min-iou).
--eval     two `prm eval --weights` output folders (or their eval.json files): every number within
           --metric-atol, everything else equal.

Prints one line per difference, then one summary line per comparison and a verdict; exits 1 when
any difference is beyond its tolerance, 2 on bad usage or unreadable input.

Why these tolerances (the defaults):
  * scores (--rtol 1e-3, --atol 1e-4): with the same weights the two devices compute the same
    network in float32 but sum in other orders (cuBLAS's and our CPU GEMM's K splits, block-tree
    against sequential reductions in batch norm and pooling, nvcc's FMA contraction against the
    CPU's -ffp-contract=off). Each op then differs by a few ulps (~1e-7 relative); through the 20
    layers of a ResNet-18 and the peak averaging that stays below ~1e-5 relative. 1e-3 leaves two
    orders of magnitude for that, while a real defect (a wrong index, a missing term, a race)
    moves a score by O(1e-1). The absolute 1e-4 serves scores near zero, where a relative bound
    means nothing.
  * peaks and instance choices exactly: they are argmaxes. They only move when two values are
    within rounding of each other; the reporter prints both scores so a near-tie can be told from
    a defect.
  * mask IoU >= 0.99: proposals are computed on the CPU from the image in both runs, so a chosen
    mask is the same proposal (IoU 1) or another one (IoU far below 0.99).
  * eval metrics (--metric-atol 1e-4): computed from the predictions above by the same CPU code;
    equal unless two near-tied scores swap rank (then an AP moves by a step of ~1/positives).
  * training (--loss-rtol 1e-3, --weight-rtol 1e-3, --map-atol 0.1): training differences are
    rounding differences fed back through a few SGD steps (8-12 here) with batch-norm statistics
    over batches of 4; they grow step by step but stay near 1e-5 relative over so few steps. The
    val mAP is over 8 images: one swap of two near-tied scores moves an AP by up to ~0.1.
"""
import argparse
import json
import math
import os
import struct
import sys
import zlib
from array import array


class Report:
    """Collects the differences of one comparison and counts the checks made."""

    def __init__(self, what):
        self.what, self.diffs, self.checked, self.notes = what, [], 0, []

    def diff(self, msg):
        self.diffs.append(msg)
        print(f"DIFF  {self.what}: {msg}")

    def note(self, msg):
        self.notes.append(msg)
        print(f"note  {self.what}: {msg}")

    def close(self, a, b, path, rtol, atol):
        """Checks |a - b| <= atol + rtol * max(|a|, |b|); NaN only matches NaN."""
        self.checked += 1
        if isinstance(a, bool) or isinstance(b, bool) or not all(
                isinstance(v, (int, float)) for v in (a, b)):
            if a != b:
                self.diff(f"{path}: {a!r} vs {b!r}")
            return
        if math.isnan(a) or math.isnan(b):
            if not (math.isnan(a) and math.isnan(b)):
                self.diff(f"{path}: {a!r} vs {b!r} (one NaN)")
            return
        d = abs(a - b)
        if d > atol + rtol * max(abs(a), abs(b)):
            self.diff(f"{path}: {a!r} vs {b!r} (|diff| {d:.3g} > {atol:g} + {rtol:g} x |value|)")

    def summary(self, extra=""):
        state = "ok" if not self.diffs else f"{len(self.diffs)} differences"
        print(f"== {self.what}: {state} ({self.checked} checks{extra})")


def deep_compare(rep, a, b, path, rtol, atol, skip=()):
    """Numbers within tolerance, everything else equal, keys alike; keys in `skip` ignored."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k in skip:
                continue
            p = f"{path}.{k}" if path else k
            if k not in a or k not in b:
                rep.diff(f"{p}: only in {'the first' if k in a else 'the second'}")
            else:
                deep_compare(rep, a[k], b[k], p, rtol, atol, skip)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            rep.diff(f"{path}: {len(a)} entries vs {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            deep_compare(rep, x, y, f"{path}[{i}]", rtol, atol, skip)
    else:
        rep.close(a, b, path, rtol, atol)


# ---------------------------------------------------------------------------------------------
# PNG masks: a minimal decoder (non-interlaced, any bit depth and colour type); a pixel is in the
# mask when any of its samples is non-zero.

def png_mask(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if ihdr is None:
        raise ValueError(f"{path}: no IHDR")
    w, h, depth, ctype, _, _, interlace = ihdr
    if interlace:
        raise ValueError(f"{path}: interlaced PNGs are not decoded here")
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    bits = channels * depth
    stride, bpp = (w * bits + 7) // 8, max(1, bits // 8)
    raw = zlib.decompress(b"".join(idat))
    prev, mask = bytearray(stride), []
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, ul = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + left) & 255
            elif f == 2:
                line[i] = (line[i] + up) & 255
            elif f == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif f == 4:
                p = left + up - ul
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else ul)) & 255
            elif f != 0:
                raise ValueError(f"{path}: bad filter {f}")
        prev = line
        if bits >= 8:
            step = bits // 8
            mask.extend(any(line[x * step:(x + 1) * step]) for x in range(w))
        else:  # depth 1, 2 or 4, one channel
            per = 8 // depth
            mask.extend((line[x // per] >> (8 - depth * (x % per + 1))) & ((1 << depth) - 1) != 0
                        for x in range(w))
    return w, h, mask


def mask_iou(pa, pb):
    if open(pa, "rb").read() == open(pb, "rb").read():
        return 1.0
    wa, ha, ma = png_mask(pa)
    wb, hb, mb = png_mask(pb)
    if (wa, ha) != (wb, hb):
        return 0.0
    inter = sum(1 for x, y in zip(ma, mb) if x and y)
    union = sum(1 for x, y in zip(ma, mb) if x or y)
    return 1.0 if union == 0 else inter / union


# ---------------------------------------------------------------------------------------------

def only_in_one(rep, image, a, b, describe):
    """A difference for each key of the dicts `a` and `b` (matched items: points or instances)
    that only one of them holds, named by describe(key), with its score."""
    for k in sorted(set(a) ^ set(b)):
        item = a.get(k) or b.get(k)
        rep.diff(f"{image}: {describe(k)} score {item['score']:.6g} only in "
                 f"{'the first' if k in a else 'the second'}")


def compare_infer(dir_a, dir_b, args):
    rep = Report("infer")
    ids_a = {f[:-5] for f in os.listdir(dir_a) if f.endswith(".json")}
    ids_b = {f[:-5] for f in os.listdir(dir_b) if f.endswith(".json")}
    for i in sorted(ids_a ^ ids_b):
        rep.diff(f"image {i}: only in {dir_a if i in ids_a else dir_b}")
    if not ids_a & ids_b:
        rep.diff("no image in common")
    n_points = n_inst = 0
    for i in sorted(ids_a & ids_b):
        a = json.load(open(os.path.join(dir_a, i + ".json")))
        b = json.load(open(os.path.join(dir_b, i + ".json")))
        tol = (args.rtol, args.atol)
        for k in ("image", "width", "height"):
            rep.close(a.get(k), b.get(k), f"{i}.{k}", 0, 0)
        sa, sb = a.get("class_scores", {}), b.get("class_scores", {})
        if set(sa) != set(sb):
            rep.diff(f"{i}.class_scores: classes {sorted(sa)} vs {sorted(sb)}")
        for c in sorted(set(sa) & set(sb)):
            rep.close(sa[c], sb[c], f"{i}.class_scores.{c}", *tol)

        # Points: matched by class and position, which must agree exactly.
        def keyed(points):
            return {(p["class"], p["x"], p["y"]): p for p in points}
        pa, pb = keyed(a.get("points", [])), keyed(b.get("points", []))
        only_in_one(rep, i, pa, pb, lambda k: f"point {k[0]} at ({k[1]}, {k[2]})")
        for k in sorted(set(pa) & set(pb)):
            n_points += 1
            rep.close(pa[k]["score"], pb[k]["score"], f"{i}.point {k[0]}@({k[1]},{k[2]}).score", *tol)
            deep_compare(rep, pa[k], pb[k], f"{i}.point {k[0]}@({k[1]},{k[2]})", *tol, skip=("score",))

        # Instances: matched by class and peak; the mask is compared as pixels.
        def keyed_inst(insts):
            return {(s["class"], tuple(s["peak"])): s for s in insts}
        ia, ib = keyed_inst(a.get("instances", [])), keyed_inst(b.get("instances", []))
        only_in_one(rep, i, ia, ib, lambda k: f"instance {k[0]} peak {list(k[1])}")
        for k in sorted(set(ia) & set(ib)):
            n_inst += 1
            name = f"{i}.instance {k[0]}@{list(k[1])}"
            rep.close(ia[k]["score"], ib[k]["score"], name + ".score", *tol)
            iou = mask_iou(os.path.join(dir_a, ia[k]["mask"]), os.path.join(dir_b, ib[k]["mask"]))
            rep.checked += 1
            if iou < args.min_iou:
                rep.diff(f"{name}: mask IoU {iou:.4f} < {args.min_iou}")
            # area follows the mask (an IoU >= 0.99 allows 1% of it); anything else must agree.
            deep_compare(rep, ia[k], ib[k], name, *tol, skip=("score", "mask", "area"))
        if [tuple(s["peak"]) for s in a.get("instances", [])] != \
                [tuple(s["peak"]) for s in b.get("instances", [])] and set(ia) == set(ib):
            rep.note(f"{i}: the same instances in another order")
        deep_compare(rep, a, b, i, *tol,
                     skip=("image", "width", "height", "class_scores", "points", "instances", "timing"))
    rep.summary(f"; {len(ids_a & ids_b)} images, {n_points} points, {n_inst} instances")
    return rep


def load_eval(path):
    return json.load(open(os.path.join(path, "eval.json") if os.path.isdir(path) else path))


def compare_eval(a, b, args):
    rep = Report("eval")
    deep_compare(rep, load_eval(a), load_eval(b), "", 0.0, args.metric_atol)
    rep.summary()
    return rep


def read_metrics(run):
    lines = open(os.path.join(run, "metrics.jsonl")).read().splitlines()
    return [json.loads(x) for x in lines if x.strip()]


def compare_train(run_a, run_b, args):
    rep = Report("train")
    ma, mb = read_metrics(run_a), read_metrics(run_b)
    if len(ma) != len(mb):
        rep.diff(f"metrics.jsonl: {len(ma)} epochs vs {len(mb)}")
    worst = 0.0
    for a, b in zip(ma, mb):
        e = a.get("epoch")
        for k in ("epoch", "step", "lr"):
            rep.close(a.get(k), b.get(k), f"epoch {e}.{k}", 1e-9, 0)
        rep.close(a.get("loss"), b.get("loss"), f"epoch {e}.loss", args.loss_rtol, 0)
        if isinstance(a.get("loss"), float) and isinstance(b.get("loss"), float) and b["loss"]:
            worst = max(worst, abs(a["loss"] - b["loss"]) / abs(b["loss"]))
        if "val_map" in a or "val_map" in b:
            rep.close(a.get("val_map"), b.get("val_map"), f"epoch {e}.val_map", 0, args.map_atol)
            if a.get("val_map") != b.get("val_map"):
                rep.note(f"epoch {e}: val_map {a.get('val_map')} vs {b.get('val_map')}")
        print(f"      train: epoch {e}: loss {a.get('loss')!r} vs {b.get('loss')!r}")
    if args.expect_epochs:
        for run, m in ((run_a, ma), (run_b, mb)):
            epochs = [x.get("epoch") for x in m]
            steps = [x.get("step") for x in m]
            rep.checked += 1
            if epochs != list(range(1, args.expect_epochs + 1)):
                rep.diff(f"{run}: epochs {epochs}, expected 1..{args.expect_epochs}")
            elif len(set(s2 - s1 for s1, s2 in zip([0] + steps, steps))) != 1:
                rep.diff(f"{run}: steps {steps} do not rise by one epoch's count each epoch")
    rep.summary(f"; worst loss relative difference {worst:.3g}")
    return rep


def load_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    head.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in head.items()}


def compare_weights(pa, pb, args):
    rep = Report("weights")
    a, b = load_safetensors(pa), load_safetensors(pb)
    for k in sorted(set(a) ^ set(b)):
        rep.diff(f"{k}: only in {pa if k in a else pb}")
    worst, worst_name = 0.0, "-"
    for k in sorted(set(a) & set(b)):
        (da, sa, ba), (db, sb, bb) = a[k], b[k]
        rep.checked += 1
        if (da, sa) != (db, sb):
            rep.diff(f"{k}: {da} {sa} vs {db} {sb}")
            continue
        if da not in ("F32", "F64"):
            if ba != bb:
                rep.diff(f"{k}: {da} tensor differs")
            continue
        xa, xb = array("f" if da == "F32" else "d", ba), array("f" if da == "F32" else "d", bb)
        if sys.byteorder != "little":
            xa.byteswap()
            xb.byteswap()
        scale = max(max((abs(v) for v in xb), default=0.0), 1e-30)
        d = max((abs(x - y) for x, y in zip(xa, xb)), default=0.0)
        if math.isnan(d) or any(math.isnan(v) for v in xa) != any(math.isnan(v) for v in xb):
            rep.diff(f"{k}: NaN in one of the two")
            continue
        if d / scale > worst:
            worst, worst_name = d / scale, k
        if d > args.weight_rtol * scale:
            rep.diff(f"{k}: max |diff| {d:.3g} > {args.weight_rtol:g} x max |value| {scale:.3g}")
    rep.summary(f"; worst difference / tensor's max magnitude {worst:.3g} ({worst_name})")
    return rep


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", nargs=2, metavar=("RUN_A", "RUN_B"))
    ap.add_argument("--weights", nargs=2, metavar=("A", "B"))
    ap.add_argument("--infer", nargs=2, metavar=("OUT_A", "OUT_B"))
    ap.add_argument("--eval", nargs=2, metavar=("EVAL_A", "EVAL_B"))
    ap.add_argument("--expect-epochs", type=int, default=0)
    ap.add_argument("--rtol", type=float, default=1e-3)
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--min-iou", type=float, default=0.99)
    ap.add_argument("--metric-atol", type=float, default=1e-4)
    ap.add_argument("--loss-rtol", type=float, default=1e-3)
    ap.add_argument("--weight-rtol", type=float, default=1e-3)
    ap.add_argument("--map-atol", type=float, default=0.1)
    args = ap.parse_args()
    if not (args.train or args.weights or args.infer or args.eval):
        ap.error("nothing to compare: give --train, --weights, --infer or --eval")
    reports = []
    try:
        if args.train:
            reports.append(compare_train(*args.train, args))
        if args.weights:
            reports.append(compare_weights(*args.weights, args))
        if args.infer:
            reports.append(compare_infer(*args.infer, args))
        if args.eval:
            reports.append(compare_eval(*args.eval, args))
    except (OSError, ValueError, KeyError) as e:  # unreadable or malformed input: not a verdict
        print(f"compare_runs: cannot compare: {e}")
        return 2
    bad = sum(len(r.diffs) for r in reports)
    print(f"compare_runs: {'MATCH' if not bad else f'MISMATCH ({bad} differences beyond tolerance)'}"
          f" ({', '.join(r.what for r in reports)})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
