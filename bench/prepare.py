"""Benchmark `securecli prepare` on NL2Bash (../shared/data/nl2bash, 12,607 rows).

1. Whole pipeline wall time (target: <= 20 s on 2 cores).
2. The shellcheck stage batched vs the V2 way (`shellcheck --shell=bash --severity=error -`, one
   process per command), measured in the same run on a random sample and extrapolated to all rows
   (target: >= 8x). The sample's batched findings must equal its one-by-one findings.

Run: .venv/bin/python bench/prepare.py [--data DIR] [--sample N]
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from preprocessing.params import PrepareParams  # noqa: E402
from preprocessing.pipeline import prepare  # noqa: E402
from preprocessing.shellcheck import check_alone, check_commands, find_shellcheck  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "nl2bash"


def child_cpu() -> float:
    """Return the CPU seconds used so far by finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_pipeline(data: Path) -> float:
    """Run the whole pipeline once into a temp dir and print its funnel; return the wall seconds."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = prepare([f"nl2bash:{data}"], Path(out), PrepareParams())
        wall = time.perf_counter() - start
    funnel = result.report["funnel"]
    print(f"pipeline: {funnel['input']} rows -> {funnel['kept']} kept, {funnel['converted_to_refusal']} refusals, "
          f"{funnel['rejected']} rejected; {funnel['output']} rows with generated ones; splits {result.report['splits']}")
    for stage in funnel["stages"]:
        print(f"  {stage['stage']:<11} {stage['in']:>6} -> {stage['out']:>6}")
    print(f"  recommended sequence_len {result.report['tokens']['recommended_sequence_len']}, "
          f"dataset hash {result.dataset_hash}")
    print(f"pipeline wall: {wall:.1f} s (target <= 20 s) {'OK' if wall <= 20 else 'OVER'}")
    return wall


def bench_shellcheck(commands: list[str], sample_size: int) -> float:
    """Time batched shellcheck on all commands and the V2 way on a sample; return the speed-up."""
    binary = str(find_shellcheck())
    sample = random.Random(0).sample(commands, min(sample_size, len(commands)))
    cpu, start = child_cpu(), time.perf_counter()
    for command in sample:
        subprocess.run([binary, "--shell=bash", "--severity=error", "-"], input=command + "\n",
                       capture_output=True, text=True, check=False)
    v2_wall = (time.perf_counter() - start) / len(sample) * len(commands)
    v2_cpu = (child_cpu() - cpu) / len(sample) * len(commands)
    cpu, start = child_cpu(), time.perf_counter()
    batched = check_commands(commands, "error")
    batched_wall, batched_cpu = time.perf_counter() - start, child_cpu() - cpu
    verdicts = dict(zip(commands, batched))
    mismatches = sum(verdicts[c] != check_alone(c, "error") for c in sample[:200])
    ratio = v2_wall / batched_wall
    print(f"shellcheck V2 (one process per command, {len(sample)} sampled, extrapolated to {len(commands)}): "
          f"{v2_wall:.1f} s wall, {v2_cpu:.1f} s CPU")
    print(f"shellcheck batched ({len(set(commands))} distinct commands, all cores): "
          f"{batched_wall:.1f} s wall, {batched_cpu:.1f} s CPU")
    print(f"shellcheck speed-up: {ratio:.1f}x wall (target >= 8x) {'OK' if ratio >= 8 else 'UNDER'}, "
          f"{v2_cpu / batched_cpu:.1f}x CPU; batched == alone on {min(200, len(sample))} sampled: "
          f"{'yes' if not mismatches else f'NO ({mismatches} differ)'}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="NL2Bash dir with all.nl / all.cm")
    parser.add_argument("--sample", type=int, default=500, help="commands timed the V2 way")
    args = parser.parse_args()
    if not (args.data / "all.cm").is_file():
        sys.exit(f"benchmark data not found: {args.data / 'all.cm'} (needs ../shared/data/nl2bash)")
    commands = (args.data / "all.cm").read_text(encoding="utf-8").splitlines()
    bench_pipeline(args.data)
    bench_shellcheck(commands, args.sample)


if __name__ == "__main__":
    main()
