#!/usr/bin/env python3
"""Runs l4lb's Google Benchmark programs and prints one table: each goal of bench/goals.json with
l4lb's figure, the baseline from the same run, the ratio and whether the goal is met; counts
instructions per packet under callgrind (--instructions) against bench/baseline/instructions.json;
writes bench/report/ (--report) and the README's Benchmarks block (--readme).
Called by scripts/bench (which builds the release preset first); standard library only, plus
matplotlib for the report's plots when it is installed."""
import argparse
import itertools
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "build", "release", "bench")
RESULTS = os.path.join(ROOT, "build", "bench-results")
GOALS = os.path.join(ROOT, "bench", "goals.json")
INSTRUCTIONS_EXE = os.path.join(BENCH_DIR, "l4lb_instructions")
INSTRUCTIONS_RESULT = os.path.join(RESULTS, "instructions.json")
INSTRUCTIONS_BASELINE = os.path.join(ROOT, "bench", "baseline", "instructions.json")
REPORT_DIR = os.path.join(ROOT, "bench", "report")
README = os.path.join(ROOT, "README.md")
# An instruction count this far above its baseline fails --compare (and this far below asks for
# the baseline to be updated): counts repeat exactly, so 2 % is a real change of the code.
TOLERANCE = 0.02

# Template names in sched_bench spell the policy's class; goals.json uses the ipvsadm name.
POLICY_CLASS = {"lc": "least_connection", "wlc": "weighted_least_connection",
                "sed": "shortest_expected_delay", "nq": "never_queue",
                "rr": "round_robin", "wrr": "weighted_round_robin", "fo": "weighted_failover",
                "ovf": "overflow"}


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "?"


