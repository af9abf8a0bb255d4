#!/usr/bin/env python3
"""Runs l4lb's Google Benchmark programs and prints one table: each goal of bench/goals.json with
l4lb's figure, the baseline from the same run, the ratio and whether the goal is met.
Called by scripts/bench (which builds the release preset first); standard library only."""
import argparse
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "build", "release", "bench")
RESULTS = os.path.join(ROOT, "build", "bench-results")
GOALS = os.path.join(ROOT, "bench", "goals.json")

# Template names in sched_bench spell the policy's class; goals.json uses the ipvsadm name.
POLICY_CLASS = {"lc": "least_connection", "wlc": "weighted_least_connection",
                "sed": "shortest_expected_delay", "nq": "never_queue",
                "rr": "round_robin", "wrr": "weighted_round_robin"}


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "?"


def machine_line(build_dir):
    cpu = "?"
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    cache = os.path.join(build_dir, "CMakeCache.txt")
    compiler, flags, build_type = "?", "", "?"
    for line in read(cache).splitlines():
        if line.startswith("CMAKE_CXX_COMPILER:"):
            compiler = line.split("=", 1)[1]
        elif line.startswith("CMAKE_CXX_FLAGS:"):
            flags = line.split("=", 1)[1]
        elif line.startswith("CMAKE_BUILD_TYPE:"):
            build_type = line.split("=", 1)[1]
    version = "?"
    if compiler != "?":
        try:
            version = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                                     check=False).stdout.splitlines()[0]
        except (OSError, IndexError):
            pass
    # CMake's Release adds -O3 -DNDEBUG to the preset's flags.
    release = " -O3 -DNDEBUG" if build_type == "Release" else ""
    thp = re.search(r"\[(\w+)\]", read("/sys/kernel/mm/transparent_hugepage/enabled"))
    return (f"machine: {cpu}, {os.cpu_count()} cores, {version}, flags '{flags}{release}' "
            f"({build_type}), THP {thp.group(1) if thp else '?'}, kernel {platform.release()}")


def expand(goals):
    """Rows with {n} or {p} in them become one row per value (cartesian product)."""
    rows = []
    for g in goals:
        keys = [k for k in ("p", "n") if k in g]
        for values in itertools.product(*(g[k] for k in keys)):
            sub = dict(zip(keys, values))
            if "p" in sub:
                sub["P"] = POLICY_CLASS.get(sub["p"], sub["p"])
            row = {}
            for k, v in g.items():
                if k in keys:
                    continue
                row[k] = v.format(**sub) if isinstance(v, str) else v
            rows.append(row)
    return rows


def run_program(program, args, pinned_filter, unpinned_filter):
    """Runs one program, the per-core benchmarks pinned to one CPU and the multi-thread ones not;
    returns {name: median record}. A program that fails is remembered in FAILED."""
    exe = os.path.join(BENCH_DIR, f"l4lb_{program}_bench")
    if not os.path.exists(exe):
        print(f"bench: {exe} missing", file=sys.stderr)
        return {}
    records = {}
    for tag, flt, pin in (("", pinned_filter, True), (".threads", unpinned_filter, False)):
        if flt is None:
            continue
        out = os.path.join(RESULTS, f"{program}{tag}.json")
        cmd = ([] if not pin or not shutil.which("taskset") else ["taskset", "-c", str(args.cpu)])
        cmd += [exe, f"--benchmark_repetitions={args.repetitions}",
                "--benchmark_report_aggregates_only=true", "--benchmark_format=json",
                f"--benchmark_out={out}", "--benchmark_out_format=json",
                f"--benchmark_filter={flt}"]
        if args.min_time is not None:
            cmd.append(f"--benchmark_min_time={args.min_time}")
        print("bench: " + " ".join(cmd), file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)
        if proc.returncode != 0:
            print(f"bench: {program} exited with {proc.returncode}", file=sys.stderr)
            FAILED.append(program)
        records.update(load_medians(out, args.repetitions))
    return records


def escape(name):
    """Escapes for Benchmark's POSIX/std::regex filter (Python's re.escape escapes more)."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", name)


# What Benchmark appends to a name for a benchmark's own settings (conn_bench sets MinTime and
# Iterations); goals.json names benchmarks without them.
SUFFIXES = ("min_time:", "iterations:", "repeats:", "manual_time")


def base_name(run_name):
    parts = run_name.split("/")
    while parts and parts[-1].startswith(SUFFIXES):
        parts.pop()
    return "/".join(parts)


def load_medians(path, repetitions):
    """{name without setting suffixes: median record} of one program's JSON; {} if unreadable."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    out = {}
    for b in data.get("benchmarks", []):
        if b.get("aggregate_name") == "median" or (repetitions == 1 and
                                                  b.get("run_type") == "iteration"):
            out[base_name(b["run_name"])] = b
    return out


FAILED = []

