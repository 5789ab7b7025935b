#!/usr/bin/env python3
"""Where a GPU step's time goes: Nsight Compute's per-launch kernel durations, summed per kernel.

    ncu --csv --page raw --metrics gpu__time_duration.sum --print-units base \
        --cache-control none --clock-control none <program> > raw.csv
    python3 tools/ncu_summary.py raw.csv [--top 25] [--wall-s 0.107]

Reads the CSV rows of `ncu --csv --page raw` (lines that are not CSV, such as ncu's ==PROF==
messages or the program's own output, are skipped), groups the launches by kernel name and prints
a Markdown table, largest total first: launches, total ms, share of all kernel time, mean us. With
--wall-s (the step's wall time, from prm bench) it also says how much of the wall time the GPU
was busy, the first question for a step that may be host-bound.

Standard library only (the GPU machine's python3 has no guarantee of anything else).
"""
import argparse
import csv
import sys
from collections import defaultdict

METRIC = "gpu__time_duration.sum"
# Nsight Compute's time units, in nanoseconds.
UNITS = {"ns": 1.0, "nsecond": 1.0, "us": 1e3, "usecond": 1e3, "ms": 1e6, "msecond": 1e6,
         "s": 1e9, "second": 1e9}


def read_launches(lines):
    """[(kernel name, duration in ns)] from the CSV lines of ncu's raw page."""
    rows = list(csv.reader(line for line in lines if line.startswith('"')))
    header = None
    for i, row in enumerate(rows):
        if "Kernel Name" in row and METRIC in row:
            header, rows = row, rows[i + 1:]
            break
    if header is None:
        raise ValueError(f"no header with 'Kernel Name' and '{METRIC}' (was ncu run with "
                         f"--csv --page raw --metrics {METRIC}?)")
    name_at, time_at = header.index("Kernel Name"), header.index(METRIC)
    scale = 1.0
    launches = []
    for row in rows:
        if len(row) <= max(name_at, time_at):
            continue
        value = row[time_at].replace(",", "").strip()
        if not row[name_at] and value in UNITS:  # the units row under the header
            scale = UNITS[value]
            continue
        try:
            launches.append((row[name_at], float(value) * scale))
        except ValueError:
            continue  # a repeated header, or a launch ncu could not measure ("n/a")
    return launches


def summarise(launches, top, wall_s=None):
    per_kernel = defaultdict(lambda: [0, 0.0])
    for name, ns in launches:
        per_kernel[name][0] += 1
        per_kernel[name][1] += ns
    total_ns = sum(ns for _, ns in launches)
    out = [f"{len(launches)} kernel launches, {total_ns / 1e6:.3f} ms of kernel time"
           f" in {len(per_kernel)} kernels"]
    if wall_s:
        out[0] += (f"; the step's wall time {wall_s * 1e3:.3f} ms, so the GPU was busy "
                   f"{100 * total_ns / 1e9 / wall_s:.0f} % of it")
    out += ["", "| kernel | launches | total ms | share | mean us |", "|---|---:|---:|---:|---:|"]
    ranked = sorted(per_kernel.items(), key=lambda kv: -kv[1][1])
    for name, (count, ns) in ranked[:top]:
        share = 100 * ns / total_ns if total_ns else 0.0
        shown = name if len(name) <= 90 else name[:87] + "..."
        shown = shown.replace("|", "\\|")
        out.append(f"| {shown} | {count} | {ns / 1e6:.3f} | {share:.1f} % | {ns / count / 1e3:.1f} |")
    rest = ranked[top:]
    if rest:
        ns = sum(v[1] for _, v in rest)
        count = sum(v[0] for _, v in rest)
        share = 100 * ns / total_ns if total_ns else 0.0
        out.append(f"| ({len(rest)} other kernels) | {count} | {ns / 1e6:.3f} | {share:.1f} % | |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv", help="ncu --csv --page raw output (other lines are skipped)")
    ap.add_argument("--top", type=int, default=25, help="kernels listed (default 25)")
    ap.add_argument("--wall-s", type=float, help="the profiled step's wall time in seconds")
    args = ap.parse_args()
    try:
        with open(args.csv, encoding="utf-8", errors="replace") as f:
            launches = read_launches(f)
    except (OSError, ValueError) as e:
        print(f"ncu_summary: {args.csv}: {e}", file=sys.stderr)
        return 2
    if not launches:
        print(f"ncu_summary: {args.csv}: no kernel launch with a duration", file=sys.stderr)
        return 2
    print(summarise(launches, args.top, args.wall_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