def cmake_cache(build_dir):
    """{variable: value} of a build directory's CMakeCache.txt ({} when not configured)."""
    out = {}
    for line in read(os.path.join(build_dir, "CMakeCache.txt")).splitlines():
        m = re.match(r"([A-Za-z_0-9]+):[A-Z]+=(.*)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def compiler_version(build_dir):
    compiler = cmake_cache(build_dir).get("CMAKE_CXX_COMPILER")
    if not compiler:
        return "?"
    try:
        return subprocess.run([compiler, "--version"], capture_output=True, text=True,
                              check=False).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "?"


def machine_line(build_dir):
    cpu = "?"
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    cache = cmake_cache(build_dir)
    flags, build_type = cache.get("CMAKE_CXX_FLAGS", ""), cache.get("CMAKE_BUILD_TYPE", "?")
    # CMake's Release adds -O3 -DNDEBUG to the preset's flags.
    release = " -O3 -DNDEBUG" if build_type == "Release" else ""
    thp = re.search(r"\[(\w+)\]", read("/sys/kernel/mm/transparent_hugepage/enabled"))
    return (f"machine: {cpu}, {os.cpu_count()} cores, {compiler_version(build_dir)}, flags "
            f"'{flags}{release}' ({build_type}), THP {thp.group(1) if thp else '?'}, "
            f"kernel {platform.release()}")


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


# ---- instructions per packet (callgrind) ------------------------------------------------------

def instruction_flags():
    """The flags the driver was compiled with, from the release build's compile_commands.json
    (the last -march, -mtune and -O win, as for the compiler)."""
    try:
        with open(os.path.join(ROOT, "build", "release", "compile_commands.json")) as f:
            commands = json.load(f)
    except (OSError, ValueError):
        return "?"
    for c in commands:
        if c.get("file", "").endswith(os.path.join("instructions", "instructions.cpp")):
            words = c.get("command", "").split()
            last = {}
            for w in words:
                for prefix in ("-march=", "-mtune=", "-O"):
                    if w.startswith(prefix):
                        last[prefix] = w
            return " ".join(last[p] for p in ("-march=", "-mtune=", "-O") if p in last)
    return "?"


def run_instructions(args):
    """Runs the driver under callgrind, collecting only its measured calls; returns the result
    record ({path: {instructions, packets, per_packet}} plus what produced them) or None."""
    if not shutil.which("valgrind"):
        print("bench: valgrind not found (apt-get install valgrind)", file=sys.stderr)
        return None
    if not os.path.exists(INSTRUCTIONS_EXE):
        print(f"bench: {INSTRUCTIONS_EXE} missing", file=sys.stderr)
        return None
    out_dir = os.path.join(RESULTS, "callgrind")
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, name))
    # The environment and argv[0] sit at the top of the program's stack, so their length shifts
    # every stack address, and with it which alignment paths memcpy and friends take: counts
    # moved by 0.1 % between two shells. An empty environment and a relative argv[0] (run from
    # the build directory) make the stack the same whoever runs it, from whichever checkout.
    cmd = [shutil.which("valgrind"), "--tool=callgrind", "--collect-atstart=no",
           f"--callgrind-out-file={os.path.join(out_dir, 'callgrind.out')}",
           "./" + os.path.basename(INSTRUCTIONS_EXE)]
    if args.filter:
        cmd.append(args.filter)
    print("bench: " + " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env={},
                          cwd=os.path.dirname(INSTRUCTIONS_EXE))
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        print(f"bench: l4lb_instructions exited with {proc.returncode}", file=sys.stderr)
        return None
    packets = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"path (\S+) packets (\d+) good (\d+)$", line)
        if m:
            packets[m.group(1)] = int(m.group(2))
    # One profile per path (CALLGRIND_DUMP_STATS_AT names it in the "desc: Trigger" line).
    counts = {}
    for name in os.listdir(out_dir):
        desc, total = None, None
        for line in read(os.path.join(out_dir, name)).splitlines():
            trigger = "desc: Trigger: Client Request: "
            if line.startswith(trigger):
                desc = line[len(trigger):].strip()
            elif line.startswith(("totals:", "summary:")) and total is None:
                total = int(line.split()[1])
        if desc is not None and total is not None:
            counts[desc] = total
    paths = {}
    for path, n in packets.items():
        if path not in counts or n == 0:
            print(f"bench: no callgrind profile for {path}", file=sys.stderr)
            return None
        paths[path] = {"instructions": counts[path], "packets": n,
                       "per_packet": round(counts[path] / n, 2)}
    vg = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=False)
    return {"compiler": compiler_version(os.path.join(ROOT, "build", "release")),
            "flags": instruction_flags(), "valgrind": vg.stdout.strip(), "paths": paths}


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def compare_instructions(result, baseline):
    """Rows [path, per packet, baseline, change, verdict] and the paths > TOLERANCE above."""
    rows, worse, better = [["path", "instructions/packet", "baseline", "change", "verdict"]], [], []
    base_paths = (baseline or {}).get("paths", {})
    for path, r in result["paths"].items():
        b = base_paths.get(path)
        if b is None:
            rows.append([path, f"{r['per_packet']:.1f}", "—", "—", "not in the baseline"])
            continue
        change = r["per_packet"] / b["per_packet"] - 1
        if change > TOLERANCE:
            verdict = "REGRESSION"
            worse.append(path)
        elif change < -TOLERANCE:
            verdict = "improved, update the baseline"
            better.append(path)
        else:
            verdict = "ok"
        rows.append([path, f"{r['per_packet']:.1f}", f"{b['per_packet']:.1f}",
                     f"{change * 100:+.2f} %", verdict])
    return rows, worse, better


