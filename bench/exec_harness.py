"""Benchmark: the execution harness over all icalfa tasks, gold against gold.

Prepares every task (gold run twice, broken tasks dropped with the reason), then scores each kept
task's gold as if it were a prediction (a third run) and checks every one scores 1.0. Target: at
most 120 s on 2 cores. Baseline, measured in the same run on a sample of tasks: rebuilding the
task's file system from its setup script before every run instead of building it once and copying.

Run: .venv/bin/python bench/exec_harness.py [--workers 2] [--baseline-sample 30]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.execution import (  # noqa: E402
    UNSTABLE_GOLD,
    UNSTABLE_GOLD_REASON,
    ExecutionHarness,
    reason_kind,
    load_tasks,
    setup_script,
)
from eval.sandbox import Sandbox  # noqa: E402

BUDGET_S = 120.0


def _baseline_per_run(sandbox: Sandbox, harness: ExecutionHarness, tasks: list, repeat: int) -> tuple[float, float]:
    """Return seconds per run for (copy of a prebuilt image, image rebuilt from the setup script) on `tasks`."""
    started = time.perf_counter()
    for task in tasks:
        sandbox.run(harness.image(task.file_system), task.gold)
    copied = (time.perf_counter() - started) / len(tasks)
    started = time.perf_counter()
    for task in tasks[:repeat]:
        sandbox.run(sandbox.build_image(f"rebuild-fs{task.file_system}", setup_script(task.file_system)), task.gold)
    rebuilt = (time.perf_counter() - started) / min(repeat, len(tasks))
    return copied, rebuilt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-sample", type=int, default=30)
    args = parser.parse_args()

    tasks = load_tasks()
    with Sandbox() as sandbox:
        harness = ExecutionHarness(sandbox, workers=args.workers)
        started = time.perf_counter()
        prepared = harness.prepare(tasks)
        prepared_at = time.perf_counter()
        kept = [item for item in prepared if item.kept]
        scores = harness.score_many([(item, item.task.gold) for item in kept])
        total = time.perf_counter() - started

        sample = tasks[:: max(1, len(tasks) // args.baseline_sample)][: args.baseline_sample]
        copied, rebuilt = _baseline_per_run(sandbox, harness, sample, args.baseline_sample)

    guard_blocked = sum(1 for item in prepared if (item.drop_reason or "").startswith("gold blocked"))
    runs = 2 * (len(tasks) - guard_blocked) + len(kept)
    drops = {item.task.task_id: (item.task.gold, item.drop_reason) for item in prepared if not item.kept}
    drops |= {item.task.task_id: (item.task.gold, UNSTABLE_GOLD_REASON)
              for item, score in zip(kept, scores) if score.outcome == UNSTABLE_GOLD}
    scored = [(item, score) for item, score in zip(kept, scores) if score.outcome != UNSTABLE_GOLD]
    perfect = all(score.score == 1.0 for _, score in scored)
    print(f"tasks: {len(tasks)}  kept: {len(scored)}  dropped: {len(drops)}")
    for task_id, (gold, reason) in sorted(drops.items()):
        print(f"  dropped {task_id}: {gold!r}: {reason}")
    for item, score in scored:
        if score.score != 1.0:
            print(f"  gold vs gold FAILED {item.task.task_id}: {item.task.gold!r}: {score.outcome} "
                  f"(stdout same: {score.stdout_match}, file-system diff same: {score.fs_match})")
    print(f"dropped by reason: {dict(Counter(reason_kind(reason) for _, reason in drops.values()))}")
    print(f"gold vs gold on kept tasks: {sum(score.score for _, score in scored):.0f}/{len(scored)} "
          f"({'all 1.0' if perfect else 'NOT all 1.0'})")
    print(f"time: {total:.1f} s total ({prepared_at - started:.1f} s preparing, {total - (prepared_at - started):.1f} s "
          f"scoring) for ~{runs} sandbox runs, {args.workers} workers; budget {BUDGET_S:.0f} s: "
          f"{'OK' if total <= BUDGET_S else 'OVER'}")
    print(f"per run, sequential, {len(sample)} sampled tasks: build once + copy {copied * 1000:.0f} ms, "
          f"rebuild from setup script {rebuilt * 1000:.0f} ms -> ratio {rebuilt / copied:.2f}x")
    return 0 if perfect and total <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
