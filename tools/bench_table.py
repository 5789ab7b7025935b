#!/usr/bin/env python3
"""One table of prm against PyTorch from `prm bench` and `tools/bench_torch.py` JSON lines.

Reads JSON lines (files, or stdin when none are given; other lines are skipped) and prints a
Markdown table: per measurement (bench, batch, device, precision) the median seconds of each prm
configuration (conv engine), of PyTorch and of ONNX Runtime (the median of the rows' medians when
a measurement was repeated, e.g. by tools/bench_cpu.sh's rounds), and prm's speed relative to
PyTorch and ONNX Runtime in the same precision (PyTorch's median / prm's: above 1 means prm is
faster). PyTorch's fp32 row is also the reference for prm's tf32 and bf16 rows when PyTorch has
no row in that precision. Where there are PRM rows, a second table sets prm's batched
back-propagation of K peaks beside PyTorch's official loop and its is_grads_batched gradients,
with the two ratios the PRM goals are stated in. The first table also gives the peak memory of
the fastest prm engine and of PyTorch (median MB). Standard library only; `tools/gpu_check.sh` runs it on its bench.jsonl.

  python3 tools/bench_table.py gpu_check_out/bench.jsonl
"""
import json
import statistics
import sys
from collections import OrderedDict


def rows_of(lines):
    for line in lines:
        start = line.find("{")
        if start < 0:
            continue
        try:
            row = json.loads(line[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "bench" in row and "median_s" in row:
            yield row


def main(paths):
    lines = []
    if paths:
        for p in paths:
            with open(p, encoding="utf-8") as f:
                lines.extend(f)
    else:
        lines = sys.stdin.readlines()
    table = OrderedDict()  # (bench, batch, device, precision) -> {label: median}
    memory = {}  # the same keys -> {label: median peak memory in MB}
    for r in rows_of(lines):
        if r.get("median_s") is None:
            continue
        key = (r["bench"], r.get("batch"), r.get("device"), r.get("precision", "fp32"))
        impl = r.get("impl", "prm")
        label = ("torch" if impl == "torch" else "ort" if impl.startswith("onnxruntime")
                 else "prm " + r.get("conv_engine", "native"))
        table.setdefault(key, OrderedDict()).setdefault(label, []).append(float(r["median_s"]))
        if r.get("peak_mem_mb") is not None:
            memory.setdefault(key, {}).setdefault(label, []).append(float(r["peak_mem_mb"]))
    for m in list(table.values()) + list(memory.values()):
        for label, values in m.items():
            m[label] = statistics.median(values)
    if not table:
        print("bench_table: no bench rows found", file=sys.stderr)
        return 1
    print("| bench | batch | device | precision | prm native | prm cudnn | PyTorch | ONNX Runtime | "
          "prm speed vs PyTorch | vs ONNX Runtime | prm peak MB | PyTorch peak MB |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, m in table.items():
        bench, batch, device, precision = key
        torch = m.get("torch")
        ref = torch if torch is not None else table.get((bench, batch, device, "fp32"), {}).get("torch")
        ref_note = "" if torch is not None or ref is None else " (vs fp32)"
        best = min((v for k, v in m.items() if k.startswith("prm")), default=None)

        def cell(v):
            return "" if v is None else f"{v:.4f} s"

        speed = "" if best is None or ref is None else f"{ref / best:.2f}x{ref_note}"
        ort = m.get("ort")
        vs_ort = "" if best is None or ort is None else f"{ort / best:.2f}x"
        # Peak memory: the fastest prm engine's (the one the speed ratio is of), and PyTorch's.
        mem = memory.get(key, {})
        best_label = min((k for k in m if k.startswith("prm")), key=lambda k: m[k], default=None)
        prm_mb, torch_mb = mem.get(best_label), mem.get("torch")
        print(f"| {bench} | {batch} | {device} | {precision} | {cell(m.get('prm native'))} | "
              f"{cell(m.get('prm cudnn'))} | {cell(torch)} | {cell(ort)} | {speed} | {vs_ort} | "
              f"{'' if prm_mb is None else f'{prm_mb:.0f}'} | "
              f"{'' if torch_mb is None else f'{torch_mb:.0f}'} |")
    prm_table(table)
    return 0


def prm_table(table):
    """PRM back-propagation of K peaks: prm's batched backward against PyTorch's official loop
    (one backward per peak) and its is_grads_batched gradients, on the same device and precision:
    the ratios the PRM goals are stated in (above 1: prm's batched backward is faster)."""
    groups = OrderedDict()  # (device, precision) -> {label: median}
    for (bench, _, device, precision), m in table.items():
        for label, v in m.items():
            name = {("prm_batched", "prm"): "batched", ("prm_per_peak", "prm"): "per_peak",
                    ("prm_per_peak", "torch"): "torch_loop",
                    ("prm_batched_torch", "torch"): "torch_batched"}.get(
                        (bench, "torch" if label == "torch" else "prm" if label.startswith("prm")
                         else label))
            if name:
                g = groups.setdefault((device, precision), {})
                g[name] = min(v, g.get(name, v))  # the faster engine's prm row
    groups = OrderedDict((k, g) for k, g in groups.items() if "batched" in g)
    if not groups:
        return

    def cell(v):
        return "" if v is None else f"{v:.4f} s"

    def ratio(a, b):
        return "" if a is None or b is None else f"{a / b:.2f}x"

    print()
    print("| device (PRM, K peaks of one image) | precision | prm batched | prm per peak | PyTorch loop | "
          "PyTorch is_grads_batched | loop / prm batched | is_grads_batched / prm batched |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for (device, precision), g in groups.items():
        b = g.get("batched")
        print(f"| {device} | {precision} | {cell(b)} | {cell(g.get('per_peak'))} | "
              f"{cell(g.get('torch_loop'))} | {cell(g.get('torch_batched'))} | "
              f"{ratio(g.get('torch_loop'), b)} | {ratio(g.get('torch_batched'), b)} |")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