def instructions_main(args):
    if args.no_run:
        result = load_json(INSTRUCTIONS_RESULT)
        if result is None:
            print("bench: no kept instruction counts: scripts/bench --instructions",
                  file=sys.stderr)
            return 1
    else:
        result = run_instructions(args)
        if result is None:
            return 1
        with open(INSTRUCTIONS_RESULT, "w") as f:
            json.dump(result, f, indent=1)
    baseline = load_json(INSTRUCTIONS_BASELINE)
    print(f"instructions per packet under callgrind: {result['compiler']}, flags "
          f"'{result['flags']}', {result['valgrind']}")
    rows, worse, better = compare_instructions(result, baseline)
    print(markdown(rows))
    if not args.no_run:
        print(f"profiles, one per path: {os.path.relpath(os.path.join(RESULTS, 'callgrind'), ROOT)}"
              "/callgrind.out.<n> (callgrind_annotate --inclusive=yes FILE shows where they go)")
    status = 0
    if baseline and baseline.get("compiler") != result["compiler"]:
        print(f"note: the baseline was counted with {baseline.get('compiler')}; counts differ "
              "between compilers")
    if args.update_baseline:
        if args.filter:
            # Keep the paths this run did not count.
            merged = dict((baseline or {}).get("paths", {}))
            merged.update(result["paths"])
            result = dict(result, paths=merged)
        os.makedirs(os.path.dirname(INSTRUCTIONS_BASELINE), exist_ok=True)
        record = {"_about": "Instructions per packet of bench/instructions/instructions.cpp "
                            "under callgrind (scripts/bench --instructions): machine-independent "
                            "for one compiler and these flags. Rewrite with scripts/bench "
                            "--update-baseline."}
        record.update(result)
        with open(INSTRUCTIONS_BASELINE, "w") as f:
            json.dump(record, f, indent=1)
            f.write("\n")
        print(f"baseline written: {os.path.relpath(INSTRUCTIONS_BASELINE, ROOT)}")
    elif args.compare:
        if baseline is None:
            print(f"no baseline at {os.path.relpath(INSTRUCTIONS_BASELINE, ROOT)}: "
                  "scripts/bench --update-baseline writes it")
            status = 1
        missing = [p for p in baseline.get("paths", {}) if p not in result["paths"]] \
            if baseline and not args.filter else []
        for path in missing:
            print(f"{path}: in the baseline but not counted")
        if better:
            print(f"more than {TOLERANCE * 100:.0f} % below the baseline (improved, update the "
                  "baseline: scripts/bench --update-baseline): " + ", ".join(better))
        if worse:
            print(f"more than {TOLERANCE * 100:.0f} % above the baseline: " + ", ".join(worse))
            status = 1
        elif missing:
            status = 1
    return status


# ---- report and README ------------------------------------------------------------------------

DIRECTOR_SIZES = ["1000", "10000", "100000", "1000000", "10000000"]
PICK_SIZES = ["8", "64", "1000", "10000"]
# (label, program, benchmark with {n}): the pick cost of each policy as goals.json reads it.
PICK_SERIES = [
    ("lc", "sched", "BM_policy<least_connection>/{n}"),
    ("wlc", "sched", "BM_policy<weighted_least_connection>/{n}"),
    ("sed", "sched", "BM_policy<shortest_expected_delay>/{n}"),
    ("nq", "sched", "BM_policy<never_queue>/{n}"),
    ("rr", "sched", "BM_policy<round_robin, true>/{n}"),
    ("wrr", "sched", "BM_policy<weighted_round_robin, true>/{n}"),
    ("swrr", "sched", "BM_policy<smooth_weighted_round_robin, true>/{n}"),
    ("twos", "sched", "BM_policy<two_choices, true>/{n}"),
    ("mh", "sched_hash", "BM_pick_mh/{n}"),
    ("wmh", "sched_hash", "BM_pick_wmh/{n}"),
    ("ring", "sched_hash", "BM_pick_ring/{n}"),
    ("sh", "sched_hash", "BM_pick_sh/{n}"),
    ("dh", "sched_hash", "BM_pick_dh/{n}"),
    ("lblc (cache hit)", "sched_hash", "BM_pick_lblc_hit/{n}"),
    ("IPVS wlc list scan (baseline)", "sched", "BM_scan<reference::wlc>/{n}"),
]
DISRUPTION_POLICIES = [("mh", "mh, 4093 slots (IPVS default)"), ("mh_65521", "mh, 65521 slots"),
                       ("wmh", "wmh, 65537 slots"), ("ring", "ring, 160 points/server")]
