#!/usr/bin/env python3
"""One table of prm against PyTorch from `prm bench` and `tools/bench_torch.py` JSON lines.

Reads JSON lines (files, or stdin when none are given; other lines are skipped) and prints a
Markdown table: per measurement (bench, batch, device, precision) the median seconds of each prm
configuration (conv engine) and of PyTorch, and prm's speed relative to PyTorch in the same
precision (PyTorch's median / prm's: above 1 means prm is faster). PyTorch's fp32 row is also the
reference for prm's tf32 and bf16 rows when PyTorch has no row in that precision. Standard
library only; `tools/gpu_check.sh` runs it on its bench.jsonl.

  python3 tools/bench_table.py gpu_check_out/bench.jsonl
"""
import json
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
        label = "torch" if impl == "torch" else "prm " + r.get("conv_engine", "native")
        table.setdefault(key, OrderedDict())[label] = float(r["median_s"])
    if not table:
        print("bench_table: no bench rows found", file=sys.stderr)
        return 1
    print("| bench | batch | device | precision | prm native | prm cudnn | PyTorch | "
          "prm speed vs PyTorch |")
    print("|---|---:|---|---|---:|---:|---:|---:|")
    for (bench, batch, device, precision), m in table.items():
        torch = m.get("torch")
        ref = torch if torch is not None else table.get((bench, batch, device, "fp32"), {}).get("torch")
        ref_note = "" if torch is not None or ref is None else " (vs fp32)"
        best = min((v for k, v in m.items() if k.startswith("prm")), default=None)

        def cell(v):
            return "" if v is None else f"{v:.4f} s"

        speed = "" if best is None or ref is None else f"{ref / best:.2f}x{ref_note}"
        print(f"| {bench} | {batch} | {device} | {precision} | {cell(m.get('prm native'))} | "
              f"{cell(m.get('prm cudnn'))} | {cell(torch)} | {speed} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