TIME_TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def value_of(record, how):
    """Reads a record the way goals.json says: per item in ns, ms per iteration, items per second,
    or a user counter as it is."""
    if record is None or record.get("error_occurred"):
        return None
    scale = TIME_TO_NS[record.get("time_unit", "ns")]
    # Multi-thread benchmarks with UseRealTime count items over wall time; the rest over CPU time.
    time_ns = (record["real_time"] if "/real_time" in record["run_name"] else
               record["cpu_time"]) * scale
    if how == "ns_per_item":
        ips = record.get("items_per_second")
        return 1e9 / ips if ips else time_ns
    if how == "time_ms":
        return time_ns / 1e6
    if how == "per_second":
        return record.get("items_per_second")
    return record.get(how)


def fmt(v):
    if v is None:
        return "missing"
    if v >= 1e6:
        return f"{v:.3g}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def judge(row, value, ratio):
    goal = row.get("goal")
    if not goal:
        return "—", "—"
    text, ok = [], True
    unit = row.get("unit", "")
    for key, bound in goal.items():
        kind, side = key.split("_")
        got = value if kind == "value" else ratio
        sym = "≤" if side == "max" else "≥"
        text.append(f"{sym} {bound}{' ' + unit if kind == 'value' else '×'}")
        if got is None:
            ok = None if ok is not False else False
        elif (side == "max" and got > bound) or (side == "min" and got < bound):
            ok = False
    verdict = "missing" if ok is None else ("met" if ok else "not met")
    return ", ".join(text), verdict


def table(rows, results):
    out = [["metric", "l4lb", "baseline", "ratio", "goal", "met"]]
    met = total = 0
    for row in rows:
        recs = results.get(row["program"], {})
        v = value_of(recs.get(row["l4lb"]), row["value"])
        b = value_of(recs.get(row["baseline"]), row["value"]) if row.get("baseline") else None
        ratio = None
        if v and b:
            ratio = b / v if row.get("ratio", "speedup") == "speedup" else v / b
        goal, verdict = judge(row, v, ratio)
        if verdict != "—":
            total += 1
            met += verdict == "met"
        unit = row.get("unit", "")
        out.append([row["metric"],
                    f"{fmt(v)} {unit}" if v is not None else "missing",
                    ("—" if not row.get("baseline") else
                     f"{fmt(b)} {unit}" if b is not None else "missing"),
                    ("—" if ratio is None else f"base/l4lb {ratio:.2f}×"
                     if row.get("ratio", "speedup") == "speedup" else f"l4lb/base {ratio:.2f}×"),
                    goal, verdict])
    return out, met, total


def markdown(cells):
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    lines += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="2 repetitions, 0.05 s minimum time")
    ap.add_argument("--filter", default=None, help="only metrics whose name matches REGEX")
    ap.add_argument("--cpu", type=int, default=1, help="the CPU per-core figures are pinned to")
    ap.add_argument("--no-run", action="store_true", help="table from the JSON of the last run")
    args = ap.parse_args()
    args.repetitions = 2 if args.quick else 5
    args.min_time = 0.05 if args.quick else None

    with open(GOALS) as f:
        rows = expand(json.load(f)["metrics"])
    if args.filter:
        rows = [r for r in rows if re.search(args.filter, r["metric"])]
    os.makedirs(RESULTS, exist_ok=True)

    results = {}
    for program in sorted({r["program"] for r in rows}):
        names = sorted({r[k] for r in rows if r["program"] == program
                        for k in ("l4lb", "baseline") if r.get(k)})
        threaded = sorted({r[k] for r in rows if r["program"] == program and
                           r.get("pinned") is False for k in ("l4lb", "baseline") if r.get(k)})
        pinned = [n for n in names if n not in threaded]

        # Exact names as one anchored alternation; Benchmark matches the filter against the
        # full name, so special characters are escaped.
        def alternation(ns):
            return ("^(" + "|".join(escape(n) for n in ns) + ")(/(" + "|".join(SUFFIXES) +
                    ")[^/]*)*$") if ns else None

        if args.no_run:
            results[program] = {}
            for tag in ("", ".threads"):
                results[program].update(
                    load_medians(os.path.join(RESULTS, f"{program}{tag}.json"), 5))
        else:
            results[program] = run_program(program, args, alternation(pinned),
                                           alternation(threaded))

    cells, met, total = table(rows, results)
    print(machine_line(os.path.join(ROOT, "build", "release")))
    if not args.no_run:
        print(f"median of {args.repetitions} repetitions; per-core figures pinned to CPU {args.cpu}")
    print(markdown(cells))
    print(f"\n{met} of {total} goals met")
    missing = sum(1 for r in cells[1:] if r[1] == "missing")
    if missing:
        print(f"{missing} metrics missing (benchmark absent or failed)")
    if FAILED:
        print("programs that failed: " + ", ".join(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