DISRUPTION_N, DISRUPTION_K = "100", ["1", "5", "10", "20", "50"]
WEIGHTED_POLICIES = ["wrr", "swrr", "wlc", "sed", "nq", "twos", "sh", "mh", "wmh", "ring"]
WEIGHTS_LEFT_OUT = ("Left out of the weight plot: fo (sends everything to the heaviest server), "
                    "ovf (the heaviest until its active connections reach its weight), lblc and "
                    "lblcr (by destination address; weights count only on a cache miss); rr, lc "
                    "and dh ignore weights. wlc, sed, nq and twos balance connection counts, so "
                    "the benchmark keeps 1000 connections open (each pick opens one, the oldest "
                    "closes) and their share of picks is their share of a steady load.")


def plot_needs():
    """{plot key: {program: [benchmark names]}}: what each plot reads."""
    return {
        "director": {"director": [f"BM_{kind}/{m}/{n}" for kind in ("pipeline", "naive")
                                  for m in ("dr", "tun", "nat") for n in DIRECTOR_SIZES]},
        "pick": {prog: [t.format(n=n) for _, p, t in PICK_SERIES if p == prog for n in PICK_SIZES]
                 for prog in ("sched", "sched_hash")},
        "disruption": {"sched_quality": [f"BM_disruption/{p}/{DISRUPTION_N}/{k}"
                                         for p, _ in DISRUPTION_POLICIES for k in DISRUPTION_K]},
        "weights": {"sched_quality": [f"BM_weights/{p}" for p in WEIGHTED_POLICIES]},
    }


PLOT_TITLES = {
    "director": "director ns/packet against connections (DR, TUN, NAT; naive baseline)",
    "pick": "sched pick cost against real servers (log-log)",
    "disruption": "sched disruption: flows moved when k of N servers are removed",
    "weights": "sched weight honouring: share of picks against weight share",
}


def plot_director(plt, results):
    recs = results.get("director", {})
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    drawn = False
    for ax, m in zip(axes, ("dr", "tun", "nat")):
        for kind, label, style in (("pipeline", "l4lb", "o-"), ("naive", "naive baseline", "s--")):
            pts = [(int(n), value_of(recs.get(f"BM_{kind}/{m}/{n}"), "ns_per_item"))
                   for n in DIRECTOR_SIZES]
            pts = [(x, y) for x, y in pts if y is not None]
            if pts:
                ax.plot(*zip(*pts), style, label=label)
                drawn = True
        ax.set_xscale("log")
        ax.set_title(m.upper())
        ax.set_xlabel("established connections")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylim(bottom=0)
    axes[0].set_ylabel("ns/packet (bursts of 32)")
    axes[0].legend()
    return fig if drawn else None


def plot_pick(plt, results):
    fig, ax = plt.subplots(figsize=(9, 6))
    drawn = False
    for i, (label, program, template) in enumerate(PICK_SERIES):
        recs = results.get(program, {})
        pts = [(int(n), value_of(recs.get(template.format(n=n)), "ns_per_item"))
               for n in PICK_SIZES]
        pts = [(x, y) for x, y in pts if y is not None]
        if pts:
            # 15 series: tab20's colours, and the hashing policies dashed, so none look alike.
            style = ("k--" if "baseline" in label else
                     "o-" if program == "sched" else "s:")
            kw = {} if "baseline" in label else {"color": plt.cm.tab20(i)}
            ax.plot(*zip(*pts), style, label=label, **kw)
            drawn = True
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("real servers")
    ax.set_ylabel("ns/pick")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    return fig if drawn else None


def plot_disruption(plt, results):
    recs = results.get("sched_quality", {})
    fig, ax = plt.subplots(figsize=(7, 5))
    drawn = False
    for p, label in DISRUPTION_POLICIES:
        pts = []
        for k in DISRUPTION_K:
            moved = value_of(recs.get(f"BM_disruption/{p}/{DISRUPTION_N}/{k}"), "moved")
            if moved is not None:
                pts.append((int(k) / int(DISRUPTION_N), moved))
        if pts:
            ax.plot(*zip(*pts), "o-", label=label)
            drawn = True
    ks = [int(k) / int(DISRUPTION_N) for k in DISRUPTION_K]
    ax.plot(ks, ks, "k--", label="ideal k/N")
    ax.set_xlabel(f"k/N (k of N = {DISRUPTION_N} equal servers removed)")
    ax.set_ylabel("share of 100 000 flows that changed server")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig if drawn else None


