#!/usr/bin/env python3
"""Runs gilua's benchmarks side by side with CPython and the stock lua5.4.

    python3 bench/run.py [--reps N] [--gilua PATH] [--only NAME[,NAME...]]
                         [--lua PATH] [--nolab PATH] [--out FILE] [--list]

Every workload is a pair of scripts in bench/ that time their own work with
a monotonic clock (interpreter start-up excluded) and print one line
"RESULT <value>": seconds, seconds per operation, a rate (per second) or a
ratio.  In each repetition the gilua script and the reference run right
after each other, the order alternating from one repetition to the next;
the ratio gilua / reference is taken inside each repetition.  The table
gives the median and the range (min-max) over the repetitions.

The table is printed and written to bench/results.md (--out).  A missed
target is reported, not fatal (benchmarks report, tests assert): the exit
status is 0 unless a workload crashed, timed out, wrote to stderr or gave a
wrong result (each script asserts its own result, e.g. the locked counter
must be exactly 1,000,000), in which case it is 1.  Standard library only.
"""
import argparse
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The CPython a Debian user has: /usr/bin/python3 (built with PGO and LTO),
# not whatever python3 comes first on PATH.
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
ROOT = os.path.dirname(HERE)
TIMEOUT = 300  # seconds for one run of one script

LABELS = {"lua": "lua5.4", "py": "CPython", "gilua": "gilua", "nolab": "no-lab gilua",
          "pydrive": "CPython"}


def W(ident, title, gilua, ref, unit, target=None, group="foundation", ref_label=None,
      rep_factor=1):
    """A workload: gilua and ref are (kind, args); kind is gilua, lua, py,
    nolab, or pydrive (a Python driver script that measures gilua itself).
    unit: "s" and "s/..." (lower is better), "/s" (higher is better),
    "ratio".  target: (op, value) with op "ratio<=" or "ratio>=" (on the
    median of the per-repetition ratios) or "gilua<=" (on gilua's median).
    rep_factor: short runs (tens of ms, where a stolen time slice is a
    large share) get that many times --reps repetitions."""
    return {"id": ident, "title": title, "gilua": gilua, "ref": ref, "unit": unit,
            "target": target, "group": group, "rep_factor": rep_factor,
            "ref_label": ref_label or LABELS[ref[0]]}


