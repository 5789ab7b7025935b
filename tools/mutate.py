#!/usr/bin/env python3
"""Mutation testing: plants mechanically generated one-line bugs (mutants) in a scratch copy of
the repository, one at a time, and records which ones the test suite catches. Run by hand, not
by CI (python3 stdlib only).

Mutants: standard operators (tools/mutate_ops.py says exactly what each does) applied to lines
of five areas, .cpp and .h files only:
  prm = src/prm   data = src/data   dist = src/dist   layers = src/layers   ops = src/tensor/ops
  rel (< <=, == !=, ...), arith (+ -, * /, += -=, ++ --), const (literal +1 / -1),
  negate (if (c) -> if (!(c)), !x -> x), logic (&& ||), drop (a statement -> {}),
  swap (two adjacent call arguments)
Sampling, deterministic for a seed and the source files: every line of an area that has at least
one mutant is a candidate; the candidates are ordered by sha1("SEED:PATH:LINE TEXT") (then line
number) and the first COUNT are taken, so --count 100 is a prefix of --count 200 and an edit
elsewhere in the area does not reshuffle the sample; on each line an operator is drawn among those
that apply, then one of its mutants, with random.Random("SEED:PATH:LINE TEXT"). A mutant's id is
a hash of (path, line number, operator, original line, mutated line): results merge across runs
and sessions (an edit that moves lines gives the moved lines new ids: --rev pins a sweep).

How it runs: the files (`git ls-files` plus untracked files git does not ignore, or the files of
one commit with --rev) are copied to SCRATCH/tree once; later runs rewrite only the files that
changed, so the CPU-only build there (`make -j2 USE_CUDA=0 BUILD=build`) stays incremental. The
unmutated copy must build and pass. Then for each mutant: apply, rebuild, run the suite with
--abort-after=1 and a time limit, restore. The suite runs with PRM_TEST_NO_MPIRUN=1 (the mpirun
tests skip themselves), so that no catch depends on mpirun being installed.

  invalid             the mutant does not compile (not counted)
  caught              the suite failed, crashed or timed out
  caught (old tests)  with --new-tests GLOBS: the suite without those files (doctest
                      --source-file-exclude) caught it
  caught (new tests)  only those files (--source-file) caught it: the "after" score counts it,
                      the "before" score does not
  survived            nothing failed: a missing test, or an equivalent mutant
Results go to tools/mutation_results.jsonl, one JSON object a line (the latest line of an id wins;
mutants already there are skipped unless --rerun). Triage: a survivor that cannot change any
result goes to tools/mutation_equivalent.txt as `<id>  <one-line reason>`; one in code that only
runs under MPI or on a GPU as `<id>  needs-mpi: <reason>` or `needs-gpu: <reason>` (counted apart);
any other deserves a test. Score = caught / (run - invalid - equivalent - needs MPI or GPU), per
area, before and after the new tests. A sweep pinned to a commit (--rev) can be judged again by
the tests written since, on today's code: --recheck plants each unjudged survivor again in the
working tree (its line found by its text, wherever a refactor moved it) and records the verdict
in tools/mutation_recheck.jsonl; --report counts a survivor caught there as caught (new tests).

Usage:
  tools/mutate.py --list                       the sampled mutants (100 per area), no build
  tools/mutate.py --area dist,ops --count 120  run them (skipping those with results already)
  tools/mutate.py --report [--all]             the scores of the sample (--all: of every result)
  tools/mutate.py --only 1a2b3c4d5e,... --new-tests '*test_pins_*.cpp'   rerun survivors, with
                                               the before/after split for the tests added since
  tools/mutate.py --rev HEAD --keep            the files of a commit; keep SCRATCH for next time
  tools/mutate.py --recheck --rev SWEEP_REV --scratch /tmp/prm-recheck   survivors, today
  tools/mutate.py '--doctest-args=-tce=slow*'  (the = form: the value starts with a dash)
Exit status: 0 when no survivor of the sample is left unjudged, 1 otherwise, 2 when the
unmutated copy fails.
"""
import argparse
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mutate_ops import OPS, Mutant, file_mutants  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AREAS = {"prm": "src/prm", "data": "src/data", "dist": "src/dist", "layers": "src/layers",
         "ops": "src/tensor/ops"}