def plot_weights(plt, results):
    """Left: share of picks against weight share, the diagonal being exact. Right: the same as
    share / weight share, where the differences the left panel cannot show are visible."""
    recs = results.get("sched_quality", {})
    fig, (ax, rel) = plt.subplots(1, 2, figsize=(12, 5.5))
    drawn = False
    top = 0.0
    markers = "os^vD<>px*"
    for i, p in enumerate(WEIGHTED_POLICIES):
        rec = recs.get(f"BM_weights/{p}")
        if value_of(rec, "worst_error_pct") is None:
            continue
        pts = sorted((rec[f"weight_share_w{w}"], rec[f"share_w{w}"])
                     for w in (k[len("share_w"):] for k in rec if k.startswith("share_w")))
        style = dict(marker=markers[i % len(markers)], color=plt.cm.tab10(i), label=p)
        ax.plot(*zip(*pts), linestyle="none", alpha=0.8, **style)
        rel.plot([x for x, _ in pts], [y / x for x, y in pts], linestyle="-", alpha=0.8, **style)
        top = max(top, max(max(x, y) for x, y in pts))
        drawn = True
    ax.plot([0, top * 1.05], [0, top * 1.05], "k--", label="ideal: share = weight share")
    ax.set_xlabel("weight share (weights 1, 2, 3, 4, 10)")
    ax.set_ylabel("share of picks")
    ax.legend(fontsize="small")
    rel.axhline(1.0, color="k", linestyle="--", label="ideal")
    rel.set_xscale("log")
    rel.set_xlabel("weight share (log)")
    rel.set_ylabel("share of picks / weight share")
    for a in (ax, rel):
        a.grid(True, alpha=0.3)
    return fig if drawn else None


PLOTTERS = {"director": plot_director, "pick": plot_pick, "disruption": plot_disruption,
            "weights": plot_weights}


def instructions_markdown():
    """The instruction counts of the last --instructions run, with the baseline beside them."""
    result = load_json(INSTRUCTIONS_RESULT)
    if result is None:
        return ["Not counted yet: `scripts/bench --instructions`."]
    rows = compare_instructions(result, load_json(INSTRUCTIONS_BASELINE))[0]
    return [f"`valgrind --tool=callgrind` over `bench/instructions/instructions.cpp` (only the "
            f"measured calls are collected): {result['compiler']}, flags `{result['flags']}`, "
            f"{result['valgrind']}. Baseline: `bench/baseline/instructions.json`.", "",
            markdown(rows)]


def run_description(run, again=False):
    """What produced the table: the command, when, how; `again` when it is printed from the kept
    JSON (--no-run), which may also hold other programs' results from earlier runs."""
    if not run:
        return "printed from kept JSON (no record of the run)"
    how = (f"median of {run['repetitions']} repetitions, per-core figures pinned to CPU "
           f"{run['cpu']}")
    if run.get("quick"):
        how += " (--quick: 0.05 s minimum time)"
    if run.get("filter"):
        how += f", --filter '{run['filter']}'"
    text = f"`{run['command']}` at {run['date']}: {how}"
    return ("printed again from the kept JSON (programs this run did not cover: from earlier "
            "runs) of " + text) if again else text