WORKLOADS = [
    # 1. Single thread, pure Lua: gilua against the stock lua5.4.
    W("fib", "fib(30) recursive, one thread", ("gilua", ["fib.lua", "30"]),
      ("lua", ["fib.lua", "30"]), "s", ("ratio<=", 1.03), rep_factor=3),
    W("loop", "10M-iteration loop, one thread", ("gilua", ["loop.lua"]),
      ("lua", ["loop.lua"]), "s", ("ratio<=", 1.03), rep_factor=3),
    W("fib-py", "fib(30) recursive, one thread (CPython, for information)",
      ("gilua", ["fib.lua", "30"]), ("py", ["fib.py", "30"]), "s", rep_factor=3),
    W("loop-py", "10M-iteration loop, one thread (CPython, for information)",
      ("gilua", ["loop.lua"]), ("py", ["loop.py"]), "s", rep_factor=3),
    # 2. Thread start-up.
    W("threads", "start+join of 2,000 no-op threads, one at a time (per thread)",
      ("gilua", ["threads.lua"]), ("py", ["threads.py"]), "s/thread", ("ratio<=", 0.6)),
    # 3. Uncontended locks.
    W("lock", "uncontended acquire()+release(), 1M times (per pair)",
      ("gilua", ["lock.lua", "acquire"]), ("py", ["lock.py", "acquire"]), "s/pair",
      ("ratio<=", 0.5)),
    W("lock-with", "uncontended lock:with(f) vs Python's `with lock:` (per pair)",
      ("gilua", ["lock.lua", "with"]), ("py", ["lock.py", "with"]), "s/pair"),
    W("lock-guard", "uncontended `<close>` lock:guard() vs Python's `with lock:` (per pair)",
      ("gilua", ["lock.lua", "guard"]), ("py", ["lock.py", "with"]), "s/pair"),
    # 4. Contended locked counter.
    W("counter", "4 threads x 250,000 locked `counter = counter + 1` (exact)",
      ("gilua", ["counter.lua", "4"]), ("py", ["counter.py", "4"]), "s", ("ratio<=", 0.5)),
    W("counter-1", "gilua: 4 threads x 250,000 vs 1 thread x 1,000,000 locked increments",
      ("gilua", ["counter.lua", "4"]), ("gilua", ["counter.lua", "1"]), "s",
      ("ratio<=", 1.1), ref_label="gilua, 1 thread"),
    # 5. Two CPU-bound threads against the same work done sequentially.
    W("cpu2", "2 CPU-bound fib calls: 2 threads / sequential (lua fib(34), py fib(32))",
      ("gilua", ["cpu2.lua"]), ("py", ["cpu2.py"]), "ratio", ("gilua<=", 1.02)),
    # 6. Sleeping threads.
    W("sleepers", "100 threads each sleeping 0.1 s, start all then join all (wall)",
      ("gilua", ["sleepers.lua"]), ("py", ["sleepers.py"]), "s", ("gilua<=", 0.105)),
    # Beyond the foundation issue: queues, pools, events, I/O, the GIL lab.
    W("qput", "Queue(): 1 producer -> 1 consumer, 200,000 items", ("gilua", ["qput.lua", "0"]),
      ("py", ["qput.py", "0"]), "/s", ("ratio>=", 3.0), group="more"),
    W("qput-1024", "Queue(1024): 1 producer -> 1 consumer, 200,000 items",
      ("gilua", ["qput.lua", "1024"]), ("py", ["qput.py", "1024"]), "/s", ("ratio>=", 2.0),
      group="more"),
    W("pool-map", "ThreadPoolExecutor(8).map, 10,000 tiny tasks", ("gilua", ["pool.lua", "map"]),
      ("py", ["pool.py", "map"]), "/s", ("ratio>=", 3.0), group="more"),
    W("pool-submit", "ThreadPoolExecutor(8): 10,000 submit() then result() each",
      ("gilua", ["pool.lua", "submit"]), ("py", ["pool.py", "submit"]), "/s", ("ratio>=", 3.0),
      group="more"),
    W("pool-latency", "ThreadPoolExecutor(8): one submit():result() at a time",
      ("gilua", ["pool.lua", "latency"]), ("py", ["pool.py", "latency"]), "/s",
      ("ratio>=", 2.0), group="more"),
    W("pingpong", "Event ping-pong between 2 threads, round trips", ("gilua", ["pingpong.lua"]),
      ("py", ["pingpong.py"]), "/s", group="more"),
    W("scraper", "scraper: 20 threads fetch 100 pages (gilua http vs urllib)",
      ("gilua", ["scraper.lua"]), ("py", ["scraper.py"]), "/s", group="more"),
    W("convoy", "convoy: echo rate with a spinner / alone, unpinned",
      ("pydrive", ["convoy.py", "gilua"]), ("py", ["convoy.py", "python"]), "ratio",
      ("ratio>=", 1.0), group="more"),
    W("convoy-pinned", "convoy: the same, pinned to one CPU (taskset -c 0)",
      ("pydrive", ["convoy.py", "gilua", "--pin"]), ("py", ["convoy.py", "python", "--pin"]),
      "ratio", ("ratio>=", 1.0), group="more"),
    W("nolab", "GIL lab compiled in vs a build without it (Event hand-offs)",
      ("gilua", ["pingpong.lua"]), ("nolab", ["pingpong.lua"]), "/s", ("ratio>=", 0.97),
      group="more"),
    W("trace", "GIL tracing on vs off (Event hand-offs)",
      ("gilua", ["--gil-trace={tmp}/trace.json", "pingpong.lua"]), ("gilua", ["pingpong.lua"]),
      "/s", group="more", ref_label="gilua, no trace"),
    # The GIL's scheduling policies (issue 13), both in the same run.
    W("T1-fair", "T1 echo next to a spinner / alone, pinned to one CPU: fair (vs CPython)",
      ("pydrive", ["convoy.py", "gilua", "--pin", "--policy", "fair"]),
      ("py", ["convoy.py", "python", "--pin"]), "ratio", ("gilua>=", 0.5), group="policy"),
    W("T1-fifo", "T1 the same: fifo (vs CPython)",
      ("pydrive", ["convoy.py", "gilua", "--pin", "--policy", "fifo"]),
      ("py", ["convoy.py", "python", "--pin"]), "ratio", group="policy"),
    W("T2-fair", "T2 echo next to a spinner / alone, unpinned: fair (vs CPython)",
      ("pydrive", ["convoy.py", "gilua", "--policy", "fair"]),
      ("py", ["convoy.py", "python"]), "ratio", ("gilua>=", 0.3), group="policy"),
    W("T3", "T3 echo next to 4 spinners, unpinned, req/s: fair vs fifo",
      ("pydrive", ["convoy.py", "gilua", "--policy", "fair", "--spinners", "4", "--absolute"]),
      ("pydrive", ["convoy.py", "gilua", "--policy", "fifo", "--spinners", "4", "--absolute"]),
      "/s", ("ratio>=", 10.0), group="policy", ref_label="gilua fifo"),
    W("T4", "T4 2 fib threads / sequential: fair vs fifo",
      ("gilua", ["--gil-policy=fair", "cpu2.lua"]), ("gilua", ["--gil-policy=fifo", "cpu2.lua"]),
      "ratio", ("ratio~", 0.02), group="policy", ref_label="gilua fifo"),
    W("T5", "T5 cpued: 2 pure-Lua threads and one computing 1 ms then sleep(0): least share, fair vs fifo",
      ("gilua", ["cpued.lua", "fair"]), ("gilua", ["cpued.lua", "fifo"]), "ratio",
      ("gilua>=", 0.28), group="policy", ref_label="gilua fifo"),
    W("T6", "T6 a 300,000-line io.lines reader next to 3 compute threads: fair (vs CPython)",
      ("gilua", ["reader.lua", "/tmp/gilua-bench-lines.txt", "fair"]),
      ("py", ["reader.py", "/tmp/gilua-bench-lines.txt"]), "s", ("ratio<=", 1.0), group="policy"),
    W("T7-pingpong", "T7 Event ping-pong, round trips: fair vs fifo",
      ("gilua", ["--gil-policy=fair", "pingpong.lua"]),
      ("gilua", ["--gil-policy=fifo", "pingpong.lua"]), "/s", ("ratio>=", 0.97),
      group="policy", ref_label="gilua fifo"),
    W("T7-qput0", "T7 Queue() 1 -> 1: fair vs fifo", ("gilua", ["--gil-policy=fair", "qput.lua", "0"]),
      ("gilua", ["--gil-policy=fifo", "qput.lua", "0"]), "/s", ("ratio>=", 0.97),
      group="policy", ref_label="gilua fifo"),
    W("T7-qput1024", "T7 Queue(1024) 1 -> 1: fair vs fifo",
      ("gilua", ["--gil-policy=fair", "qput.lua", "1024"]),
      ("gilua", ["--gil-policy=fifo", "qput.lua", "1024"]), "/s", ("ratio>=", 0.97),
      group="policy", ref_label="gilua fifo"),
    W("T7-map", "T7 ThreadPoolExecutor(8).map, 10,000 tasks: fair vs fifo",
      ("gilua", ["--gil-policy=fair", "pool.lua", "map"]),
      ("gilua", ["--gil-policy=fifo", "pool.lua", "map"]), "/s", ("ratio>=", 0.97),
      group="policy", ref_label="gilua fifo"),
    W("T7-latency", "T7 one submit():result() at a time: fair vs fifo",
      ("gilua", ["--gil-policy=fair", "pool.lua", "latency"]),
      ("gilua", ["--gil-policy=fifo", "pool.lua", "latency"]), "/s", ("ratio>=", 0.97),
      group="policy", ref_label="gilua fifo"),
    W("T8", "T8 4 spinners + 8 echo threads + main, 10 s: the longest wait of any thread, fair vs fifo",
      ("gilua", ["starve.lua", "fair", "10"]), ("gilua", ["starve.lua", "fifo", "10"]), "s",
      ("gilua<=", 0.0125), group="policy", ref_label="gilua fifo"),
    W("T9-1", "T9 ccbench latency, 1 CPU thread: mean delay, fair (vs CPython)",
      ("gilua", ["latency.lua", "1", "fair"]), ("py", ["latency.py", "1"]), "s",
      ("gilua<=", 0.001), group="policy"),
    W("T9-4", "T9 ccbench latency, 4 CPU threads: mean delay, fair (vs CPython)",
      ("gilua", ["latency.lua", "4", "fair"]), ("py", ["latency.py", "4"]), "s",
      ("gilua<=", 0.001), group="policy"),
]