RESULTS = os.path.join(REPO, "tools", "mutation_results.jsonl")
EQUIVALENT = os.path.join(REPO, "tools", "mutation_equivalent.txt")
RECHECK = os.path.join(REPO, "tools", "mutation_recheck.jsonl")
MOVED = os.path.join(REPO, "tools", "mutation_moved.txt")
# Reasons in the equivalent file that start with one of these mark a survivor that no test can
# catch on a machine without MPI / without a GPU (code that only runs there): left out of the
# score like an equivalent mutant, but counted in a column of its own.
UNTESTABLE = ("needs-mpi:", "needs-gpu:")
Files = Dict[str, Tuple[bytes, int]]


# ---- sources ----

def run(cmd: List[str], cwd: str, timeout: Optional[float] = None,
        env: Optional[Dict[str, str]] = None) -> Tuple[int, str]:
    """Runs cmd in a process group of its own, returns (exit status, stdout+stderr); on timeout
    the whole group is killed (the test binary under run_tests.sh too) and the status is 124."""
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out.decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        return 124, out.decode(errors="replace") + f"\n(timed out after {timeout:.0f} s)"
    except BaseException:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise


def load_sources(rev: Optional[str]) -> Files:
    """path -> (content, mode) of the working tree's files, or of commit `rev`."""
    files: Files = {}
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


def sync_tree(tree: str, files: Files) -> int:
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


# ---- the mutants ----

def area_lines(files: Files, area: str) -> List[Tuple[str, int, List[Mutant]]]:
    """(path, line, its mutants) for every line of the area that has mutants, in order."""
    folder = AREAS[area]
    out = []
    for path in sorted(files):
        if os.path.dirname(path) == folder and path.endswith((".cpp", ".h")):
            by_line = file_mutants(path, files[path][0].decode())
            out += [(path, line, ms) for line, ms in sorted(by_line.items())]
    return out


def sample(files: Files, area: str, count: int, seed: int) -> List[Mutant]:
    """COUNT lines of the area drawn at random, one mutant each (see the module's docstring)."""
    def key(entry: Tuple[str, int, List[Mutant]]) -> Tuple[str, int]:
        path, line, ms = entry
        return hashlib.sha1(f"{seed}:{path}:{ms[0].original}".encode()).hexdigest(), line
    picked = []
    for path, line, ms in sorted(area_lines(files, area), key=key)[:count]:
        rng = random.Random(f"{seed}:{path}:{ms[0].original}")
        op = rng.choice([op for op in OPS if any(m.op == op for m in ms)])
        picked.append(rng.choice([m for m in ms if m.op == op]))
    return sorted(picked, key=lambda m: (m.path, m.line))


def mutated_file(files: Files, m: Mutant) -> bytes:
    lines = files[m.path][0].decode().split("\n")
    assert lines[m.line - 1] == m.original, f"{m.path}:{m.line} changed"
    lines[m.line - 1] = m.mutated
    return "\n".join(lines).encode()


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


def test(tree: str, doctest_args: List[str], timeout: Optional[float]) -> Tuple[int, str]:
    env = dict(os.environ, PRM_BIN=os.path.join(tree, "build", "prm"), PRM_TEST_NO_MPIRUN="1")
    env.pop("PRM_REQUIRE_GPU", None)
    return run(["bash", "tools/run_tests.sh", "build/prm_tests"] + doctest_args, tree, timeout,
               env)


def summary_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith("tests: ")]
    return lines[-1] if lines else "(no summary line)"


def suites(new_tests: Optional[str]) -> List[Tuple[str, List[str]]]:
    """(status when it fails, doctest filter) for the old tests and then the new ones."""
    if not new_tests:
        return [("caught", [])]
    return [("caught (old tests)", [f"--source-file-exclude={new_tests}"]),
            ("caught (new tests)", [f"--source-file={new_tests}"])]