def write_report(args, cells, met, total, results, machine, run, plots):
    os.makedirs(REPORT_DIR, exist_ok=True)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
        print("bench: matplotlib is not installed, so the report has no plots: "
              "scripts/setup --plots (or apt-get install python3-matplotlib)", file=sys.stderr)
    md = ["# l4lb benchmark report", "", "```", machine, "```", "",
          f"Run: {run_description(run, args.no_run)}.", "", "## Goals", "", markdown(cells), "",
          f"{met} of {total} goals met", "", "## Instructions per packet", ""]
    md += instructions_markdown()
    md += ["", "## Plots", ""]
    # A plot not drawn this time must not leave an older PNG looking current.
    for key in PLOT_TITLES:
        stale = os.path.join(REPORT_DIR, f"{key}.png")
        if os.path.exists(stale):
            os.remove(stale)
    for key in plots:
        md += [f"### {PLOT_TITLES[key]}", ""]
        if plt is None:
            md += ["Not drawn: matplotlib is not installed (`scripts/setup --plots`).", ""]
            continue
        fig = PLOTTERS[key](plt, results)
        if fig is None:
            md += ["No data for this plot in the kept results: run `scripts/bench --report` "
                   "(its benchmarks are added to the run).", ""]
            continue
        fig.suptitle(PLOT_TITLES[key], fontsize="medium")
        fig.tight_layout()
        fig.savefig(os.path.join(REPORT_DIR, f"{key}.png"), dpi=110)
        plt.close(fig)
        md += [f"![{PLOT_TITLES[key]}]({key}.png)", ""]
        if key == "weights":
            md += [WEIGHTS_LEFT_OUT, ""]
        if key == "disruption":
            md += ["Ideal: only the removed servers' flows move, k/N of them. The counters "
                   "(bench/sched_quality_bench.cpp) also give `minimal`, the share that was on "
                   "the removed servers in this flow set. No goal: the Maglev paper promises "
                   "near-minimal disruption, not a bound. Maglev moves more with fewer slots per "
                   "server (IPVS's default 4093 slots give 41 per server at N = 100; the paper "
                   "sizes M > 100 N).", ""]
    with open(os.path.join(REPORT_DIR, "index.md"), "w") as f:
        f.write("\n".join(md))
    print(f"report written: {os.path.relpath(REPORT_DIR, ROOT)}/index.md", file=sys.stderr)


README_BEGIN, README_END = "<!-- bench:begin -->", "<!-- bench:end -->"


