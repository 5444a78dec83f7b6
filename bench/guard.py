"""Benchmark CommandRisk on the 12,607 NL2Bash commands: latency, throughput, verdict shares, long pipelines.

Run: .venv/bin/python bench/guard.py [--data ../shared/data/nl2bash/all.cm] [--out runs/bench/guard]

Prints p50/p99 latency, throughput on one core, allow/warn/block counts, how many warns are only "unknown
program" (the catalogue's coverage gap), the time for an 8,000-stage pipeline against eight 1,000-stage
ones (linearity), and writes the blocked and warned commands with their explanations. The speed baseline
measured in the same run is the published V2 guard's approach (17 regexes plus substring checks),
re-implemented here only as a reference point for speed and for how many commands it would have blocked.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.progress import track  # noqa: E402

from commandrisk import Verdict, assess  # noqa: E402
from common.paths import repo_root, runs_dir  # noqa: E402

DEFAULT_DATA = repo_root().parent / "shared" / "data" / "nl2bash" / "all.cm"
V2_PATTERNS = [re.compile(p, re.I) for p in (
    r"rm\s+-[a-z]*r[a-z]*f?\s+/", r"rm\s+-rf\s+~", r"mkfs", r"dd\s+if=.*of=/dev/", r">\s*/dev/sd",
    r"chmod\s+-R\s+777\s+/", r"chown\s+-R", r":\(\)\s*\{", r"curl.*\|\s*(ba)?sh", r"wget.*\|\s*(ba)?sh",
    r"/dev/tcp/", r"nc\s+.*-e", r"base64\s+-d.*\|\s*(ba)?sh", r"/etc/shadow", r"history\s+-c",
    r"iptables\s+-F", r"shutdown|reboot",
)]
V2_SUBSTRINGS = ("sudo rm", "rm -rf", "> /etc/", "eval ", "crontab")


def v2_blocks(command: str) -> bool:
    """The V2-style guard: block when any regex or substring matches."""
    return any(p.search(command) for p in V2_PATTERNS) or any(s in command for s in V2_SUBSTRINGS)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def measure(commands: list[str]) -> tuple[list[float], list[float], dict[str, list[tuple[str, str]]], Counter[str]]:
    """Per-command wall and CPU latency (seconds), the commands per verdict with explanations, and the rule ids
    behind the warns (a warn whose findings are all one rule counts under that rule)."""
    wall: list[float] = []
    cpu: list[float] = []
    by_verdict: dict[str, list[tuple[str, str]]] = {v.value: [] for v in Verdict}
    warn_causes: Counter[str] = Counter()
    for command in track(commands, description="commandrisk.assess", transient=True):
        start, start_cpu = time.perf_counter(), time.thread_time()
        result = assess(command)
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
        by_verdict[result.verdict.value].append((command, result.explanation))
        if result.verdict is Verdict.WARN:
            rules = {f.rule_id for f in result.findings if f.verdict is Verdict.WARN}
            warn_causes[next(iter(rules)) if len(rules) == 1 else "several"] += 1
    return wall, cpu, by_verdict, warn_causes


def pipeline_seconds(stages: int) -> float:
    """CPU seconds to judge `cat f | cat | ... ` with `stages` stages."""
    command = "cat f" + " | cat" * (stages - 1)
    start = time.thread_time()
    assess(command)
    return time.thread_time() - start


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="one command per line (NL2Bash all.cm)")
    parser.add_argument("--out", type=Path, default=runs_dir() / "bench" / "guard", help="where the lists go")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"error: {args.data} not found (NL2Bash all.cm; pass --data)", file=sys.stderr)
        return 2
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    commands = [line.rstrip("\n") for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    for command in commands[:200]:
        assess(command)

    wall = time.perf_counter()
    latencies, cpu_latencies, by_verdict, warn_causes = measure(commands)
    wall = time.perf_counter() - wall

    base_start = time.thread_time()
    v2_blocked = [c for c in commands if v2_blocks(c)]
    base_cpu = time.thread_time() - base_start

    ordered, cpu_ordered = sorted(latencies), sorted(cpu_latencies)
    p50, p99 = percentile(ordered, 0.50) * 1e3, percentile(ordered, 0.99) * 1e3
    cpu_p50, cpu_p99 = percentile(cpu_ordered, 0.50) * 1e3, percentile(cpu_ordered, 0.99) * 1e3
    cpu_total = sum(cpu_latencies)
    throughput, cpu_throughput = len(commands) / wall, len(commands) / cpu_total
    n = len(commands)
    blocked, warned = by_verdict["block"], by_verdict["warn"]
    args.out.mkdir(parents=True, exist_ok=True)
    for verdict, rows in (("blocked", blocked), ("warned", warned)):
        target = args.out / f"{verdict}.tsv"
        tmp = target.with_suffix(".tmp")
        tmp.write_text("".join(f"{c}\t{e}\n" for c, e in rows), encoding="utf-8")
        tmp.replace(target)

    print(f"commands               {n}")
    print(f"CPU time p50 / p99     {cpu_p50:.3f} ms / {cpu_p99:.3f} ms   (max {cpu_ordered[-1] * 1e3:.2f} ms; "
          f"target p99 <= 1 ms: {'OK' if cpu_p99 <= 1 else 'MISSED'})")
    print(f"throughput (CPU, 1 core) {cpu_throughput:,.0f} commands/s   (target >= 2,000: "
          f"{'OK' if cpu_throughput >= 2000 else 'MISSED'})")
    print(f"wall p50 / p99         {p50:.3f} ms / {p99:.3f} ms   (mean {statistics.fmean(latencies) * 1e3:.3f} ms, "
          f"{throughput:,.0f} commands/s; wall time includes waiting for a shared CPU, load "
          f"{os.getloadavg()[0]:.1f})")
    allowed = len(by_verdict["allow"])
    unknown_only = warn_causes["unknown.program"]
    long_pipeline = pipeline_seconds(8000)
    short_pipelines = 8 * pipeline_seconds(1000)
    print(f"allowed                {allowed} ({100 * allowed / n:.2f}%)")
    print(f"warned                 {len(warned)} ({100 * len(warned) / n:.2f}%)   -> {args.out / 'warned.tsv'}")
    print(f"blocked                {len(blocked)} ({100 * len(blocked) / n:.2f}%)   -> {args.out / 'blocked.tsv'}"
          f"   (target <= 2%: {'OK' if len(blocked) <= 0.02 * n else 'MISSED'})")
    print(f"warns only 'unknown program' {unknown_only} ({100 * unknown_only / n:.2f}% of commands; target <= 1%: "
          f"{'OK' if unknown_only <= 0.01 * n else 'MISSED'})")
    print("top warn causes        " + ", ".join(f"{rule} {count}" for rule, count in warn_causes.most_common(8)))
    print(f"8,000-stage pipeline   {long_pipeline:.2f} s CPU (target <= 1 s: {'OK' if long_pipeline <= 1 else 'MISSED'});"
          f" {long_pipeline / short_pipelines:.2f}x eight 1,000-stage pipelines (1.0 = linear)")
    print(f"baseline V2 regexes    {n / base_cpu:,.0f} commands/s (CPU), would block {len(v2_blocked)} "
          f"({100 * len(v2_blocked) / n:.2f}%)")
    print(f"ratio                  commandrisk costs {cpu_total / base_cpu:.1f}x the V2 baseline's CPU per command "
          f"and blocks {len(blocked) / max(1, len(v2_blocked)):.2f}x as many NL2Bash commands")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