class Failure(Exception):
    pass


class Runner:
    def __init__(self, args, tmp):
        self.gilua = os.path.abspath(args.gilua)
        self.lua = args.lua
        self.nolab = os.path.abspath(args.nolab)
        self.tmp = tmp
        env = dict(os.environ)
        for k in ("LUA_INIT", "LUA_INIT_5_4", "LUA_PATH", "LUA_PATH_5_4", "LUA_CPATH",
                  "LUA_CPATH_5_4"):
            env.pop(k, None)
        # Every program gets the same environment (its size moves the initial
        # stack, which alone can shift a call-heavy loop by a few percent):
        # with the clock module for lua5.4, which gilua does not need.
        env["LUA_CPATH_5_4"] = os.path.join(tmp, "?.so") + ";;"
        self.env = env

    def command(self, side):
        kind, args = side
        args = [a.replace("{tmp}", self.tmp) for a in args]
        if kind == "gilua":
            return [self.gilua] + args
        if kind == "nolab":
            return [self.nolab] + args
        if kind == "lua":
            return [self.lua] + args
        if kind == "py":
            return [PYTHON] + args
        if kind == "pydrive":
            return [PYTHON] + args + ["--gilua", self.gilua]
        raise ValueError(kind)

    def run(self, side):
        """Runs one side once: (value, info lines); raises Failure."""
        cmd = self.command(side)
        shown = "cd %s && %s%s" % (shlex.quote(HERE), "LUA_CPATH_5_4=%s " % shlex.quote(
            self.env["LUA_CPATH_5_4"]) if side[0] == "lua" else "", shlex.join(cmd))
        try:
            res = subprocess.run(cmd, cwd=HERE, env=self.env, capture_output=True, text=True,
                                 timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise Failure("timed out after %d s: %s\n%s%s" % (
                TIMEOUT, shown, tail(e.stdout), tail(e.stderr)))
        values = [ln.split()[1] for ln in res.stdout.splitlines()
                  if ln.startswith("RESULT") and len(ln.split()) == 2]
        info = [ln[5:] for ln in res.stdout.splitlines() if ln.startswith("INFO ")]
        why = None
        if res.returncode != 0:
            why = "exit status %d" % res.returncode
        elif res.stderr.strip():
            why = "wrote to stderr"
        elif len(values) != 1:
            why = "printed %d RESULT lines, not 1" % len(values)
        if why is None:
            try:
                return float(values[0]), info
            except ValueError:
                why = "RESULT is not a number"
        raise Failure("%s: %s\n--- stdout:\n%s--- stderr:\n%s" % (
            why, shown, tail(res.stdout), tail(res.stderr)))


def calibrate(runner):
    """The machine's pace: lua5.4 fib(30), median of 3 runs."""
    try:
        return fmt(statistics.median(runner.run(("lua", ["fib.lua", "30"]))[0]
                                     for _ in range(3)), "s")
    except Failure as e:
        return "(failed: %s)" % str(e).splitlines()[0]


def tail(s, n=3000):
    if s is None:
        return ""
    if isinstance(s, bytes):
        s = s.decode(errors="replace")
    s = s[-n:]
    return s if s.endswith("\n") or not s else s + "\n"


def fmt(v, unit):
    if unit == "/s":
        return "%.3g/s" % v
    if unit == "ratio":
        return "%.3f" % v
    per = unit[1:]  # "" or "/thread", "/pair"
    if v < 1e-6:
        return "%.1f ns%s" % (v * 1e9, per)
    if v < 1e-3:
        return "%.3g µs%s" % (v * 1e6, per)
    if v < 1:
        return "%.3g ms%s" % (v * 1e3, per)
    return "%.3g s%s" % (v, per)


def median_range(xs, unit):
    return "%s [%s–%s]" % (fmt(statistics.median(xs), unit), fmt(min(xs), unit),
                           fmt(max(xs), unit))


def judge(w, gs, ratios):
    """(target text, met)"""
    if not w["target"]:
        return "", ""
    op, value = w["target"]
    if op in ("gilua<=", "gilua>="):
        shown = fmt(value, w["unit"]) if w["unit"] != "ratio" else "%g" % value
        m = statistics.median(gs)
        if op == "gilua<=":
            return "gilua ≤ %s" % shown, m <= value
        return "gilua ≥ %s" % shown, m >= value
    if op == "ratio~":
        m = statistics.median(ratios)
        return "within %g%% of %s" % (value * 100, w["ref_label"]), abs(m - 1) <= value
    m = statistics.median(ratios)
    if op == "ratio<=":
        return "≤ %g× %s" % (value, w["ref_label"]), m <= value
    return "≥ %g× %s" % (value, w["ref_label"]), m >= value


def capture(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (r.stdout + r.stderr).strip() or "(no output)"
    except (OSError, subprocess.SubprocessError) as e:
        return "unavailable (%s)" % e


def machine(runner):
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    u = platform.uname()
    git = capture(["git", "-C", ROOT, "describe", "--always", "--dirty"])
    return [
        "- Machine: nproc %d (%s logical CPUs), %s, %s %s %s (%s)" % (
            nproc, os.cpu_count(), cpu, u.system, u.release, u.version, u.machine),
        "- Python (reference): `%s`: %s" % (PYTHON, capture([PYTHON, "-c",
            "import sys, sysconfig; print('CPython', sys.version.split()[0], 'configured',"
            " sysconfig.get_config_var('CONFIG_ARGS') or '(unknown)')"])),
        "- Lua (reference): `%s`: %s" % (runner.lua, capture([runner.lua, "-v"])),
        "- gilua: `%s`: %s (tree %s)" % (runner.gilua, capture([runner.gilua, "-v"]), git),
        "- Date: %s" % time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    ]


def build_monoclock(tmp):
    cc = os.environ.get("CC", "cc")
    cflags = capture(["pkg-config", "--cflags", "lua5.4"])
    if "unavailable" in cflags or "No package" in cflags or cflags == "(no output)":
        cflags = "-I/usr/include/lua5.4"
    cmd = [cc, "-O2", "-shared", "-fPIC"] + shlex.split(cflags) + [
        "-o", os.path.join(tmp, "monoclock.so"), os.path.join(HERE, "monoclock.c")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("run.py: cannot build the clock for lua5.4: %s\n%s" % (shlex.join(cmd),
                                                                          r.stderr))


def selected(w, only):
    if not only:
        return True
    for name in only:
        name = name.strip().lower()
        if name in ("all", w["group"], w["id"]) or w["id"].startswith(name + "-"):
            return True
    return False


def run_all(args, runner, todo, lines, failures, details, missed, bests):
    """Runs the workloads, appending table rows to lines and the rest to the lists."""
    for w in todo:
        if (w["ref"][0] == "nolab" and not os.access(runner.nolab, os.X_OK)):
            row = "| %s | skipped: no %s (`make bench` builds it) | | | | |" % (
                w["title"], runner.nolab)
            print(row, flush=True)
            lines.append(row)
            continue
        gs, rs, ratios = [], [], []
        reps = args.reps * w["rep_factor"]
        title = w["title"] + ("" if reps == args.reps else " (%d reps)" % reps)
        try:
            for rep in range(reps):
                if rep % 2 == 0:
                    (g, gi), (r, ri) = runner.run(w["gilua"]), runner.run(w["ref"])
                else:
                    (r, ri), (g, gi) = runner.run(w["ref"]), runner.run(w["gilua"])
                gs.append(g)
                rs.append(r)
                ratios.append(g / r if r else float("inf"))
                for label, info in (("gilua", gi), (w["ref_label"], ri)):
                    details.extend("- %s, rep %d, %s: %s" % (w["id"], rep + 1, label, x)
                                   for x in info)
        except Failure as e:
            failures.append((w, str(e)))
            row = "| %s | **FAILED** (see below) | | | | no |" % title
            print(row, flush=True)
            print("FAILED %s: %s" % (w["id"], e), file=sys.stderr, flush=True)
            lines.append(row)
            continue
        if w["unit"] != "ratio":
            best = (min(gs) / min(rs)) if w["unit"] != "/s" else (max(gs) / max(rs))
            bests.append("- %s: %.3f" % (w["id"], best))
        tgt, met = judge(w, gs, ratios)
        if met is False:
            missed.append(w["id"])
        row = "| %s | %s | %s: %s | %s | %s | %s |" % (
            title, median_range(gs, w["unit"]), w["ref_label"],
            median_range(rs, w["unit"]), median_range(ratios, "ratio"), tgt,
            "" if met == "" else ("yes" if met else "**no**"))
        print(row, flush=True)
        lines.append(row)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="repetitions (default 5, at least 5)")
    ap.add_argument("--gilua", default=os.path.join(ROOT, "build", "gilua"))
    ap.add_argument("--lua", default="/usr/bin/lua5.4" if os.path.exists("/usr/bin/lua5.4")
                    else "lua5.4", help="the stock Lua 5.4 (default /usr/bin/lua5.4)")
    ap.add_argument("--nolab", default=os.path.join(ROOT, "build-nolab", "gilua"),
                    help="a gilua built with -DGILUA_NO_LAB (make bench builds it)")
    ap.add_argument("--only", default=None,
                    help="comma-separated workload ids or groups (foundation, more); "
                         "'lock' also selects lock-with and lock-guard")
    ap.add_argument("--out", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    args = ap.parse_args()
    if args.list:
        for w in WORKLOADS:
            print("%-14s %-10s %s" % (w["id"], w["group"], w["title"]))
        return 0
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    only = args.only.split(",") if args.only else None
    todo = [w for w in WORKLOADS if selected(w, only)]
    if not todo:
        ap.error("no workload matches --only %s (see --list)" % args.only)
    if not os.access(args.gilua, os.X_OK):
        sys.exit("run.py: no gilua at %s (build it with make, or pass --gilua)" % args.gilua)

    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="gilua-bench-")
    runner = Runner(args, tmp)
    build_monoclock(tmp)
    repro = ["--reps", str(args.reps), "--gilua", runner.gilua]
    if args.only:
        repro += ["--only", args.only]
    if args.lua != ap.get_default("lua"):
        repro += ["--lua", args.lua]
    if any(w["ref"][0] == "nolab" for w in todo) and os.access(runner.nolab, os.X_OK):
        repro += ["--nolab", runner.nolab]
    if os.path.abspath(args.out) != os.path.abspath(ap.get_default("out")):
        repro += ["--out", os.path.abspath(args.out)]
    repro = "cd %s && python3 bench/run.py %s" % (shlex.quote(ROOT), shlex.join(repro))
    lines = ["# gilua benchmarks", ""] + machine(runner) + [
        "- Reproduce: `%s`" % repro.rstrip(),
        "- %d repetitions; in each, gilua and the reference run one after the other "
        "(alternating which goes first) and the ratio gilua / reference is taken; "
        "cells are median [min–max] over the repetitions (rows marked with more "
        "repetitions are short runs, tens of ms)." % args.reps,
        "", "| workload | gilua, median [range] | reference, median [range] | "
        "ratio gilua/ref, median [range] | target | met |",
        "|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    calib = [calibrate(runner)]
    if args.reps < 5:
        print("(fewer than 5 repetitions: for a quick look only)", file=sys.stderr)

    httpd = None
    if any(w["id"] == "scraper" for w in todo):
        httpd = subprocess.Popen([PYTHON, "httpd.py"], cwd=HERE,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        runner.env["BENCH_HTTP_URL"] = "http://127.0.0.1:%s" % httpd.stdout.readline().strip()

    failures, details, missed, bests = [], [], [], []
    try:
        run_all(args, runner, todo, lines, failures, details, missed, bests)
    finally:
        if httpd:
            httpd.stdin.close()
            httpd.wait()
    calib.append(calibrate(runner))
    shutil.rmtree(tmp, ignore_errors=True)
    summary = "Targets missed: %s." % (", ".join(missed) if missed else "none")
    lines += ["", summary, "",
              "Machine steadiness: the stock lua5.4 running fib(30), median of 3, took %s "
              "before the workloads and %s after (a shared VM has slow phases; compare "
              "these with the fib row)." % tuple(calib)]
    if bests:
        lines += ["", "Best run against best run (gilua's fastest / the reference's fastest; "
                  "for information, less sensitive to a slow phase than the medians):", ""] + bests
    if details:
        lines += ["", "Details printed by the scripts:", ""] + details
    if failures:
        lines += ["", "## Failures (crash, timeout, stderr output or wrong result)", ""]
        for w, e in failures:
            lines += ["%s:" % w["id"], "", "```", e.rstrip(), "```", ""]
    lines += ["", "Total time %.0f s." % (time.monotonic() - started)]
    print("\n".join(lines[lines.index(summary) - 1:]), flush=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("(written to %s)" % args.out)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
