#!/usr/bin/env python3
"""One table of prm against PyTorch from `prm bench` and `tools/bench_torch.py` JSON lines.

Reads JSON lines (files, or stdin when none are given; other lines are skipped) and prints a
Markdown table: per measurement (bench, batch, device, precision) the median seconds of each prm
configuration (conv engine), of PyTorch and of ONNX Runtime (the median of the rows' medians when
a measurement was repeated, e.g. by tools/bench_cpu.sh's rounds), and prm's speed relative to
PyTorch and ONNX Runtime in the same precision (PyTorch's median / prm's: above 1 means prm is faster). PyTorch's fp32 row is also the
reference for prm's tf32 and bf16 rows when PyTorch has no row in that precision. Standard
library only; `tools/gpu_check.sh` runs it on its bench.jsonl.

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
    for r in rows_of(lines):
        if r.get("median_s") is None:
            continue
        key = (r["bench"], r.get("batch"), r.get("device"), r.get("precision", "fp32"))
        impl = r.get("impl", "prm")
        label = ("torch" if impl == "torch" else "ort" if impl.startswith("onnxruntime")
                 else "prm " + r.get("conv_engine", "native"))
        table.setdefault(key, OrderedDict()).setdefault(label, []).append(float(r["median_s"]))
    for m in table.values():
        for label, values in m.items():
            m[label] = statistics.median(values)
    if not table:
        print("bench_table: no bench rows found", file=sys.stderr)
        return 1
    print("| bench | batch | device | precision | prm native | prm cudnn | PyTorch | ONNX Runtime | "
          "prm speed vs PyTorch | vs ONNX Runtime |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for (bench, batch, device, precision), m in table.items():
        torch = m.get("torch")
        ref = torch if torch is not None else table.get((bench, batch, device, "fp32"), {}).get("torch")
        ref_note = "" if torch is not None or ref is None else " (vs fp32)"
        best = min((v for k, v in m.items() if k.startswith("prm")), default=None)

        def cell(v):
            return "" if v is None else f"{v:.4f} s"

        speed = "" if best is None or ref is None else f"{ref / best:.2f}x{ref_note}"
        ort = m.get("ort")
        vs_ort = "" if best is None or ort is None else f"{ort / best:.2f}x"
        print(f"| {bench} | {batch} | {device} | {precision} | {cell(m.get('prm native'))} | "
              f"{cell(m.get('prm cudnn'))} | {cell(torch)} | {cell(ort)} | {speed} | {vs_ort} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