def write_readme(cells, met, total, machine, run, again):
    """Rewrites the README block between the bench markers from this run's table."""
    text = read(README)
    if README_BEGIN not in text or README_END not in text:
        print(f"bench: README.md has no {README_BEGIN} ... {README_END} block", file=sys.stderr)
        return False
    wrap = lambda text: textwrap.fill(text, width=100, break_on_hyphens=False)
    block = [README_BEGIN,
             "<!-- Written by scripts/bench --readme; edits here are overwritten. -->", "",
             wrap(f"The table below is {run_description(run, again)}, as printed. "
                  "`./scripts/bench --readme` runs everything and rewrites this block; "
                  "`./scripts/bench --no-run --readme` rewrites it from the kept JSON. Figures "
                  "move with the machine and its load (a shared machine moves them by 10 % and "
                  "more); read the ratios, which compare two benchmarks of the same run."), "",
             "```", machine, "```", "", markdown(cells), "", f"{met} of {total} goals met", "",
             wrap("Instructions per packet (`./scripts/bench --instructions`; repeatable to the "
                  "instruction, so `--compare` catches a 2 % change that timings on a shared "
                  "machine cannot):"), ""]
    instructions = instructions_markdown()
    block += [wrap(instructions[0])] + instructions[1:]
    block += ["", README_END]
    head, rest = text.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    with open(README, "w") as f:
        f.write(head + "\n".join(block) + tail + ("\n" if not tail.endswith("\n") else ""))
    print("README.md: Benchmarks block rewritten", file=sys.stderr)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="2 repetitions, 0.05 s minimum time")
    ap.add_argument("--filter", default=None,
                    help="only the metrics (and report plots, instruction paths) matching REGEX")
    ap.add_argument("--cpu", type=int, default=1, help="the CPU per-core figures are pinned to")
    ap.add_argument("--no-run", action="store_true", help="table from the JSON of the last run")
    ap.add_argument("--instructions", action="store_true",
                    help="instructions per packet under callgrind (no timed run)")
    ap.add_argument("--compare", action="store_true",
                    help="with --instructions: exit 1 when a path is > 2 %% above the baseline")
    ap.add_argument("--update-baseline", action="store_true",
                    help="count instructions and rewrite bench/baseline/instructions.json")
    ap.add_argument("--report", action="store_true",
                    help="also run the plots' benchmarks and write bench/report/")
    ap.add_argument("--readme", action="store_true",
                    help="rewrite README.md's Benchmarks block from this run's table")
    args = ap.parse_args()
    args.repetitions = 2 if args.quick else 5
    args.min_time = 0.05 if args.quick else None
    os.makedirs(RESULTS, exist_ok=True)
    if args.instructions or args.update_baseline or args.compare:
        return instructions_main(args)

    with open(GOALS) as f:
        rows = expand(json.load(f)["metrics"])
    if args.filter:
        rows = [r for r in rows if re.search(args.filter, r["metric"])]
    plots = [k for k in PLOT_TITLES if args.report and
             (not args.filter or re.search(args.filter, PLOT_TITLES[k]))]

    # Benchmarks to run per program: the rows' (pinned unless the row says otherwise), then the
    # plots'.
    pinned, threaded = {}, {}
    for r in rows:
        for k in ("l4lb", "baseline"):
            if r.get(k):
                (threaded if r.get("pinned") is False else pinned).setdefault(
                    r["program"], set()).add(r[k])
    for key in plots:
        for program, names in plot_needs()[key].items():
            pinned.setdefault(program, set()).update(names)
    for program, names in threaded.items():
        pinned.get(program, set()).difference_update(names)

    # Exact names as one anchored alternation; Benchmark matches the filter against the full
    # name, so special characters are escaped.
    def alternation(ns):
        return ("^(" + "|".join(escape(n) for n in sorted(ns)) + ")(/(" + "|".join(SUFFIXES) +
                ")[^/]*)*$") if ns else None

    run_record = os.path.join(RESULTS, "run.json")
    results = {}
    for program in sorted(set(pinned) | set(threaded)):
        if args.no_run:
            results[program] = {}
            for tag in ("", ".threads"):
                results[program].update(
                    load_medians(os.path.join(RESULTS, f"{program}{tag}.json"), 5))
        else:
            results[program] = run_program(program, args, alternation(pinned.get(program)),
                                           alternation(threaded.get(program)))
    if args.no_run:
        run = load_json(run_record)
    else:
        now = time.gmtime()
        run = {"command": shlex.join(["./scripts/bench"] + sys.argv[1:]),
               "date": f"{time.strftime('%H:%M UTC', now)}, {now.tm_mday} "
                       f"{time.strftime('%B %Y', now)}",
               "repetitions": args.repetitions, "quick": args.quick, "filter": args.filter,
               "cpu": args.cpu}
        with open(run_record, "w") as f:
            json.dump(run, f)

    cells, met, total = table(rows, results)
    machine = machine_line(os.path.join(ROOT, "build", "release"))
    print(machine)
    if not args.no_run:
        print(f"median of {args.repetitions} repetitions; per-core figures pinned to CPU "
              f"{args.cpu}")
    print(markdown(cells))
    print(f"\n{met} of {total} goals met")
    missing = sum(1 for r in cells[1:] if r[1] == "missing")
    if missing:
        print(f"{missing} metrics missing (benchmark absent or failed)")
    if FAILED:
        print("programs that failed: " + ", ".join(FAILED))
    if (args.report or args.readme) and not args.no_run:
        # The report and the README show instruction counts too: count them in the same run
        # (every path, whatever --filter says; a dozen seconds), when valgrind is there.
        if shutil.which("valgrind"):
            counted = run_instructions(argparse.Namespace(filter=None))
            if counted is not None:
                with open(INSTRUCTIONS_RESULT, "w") as f:
                    json.dump(counted, f, indent=1)
        else:
            print("bench: valgrind not found: the instruction counts shown are the last kept "
                  "ones (scripts/setup --valgrind)", file=sys.stderr)
    if args.report:
        write_report(args, cells, met, total, results, machine, run, plots)
    if args.readme and not write_readme(cells, met, total, machine, run, args.no_run):
        return 1
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
