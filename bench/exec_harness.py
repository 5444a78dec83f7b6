"""Benchmark: the execution harness over all icalfa tasks, gold against gold, and gold2 as a prediction.

Prepares every task (gold and gold2 run twice, broken tasks dropped with the reason), then scores
each kept task's gold as if it were a prediction (a third run) and checks every one scores 1.0.
Then scores each task's second verified reference (gold2) as a prediction: how often it matches
gold alone at each comparison level (strict; + line order ignored where the output is a set of
lines; + timestamps masked), how often it matches any reference, and why the rest differ.
Target: at most 120 s on 2 cores. Baseline, measured in the same run on a sample of tasks:
rebuilding the task's file system from its setup script before every run instead of building it
once and copying.

Run: .venv/bin/python bench/exec_harness.py [--workers 2] [--baseline-sample 30] [--dump TSV]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.execution import (  # noqa: E402
    LEVELS,
    UNSTABLE_GOLD,
    UNSTABLE_GOLD_REASON,
    CommandScore,
    ExecutionHarness,
    PreparedTask,
    load_tasks,
    reason_kind,
    same_effect_at,
    setup_script,
)
from eval.sandbox import RunResult, Sandbox  # noqa: E402

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


def _why_different(run: RunResult, gold: RunResult) -> str:
    """Name the first explanation of why gold2's run differs from gold's (diagnostic, not a metric)."""
    if run.fs_diff != gold.fs_diff:
        return "file-system diff differs"
    ours, theirs = run.stdout.splitlines(), gold.stdout.splitlines()
    if sorted(ours) == sorted(theirs):
        return "same lines, other order (gold sorts, so its order counts; gold2 does not)"
    if [" ".join(line.split()) for line in ours] == [" ".join(line.split()) for line in theirs]:
        return "whitespace inside lines (column alignment)"
    if sorted(line.rsplit("/", 1)[-1] for line in ours) == sorted(line.rsplit("/", 1)[-1] for line in theirs):
        return "same last path components (absolute vs relative paths, or another line format)"
    if [re.sub(r"\d+", "0", line) for line in ours] == [re.sub(r"\d+", "0", line) for line in theirs]:
        return "numbers only (sizes, counts, ids, dates)"
    if not ours or not theirs:
        return "one prints nothing"
    return "different output"


def _gold2_report(kept: list[PreparedTask], scores: list[CommandScore], dump: Path) -> None:
    """Print how gold2, scored as a prediction, fares against gold alone and against any reference."""
    total = len(kept)
    vs_gold = {level: 0 for level in LEVELS}
    causes: Counter[str] = Counter()
    differing = []
    for item, score in zip(kept, scores):
        if score.run is None:
            causes[f"gold2 not run ({score.outcome})"] += 1
            continue
        for level in LEVELS:
            vs_gold[level] += same_effect_at(score.run, item.gold_run, item.task.gold, level)
        if not same_effect_at(score.run, item.gold_run, item.task.gold, "lenient"):
            cause = _why_different(score.run, item.gold_run)
            causes[cause] += 1
            differing.append("\t".join((item.task.task_id, cause, item.task.gold, item.task.gold2,
                                         str(score.score), item.gold2_problem or "")))
    dump.parent.mkdir(parents=True, exist_ok=True)
    dump.write_text("task\tcause\tgold\tgold2\tany_reference\tgold2_problem\n" + "\n".join(differing) + "\n",
                    encoding="utf-8")
    problems = Counter(reason_kind(item.gold2_problem) for item in kept if item.gold2_problem)
    levels = Counter(item.gold2_level for item in kept if item.gold2_run is not None)
    any_strict = sum(score.score for score in scores)
    any_lenient = sum(score.lenient for score in scores)
    print(f"gold2 scored as a prediction on {total} kept tasks:")
    labels = {"strict": "vs gold only, strict (today's first reference)",
              "unordered": "vs gold only, + line order ignored on set outputs",
              "lenient": "vs gold only, + timestamps masked"}
    previous = 0
    for level in LEVELS:
        print(f"  {labels[level]:<52} {vs_gold[level]:>3}/{total} ({vs_gold[level] / total:.1%}), "
              f"step recovers {vs_gold[level] - previous:+d}")
        previous = vs_gold[level]
    print(f"  {'any reference, strict (the headline)':<52} {any_strict:>3.0f}/{total} ({any_strict / total:.1%})")
    print(f"  {'any reference, lenient':<52} {any_lenient:>3}/{total} ({any_lenient / total:.1%})")
    print(f"  gold2 usable as a reference: {sum(levels.values())}/{total} (stable at level: {dict(levels)}); "
          f"unusable: {dict(problems)}")
    print(f"  why gold2 still differs from gold ({sum(causes.values())} tasks, listed in {dump}): "
          + ", ".join(f"{cause} {count}" for cause, count in causes.most_common()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-sample", type=int, default=30)
    parser.add_argument("--dump", default="runs/bench/exec_harness/gold2_vs_gold.tsv",
                        help="where to list the tasks whose gold2 differs from gold")
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
        stable = [item for item, score in zip(kept, scores) if score.outcome != UNSTABLE_GOLD]
        second = harness.score_many([(item, item.task.gold2) for item in stable])

        sample = tasks[:: max(1, len(tasks) // args.baseline_sample)][: args.baseline_sample]
        copied, rebuilt = _baseline_per_run(sandbox, harness, sample, args.baseline_sample)

    guard_blocked = sum(1 for item in prepared if (item.drop_reason or "").startswith("gold blocked"))
    gold2_runs = sum(item.task.gold2.strip() != "" and item.task.gold2 != item.task.gold
                     and not (item.drop_reason or "").startswith("gold blocked")
                     and item.gold2_problem not in ("gold2 is empty", "gold2 blocked by the guard")
                     for item in prepared)
    runs = 2 * (len(tasks) - guard_blocked) + 2 * gold2_runs + len(kept)
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
    _gold2_report(stable, second, Path(args.dump))
    return 0 if perfect and total <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