def judge(tree: str, args: argparse.Namespace, extra: List[str],
          timeout: float) -> Tuple[str, List[str], str]:
    """(status, failing cases, detail) of the mutant now in the tree."""
    ok, out = build(tree, args.jobs, args.build_timeout)
    if not ok:
        errors = [line.strip() for line in out.splitlines() if "error:" in line][:2]
        return "invalid", [], "does not compile: " + " | ".join(errors)
    for status, filters in suites(args.new_tests):
        rc, out = test(tree, extra + ["--abort-after=1"] + filters, timeout)
        if rc != 0:
            return status, failing_cases(out), "timed out" if rc == 124 else summary_line(out)
    return "survived", [], summary_line(out)


# ---- results and the report ----

def load_results(path: str) -> Dict[str, dict]:
    results: Dict[str, dict] = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    rec = json.loads(line)
                    results[rec["id"]] = rec
    return results


def load_moved(path: str) -> Dict[str, Tuple[str, str, str]]:
    """MOVED: survivors whose line a refactor rewrote, so that --recheck cannot find it by its
    text. One per line, tab-separated: id, path, today's line, the same mutation of it, why."""
    moved = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip() and not line.startswith("#"):
                    parts = line.rstrip("\n").split("\t")
                    moved[parts[0]] = (parts[1], parts[2], parts[3])
    return moved


def load_equivalent(path: str) -> Dict[str, str]:
    equivalent = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.split(None, 1)
                if parts and not parts[0].startswith("#"):
                    equivalent[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return equivalent


def report(picked: Dict[str, List[dict]], equivalent: Dict[str, str], command: str,
           recheck: Optional[Dict[str, dict]] = None) -> int:
    """Prints the Markdown table and the unjudged survivors; returns how many there are.
    recheck: --recheck results; a survivor the tests of today catch counts as caught (new tests)."""
    recheck = recheck or {}
    print(f"\nmutation score per area ({command}):\n")
    print("| area | sampled | pending | invalid | equivalent | needs MPI or GPU | "
          "caught (old tests) | caught (new tests) | survived | score before | score after |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    unjudged = []
    for area, recs in picked.items():
        n: Dict[str, int] = {}
        for r in recs:
            status = r.get("status", "pending")
            if status == "caught":
                status = "caught (old tests)"  # a run without --new-tests: the suite as it was
            if status == "survived" and recheck.get(r["id"], {}).get("status", "").startswith(
                    "caught"):
                status = "caught (new tests)"
            if status == "survived" and r["id"] in equivalent:
                untestable = equivalent[r["id"]].startswith(UNTESTABLE)
                status = "untestable" if untestable else "equivalent"
            elif status == "survived":
                unjudged.append(r)
            n[status] = n.get(status, 0) + 1
        old, new = n.get("caught (old tests)", 0), n.get("caught (new tests)", 0)
        denominator = old + new + n.get("survived", 0)

        def score(c: int) -> str:
            return f"{100 * c / denominator:.0f}% ({c}/{denominator})" if denominator else "-"
        print(f"| {area} | {len(recs)} | {n.get('pending', 0)} | {n.get('invalid', 0)} | "
              f"{n.get('equivalent', 0)} | {n.get('untestable', 0)} | {old} | {new} | "
              f"{n.get('survived', 0)} | "
              f"{score(old)} | {score(old + new)} |")
    if unjudged:
        print(f"\n{len(unjudged)} survivors not judged (a test, or a line in "
              f"{os.path.relpath(EQUIVALENT, REPO)}):")
        for r in unjudged:
            again = recheck.get(r["id"], {}).get("status")
            print(f"  {r['id']}  {r['path']}:{r['line']}  {r['operator']}"
                  + (f"  (recheck: {again})" if again else "") +
                  f"\n      - {r['original'].strip()}\n      + {r['mutated'].strip()}")
    return len(unjudged)


def locate(files: Files, area: str, r: dict,
           old: Optional[Files] = None) -> Optional[Tuple[str, int]]:
    """Where a recorded mutant's original line stands in `files`: its own path if the line is
    there exactly once (or, when the line repeats, the same occurrence as in `old`, the files the
    mutant was made from, if the file repeats it as often), else the one file of the area that
    has it exactly once."""
    def hits(path: str, where: Files) -> List[int]:
        lines = where[path][0].decode().split("\n")
        return [i + 1 for i, line in enumerate(lines) if line == r["original"]]
    if r["path"] in files:
        own = hits(r["path"], files)
        if len(own) == 1:
            return r["path"], own[0]
        if old is not None and r["path"] in old:
            before = hits(r["path"], old)
            if len(before) == len(own) and r["line"] in before:
                return r["path"], own[before.index(r["line"])]
    found = [(p, h) for p in sorted(files)
             if os.path.dirname(p) == AREAS[area] and p.endswith((".cpp", ".h"))
             for h in hits(p, files)]
    return found[0] if len(found) == 1 else None


def recheck_survivors(args: argparse.Namespace, results: Dict[str, dict],
                      equivalent: Dict[str, str], extra: List[str]) -> Dict[str, dict]:
    """--recheck: every unjudged survivor of the results file not yet caught by a recheck,
    planted again in today's working tree (the same line, found by its text: code moves in a refactor) and judged by today's
    tests. Appends to RECHECK; returns it."""
    files = load_sources(None)
    old = load_sources(args.rev) if args.rev else None  # the sweep's files, for repeated lines
    done = load_results(RECHECK)
    todo = [r for r in results.values()
            if r.get("status") == "survived" and r["id"] not in equivalent
            and (args.rerun or not done.get(r["id"], {}).get("status", "").startswith("caught"))]
    tree = os.path.join(args.scratch, "tree")
    os.makedirs(tree, exist_ok=True)
    sync_tree(tree, files)
    ok, out = build(tree, args.jobs, args.build_timeout)
    if not ok:
        print(out[-4000:])
        sys.exit("mutate.py --recheck: the working tree does not build")
    rc, out = test(tree, extra, 3600)
    if rc != 0:
        print(out[-4000:])
        sys.exit("mutate.py --recheck: the working tree fails its tests")
    print(f"recheck: {len(todo)} survivors against the working tree ({summary_line(out)})",
          flush=True)
    moved = load_moved(MOVED)
    for k, r in enumerate(todo, 1):
        if r["id"] in moved:  # the line was rewritten since: the same bug in today's words
            r = dict(r, path=moved[r["id"]][0], original=moved[r["id"]][1],
                     mutated=moved[r["id"]][2])
        where = locate(files, r["area"], r, old)
        rec = {"id": r["id"], "date": time.strftime("%Y-%m-%d %H:%M")}
        if where is None:
            rec.update(status="gone", detail="the original line is not in the working tree once")
        else:
            path, line = where
            original, mode = files[path]
            lines = original.decode().split("\n")
            lines[line - 1] = r["mutated"]
            try:
                write_if_changed(os.path.join(tree, path), "\n".join(lines).encode(), mode)
                status, cases, detail = judge(tree, args, extra, args.test_timeout or 600)
            finally:
                write_if_changed(os.path.join(tree, path), original, mode)
            rec.update(status=status, path=path, line=line, failing_cases=cases, detail=detail)
        with open(RECHECK, "a") as f:
            f.write(json.dumps(rec) + "\n")
        done[r["id"]] = rec
        print(f"[{k}/{len(todo)}] {r['id']} {r['path']}:{r['line']} -> {rec.get('path', '?')}:"
              f"{rec.get('line', '?')}: {rec['status']}", flush=True)
    return done


def record(m: Mutant, area: str) -> dict:
    return {"id": m.id, "area": area, "path": m.path, "line": m.line, "operator": m.op,
            "original": m.original, "mutated": m.mutated}


# ---- main ----

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--area", default=",".join(AREAS),
                    help=f"comma-separated areas among {', '.join(AREAS)} (default: all)")
    ap.add_argument("--count", type=int, default=100, help="mutants per area (default 100)")
    ap.add_argument("--seed", type=int, default=1, help="sampling seed (default 1)")
    ap.add_argument("--list", action="store_true", help="list the sampled mutants and exit")
    ap.add_argument("--report", action="store_true",
                    help="print the scores of the sample from the results file and exit")
    ap.add_argument("--all", action="store_true",
                    help="with --report: every recorded mutant of the areas, not just the sample")
    ap.add_argument("--only", help="comma-separated mutant ids (any mutant of the areas, sampled "
                                   "or not); implies --rerun")
    ap.add_argument("--rerun", action="store_true", help="run mutants that have results already")
    ap.add_argument("--new-tests", metavar="GLOBS",
                    help="comma-separated doctest source-file globs, e.g. '*test_pins_*.cpp': "
                         "the suite runs first without them, then only them (before/after)")
    ap.add_argument("--results", default=RESULTS, help="results file (JSON lines)")
    ap.add_argument("--equivalent", default=EQUIVALENT, help="survivors judged equivalent")
    ap.add_argument("--recheck", action="store_true",
                    help="plant every unjudged survivor of the results file again in the working "
                         "tree (found by its line's text) and judge it by today's tests; "
                         "results in tools/mutation_recheck.jsonl, which --report reads")
    ap.add_argument("--keep", action="store_true",
                    help="keep the scratch tree and build for the next run")
    ap.add_argument("--rev", help="mutate the files of this commit instead of the working tree")
    ap.add_argument("--scratch", default="/tmp/prm-mutate", help="scratch folder")
    ap.add_argument("--jobs", type=int, default=2, help="make -j (default 2)")
    ap.add_argument("--build-timeout", type=float, default=1800)
    ap.add_argument("--test-timeout", type=float,
                    help="seconds per suite run (default: 3 x the baseline's, at least 60)")
    ap.add_argument("--doctest-args", default="",
                    help="extra arguments for the test binary, e.g. '-tce=slow*'")
    args = ap.parse_args()

    areas = [a.strip() for a in args.area.split(",") if a.strip()]
    bad = [a for a in areas if a not in AREAS]
    if bad:
        sys.exit(f"mutate.py: unknown area {bad} (areas: {', '.join(AREAS)})")
    files = load_sources(args.rev)
    source = f"commit {args.rev}" if args.rev else "the working tree"
    results = load_results(args.results)
    command = "python3 tools/mutate.py" + \
        (f" --area {','.join(areas)}" if len(areas) < len(AREAS) else "") + \
        (f" --only {args.only}" if args.only else f" --count {args.count} --seed {args.seed}") + \
        (f" --rev {args.rev}" if args.rev else "") + \
        (f" --new-tests '{args.new_tests}'" if args.new_tests else "")

    todo: List[Tuple[str, Mutant]] = []
    if args.only:
        wanted = set(args.only.split(","))
        for area in areas:
            for _, _, ms in area_lines(files, area):
                todo += [(area, m) for m in ms if m.id in wanted]
        missing = wanted - {m.id for _, m in todo}
        if missing:
            sys.exit(f"mutate.py: no mutant {sorted(missing)} in {', '.join(areas)} of {source}")
        args.rerun = True
    else:
        for area in areas:
            todo += [(area, m) for m in sample(files, area, args.count, args.seed)]

    if args.list:
        for area, m in todo:
            status = results.get(m.id, {}).get("status", "")
            print(f"{m.id}  {area:6s} {m.path}:{m.line}  {m.op}  {status}\n"
                  f"    - {m.original.strip()}\n    + {m.mutated.strip()}")
        for area in areas:
            ms = [m for a, m in todo if a == area]
            ops = ", ".join(f"{sum(m.op == op for m in ms)} {op}" for op in OPS)
            print(f"{area}: {len(ms)} mutants of {len(area_lines(files, area))} candidate "
                  f"lines ({ops})")
        return 0
    if args.report:
        picked: Dict[str, List[dict]] = {a: [] for a in areas}
        if args.all:
            for r in results.values():
                if r["area"] in picked:
                    picked[r["area"]].append(r)
        else:
            for area, m in todo:
                picked[area].append(results.get(m.id, record(m, area)))
        return 1 if report(picked, load_equivalent(args.equivalent), command,
                           load_results(RECHECK)) else 0
    if args.recheck:
        recheck_survivors(args, results, load_equivalent(args.equivalent),
                          args.doctest_args.split())
        return 0

    pending = [(a, m) for a, m in todo if args.rerun or m.id not in results]
    tree = os.path.join(args.scratch, "tree")
    os.makedirs(tree, exist_ok=True)
    changed = sync_tree(tree, files)
    print(f"mutate.py: {len(pending)} mutants to run ({len(todo) - len(pending)} have results in "
          f"{os.path.relpath(args.results, REPO)}) on {source}, copied to {tree} ({changed} "
          "files changed since the last run)", flush=True)
    extra = args.doctest_args.split()

    t0 = time.time()
    ok, out = build(tree, args.jobs, args.build_timeout)
    if not ok:
        print(out[-4000:])
        print(f"mutate.py: the unmutated copy does not build ({source}); nothing to judge. "
              "If someone is mid-edit, try --rev HEAD.")
        return 2
    t1 = time.time()
    for name, filters in suites(args.new_tests):
        rc, out = test(tree, extra + filters, args.test_timeout or 3600)
        if rc != 0 or re.search(r"tests: 0 passed, 0 failed", out):
            print(out[-4000:])
            print(f"mutate.py: the unmutated copy fails (or has no tests) {filters}.")
            return 2
        part = {"caught": "", "caught (old tests)": " without the new tests",
                "caught (new tests)": " of the new tests only"}[name]
        print(f"baseline{part}: {summary_line(out)}", flush=True)
    baseline = time.time() - t1
    timeout = args.test_timeout or max(60.0, 3 * baseline)
    print(f"baseline: build {t1 - t0:.0f} s, tests {baseline:.0f} s (time limit per suite run "
          f"{timeout:.0f} s)", flush=True)

    started = time.time()
    for done, (area, m) in enumerate(pending, 1):
        path = os.path.join(tree, m.path)
        original, mode = files[m.path]
        t = time.time()
        try:
            write_if_changed(path, mutated_file(files, m), mode)
            status, cases, detail = judge(tree, args, extra, timeout)
        finally:
            write_if_changed(path, original, mode)
        rec = record(m, area)
        rec.update(status=status, failing_cases=cases, detail=detail,
                   seconds=round(time.time() - t, 1), new_tests=args.new_tests,
                   source=args.rev or "working tree", date=time.strftime("%Y-%m-%d %H:%M"))
        with open(args.results, "a") as f:
            f.write(json.dumps(rec) + "\n")
        results[m.id] = rec
        rate = done / (time.time() - started)
        eta = (len(pending) - done) / rate
        print(f"[{done}/{len(pending)}] {m.id} {area} {m.path}:{m.line} {m.op}: {status} "
              f"({rec['seconds']:.0f} s; {60 * rate:.1f}/min, ETA {eta / 60:.0f} min)\n"
              f"    - {m.original.strip()}\n    + {m.mutated.strip()}\n    {detail}"
              + (f" by: {'; '.join(cases[:3])}" if cases else ""), flush=True)

    print(f"\n{len(pending)} mutants in {time.time() - t0:.0f} s")
    if not args.keep:
        shutil.rmtree(args.scratch, ignore_errors=True)
    picked = {a: [] for a in areas}
    for area, m in todo:
        picked[area].append(results.get(m.id, record(m, area)))
    return 1 if report(picked, load_equivalent(args.equivalent), command,
                       load_results(RECHECK)) else 0


if __name__ == "__main__":
    sys.exit(main())
