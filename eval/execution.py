"""Execution accuracy, InterCode-style, on the `icalfa` NL2Bash file-system tasks.

Each task's file system is built once from its setup script, then copied per run (see
`eval.sandbox`). Both verified references (`gold`, `gold2`) run twice, in two passes seconds apart;
tasks whose gold runs differ, time out, need a missing tool or are blocked by the guard are dropped
with the reason (a gold2 with such a problem is only not used as a reference). A prediction matches
a reference when its normalised stdout and its file-system diff both equal that reference's run.
Four labelled rates (`ACCURACY_LABELS`): `any reference` (gold or gold2, the paper's sense; the
headline), `first reference` (gold only), `line order ignored` (any reference; where the reference's
output is a set of lines, stdout compared as a multiset of trailing-whitespace-stripped lines) and
`lenient` (as line order ignored, with ls/date-style timestamps masked).
A prediction that matches no reference triggers one more gold run, and a task whose gold then
differs is dropped too (rare races the two passes missed). Commands the guard blocks never run.
The model's answers are kept in `execution_predictions.jsonl`, so a run made where the sandbox cannot
start is scored later by `score_predictions_file` (`securecli eval exec --pred FILE`).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from common.jsonl import write_jsonl
from common.provenance import package_dir
from eval.backends import Backend
from eval.canonical import canonicalize
from eval.metrics import aggregate_scores, guard_verdict, score_row, share
from eval.sandbox import Image, Limits, RunResult, Sandbox, SandboxError, missing_tool

FILE_SYSTEMS = (1, 2, 3, 4, 5)
TASK_FIELDS = ("query", "gold", "gold2", "difficulty")
HEAD_CHARS = 2000
DEFAULT_WORKERS = 2
UNSTABLE_GOLD = "gold_unstable"
UNSTABLE_GOLD_REASON = "gold nondeterministic: a later gold run differed from the reference run"
ORDERING_UTILITIES = frozenset({"sort", "head", "tail", "tac", "nl", "uniq", "shuf"})
LS_ORDERING_FLAGS = frozenset({"-t", "-S", "-r", "-v", "-X", "-U", "-c", "-u", "--sort", "--reverse"})
ACCURACY_LABELS = {
    "accuracy": "execution accuracy, any reference (gold or gold2; the paper's sense)",
    "accuracy_first_reference": "execution accuracy, first reference only (gold)",
    "accuracy_unordered_lines": "execution accuracy, any reference, line order and trailing whitespace ignored "
                                "where the reference's output is a set of lines",
    "accuracy_lenient": "execution accuracy, any reference, as unordered_lines and with ls/date-style timestamps "
                        "masked in stdout",
}
LEVELS = ("strict", "unordered", "lenient")
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
TIMESTAMP = re.compile(
    rf"\b{_MONTH}\s+\d{{1,2}}\s+(?:\d{{1,2}}:\d{{2}}(?::\d{{2}})?|\d{{4}})\b"
    r"|\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?: ?[+-]\d{2}:?\d{2})?"
    rf"|\b\d{{1,2}}\s+{_MONTH}\s+\d{{4}}\b"
    r"|\b\d{1,2}:\d{2}:\d{2}\b"
)

Item = TypeVar("Item")
Result = TypeVar("Result")


class TaskFileError(ValueError):
    """An icalfa task file is malformed."""


@dataclass(frozen=True)
class ExecTask:
    """One icalfa task: a request, its gold command and the file system it runs in."""

    task_id: str
    file_system: int
    query: str
    gold: str
    gold2: str
    difficulty: int


@dataclass(frozen=True)
class PreparedTask:
    """A task after its gold runs: kept with the reference run, or dropped with the reason."""

    task: ExecTask
    gold_run: RunResult | None
    drop_reason: str | None
    gold2_run: RunResult | None = None
    gold2_problem: str | None = None
    gold2_level: str = "strict"

    @property
    def kept(self) -> bool:
        """Tell whether the task is scored."""
        return self.drop_reason is None

    def references(self, level: str = "strict") -> list[tuple[str, str, RunResult]]:
        """Return (name, command, run) for every reference usable at a comparison level, gold first.

        gold2 counts at the levels at or above the strictest one its own two runs agree at.
        """
        found = [("gold", self.task.gold, self.gold_run)]
        if self.gold2_run is not None and LEVELS.index(level) >= LEVELS.index(self.gold2_level):
            found.append(("gold2", self.task.gold2, self.gold2_run))
        return [(name, command, run) for name, command, run in found if run is not None]


@dataclass(frozen=True)
class CommandScore:
    """How one predicted command fared against a kept task's gold run (not run: run is None)."""

    outcome: str
    score: float
    guard_verdict: str | None
    run: RunResult | None
    stdout_match: bool = False
    fs_match: bool = False
    first_reference: bool = False
    unordered_lines: bool = False
    lenient: bool = False
    reference: str | None = None


def icalfa_assets() -> Path:
    """Return the `icalfa/assets` directory without importing icalfa (its import pulls in heavy clients)."""
    return package_dir("icalfa", "the execution tasks come from the test extra: pip install icalfa") / "assets"


def _task_file(file_system: int) -> Path:
    return icalfa_assets() / "datasets" / f"nl2bash_fs_{file_system}.json"


def setup_script(file_system: int) -> str:
    """Return the bash script that builds a file system (it writes absolute paths like /testbed)."""
    return (icalfa_assets() / "docker" / f"setup_nl2b_fs_{file_system}.sh").read_text(encoding="utf-8")


def _parse_task(row: Any, path: Path, index: int, file_system: int) -> ExecTask:
    """Validate one task row, naming the file, row and field on error."""
    if not isinstance(row, dict):
        raise TaskFileError(f"{path}: row {index}: expected an object, got {type(row).__name__}")
    for name in TASK_FIELDS:
        if name not in row:
            raise TaskFileError(f"{path}: row {index}: missing field {name!r}")
    for name in ("query", "gold"):
        if not isinstance(row[name], str) or not row[name].strip():
            raise TaskFileError(f"{path}: row {index}: field {name!r} must be a non-empty string")
    if not isinstance(row["difficulty"], int):
        raise TaskFileError(f"{path}: row {index}: field 'difficulty' must be an integer")
    return ExecTask(
        task_id=f"fs{file_system}-{index:03d}",
        file_system=file_system,
        query=row["query"],
        gold=row["gold"],
        gold2=str(row["gold2"]),
        difficulty=row["difficulty"],
    )


def load_tasks(limit: int | None = None) -> list[ExecTask]:
    """Load the icalfa tasks in file-system order; `limit` keeps the first N."""
    tasks: list[ExecTask] = []
    for file_system in FILE_SYSTEMS:
        path = _task_file(file_system)
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise TaskFileError(f"{path}: line {error.lineno}: invalid JSON: {error.msg}") from error
        if not isinstance(rows, list):
            raise TaskFileError(f"{path}: expected a JSON list of tasks")
        tasks.extend(_parse_task(row, path, index, file_system) for index, row in enumerate(rows))
    return tasks if limit is None else tasks[:limit]


def _gold_problem(first: RunResult, second: RunResult, timeout_s: float, name: str = "gold") -> str | None:
    """Explain why two runs of a reference make it unusable, or return None."""
    for run in (first, second):
        if run.timed_out:
            return f"{name} timed out after {timeout_s:g} s"
        if run.output_limit_hit:
            return f"{name} output exceeds the output limit"
        tool = missing_tool(run)
        if tool:
            return f"{name} needs a tool missing from the sandbox: {tool}"
    if first.same_effect(second):
        return None
    if first.stdout != second.stdout:
        return f"{name} nondeterministic: stdout differs between two runs"
    changed = sorted(set(first.fs_diff.items()) ^ set(second.fs_diff.items()), key=str)
    return f"{name} nondeterministic: file-system diff differs between two runs ({changed[0][0]})"


def _gold2_problem_before_running(task: ExecTask) -> str | None:
    """Say why gold2 cannot serve as a reference without running it (empty, or blocked by the guard)."""
    if not task.gold2.strip():
        return "gold2 is empty"
    if task.gold2 != task.gold and guard_verdict(task.gold2)["verdict"] == "block":
        return "gold2 blocked by the guard"
    return None


def output_is_a_set(command: str) -> bool:
    """Tell whether a reference's output is a set of lines: no utility in it fixes the order of its lines."""
    canonical = canonicalize(command)
    if canonical is None:
        return False
    for shape in canonical.shapes:
        if shape.utility in ORDERING_UTILITIES or (shape.utility == "ls" and shape.flags & LS_ORDERING_FLAGS):
            return False
    return True


def comparable_lines(stdout: str, as_set: bool, mask_times: bool) -> list[str] | Counter[str]:
    """Return stdout's lines, trailing whitespace stripped (timestamps masked; as a multiset for a set)."""
    lines = [(TIMESTAMP.sub("<time>", line) if mask_times else line).rstrip() for line in stdout.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return Counter(lines) if as_set else lines


def same_effect_at(run: RunResult, reference: RunResult, reference_command: str, level: str) -> bool:
    """Tell whether a run matches a reference run at a comparison level (the file-system diff always exactly)."""
    if run.timed_out or run.fs_diff != reference.fs_diff:
        return False
    if run.stdout == reference.stdout:
        return True
    if level == "strict":
        return False
    as_set = output_is_a_set(reference_command)
    if level == "unordered" and not as_set:
        return False
    mask = level == "lenient"
    return comparable_lines(run.stdout, as_set, mask) == comparable_lines(reference.stdout, as_set, mask)


def stable_level(first: RunResult, second: RunResult, command: str) -> str | None:
    """Return the strictest comparison level at which two runs of a reference agree, or None."""
    return next((level for level in LEVELS if same_effect_at(second, first, command, level)), None)


def parallel_map(function: Callable[[Item], Result], items: Sequence[Item], workers: int, label: str) -> list[Result]:
    """Map in a thread pool (each call mostly waits on a subprocess), with a progress bar."""
    from rich.progress import Progress

    with Progress(transient=True) as progress, ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        bar = progress.add_task(label, total=len(items))
        results = []
        for result in pool.map(function, items):
            results.append(result)
            progress.advance(bar)
    return results


class ExecutionHarness:
    """Build images, prepare gold runs and score predicted commands in the sandbox."""

    def __init__(self, sandbox: Sandbox, workers: int = DEFAULT_WORKERS) -> None:
        self.sandbox = sandbox
        self.workers = workers
        self._images: dict[int, Image] = {}
        self._lock = threading.Lock()

    def image(self, file_system: int) -> Image:
        """Return the image of a file system, building it on first use."""
        with self._lock:
            if file_system not in self._images:
                self._images[file_system] = self.sandbox.build_image(f"fs{file_system}", setup_script(file_system))
            return self._images[file_system]

    def prepare(self, tasks: Sequence[ExecTask]) -> list[PreparedTask]:
        """Run every gold and gold2 twice, in two passes seconds apart; keep the tasks whose gold runs agree."""
        verdicts = {task.task_id: guard_verdict(task.gold) for task in tasks}
        runnable = [task for task in tasks if verdicts[task.task_id]["verdict"] != "block"]
        second_refs = [task for task in runnable if _gold2_problem_before_running(task) is None]
        jobs = [(task, task.gold) for task in runnable] + [(task, task.gold2) for task in second_refs]
        for file_system in sorted({task.file_system for task in runnable}):
            self.image(file_system)
        first = self._run_commands(jobs, "reference runs (1/2)")
        second = self._run_commands(jobs, "reference runs (2/2)")
        prepared = []
        for task in tasks:
            verdict = verdicts[task.task_id]
            if verdict["verdict"] == "block":
                categories = ", ".join(verdict["categories"])
                prepared.append(PreparedTask(task, None, f"gold blocked by the guard ({categories})"))
                continue
            gold_key, gold2_key = (task.task_id, task.gold), (task.task_id, task.gold2)
            problem = _gold_problem(first[gold_key], second[gold_key], self.sandbox.limits.timeout_s)
            gold_run = None if problem else first[gold_key]
            gold2_problem = _gold2_problem_before_running(task)
            gold2_run, gold2_level = None, "strict"
            if task.gold2 == task.gold:
                gold2_run = gold_run
            elif gold2_problem is None:
                gold2_problem = _gold_problem(first[gold2_key], second[gold2_key], self.sandbox.limits.timeout_s,
                                              "gold2")
                level = stable_level(first[gold2_key], second[gold2_key], task.gold2)
                if gold2_problem and level and "nondeterministic" in gold2_problem:
                    gold2_problem, gold2_level = None, level
                gold2_run = None if gold2_problem else first[gold2_key]
            prepared.append(PreparedTask(task, gold_run, problem, gold2_run, gold2_problem, gold2_level))
        return prepared

    def _run_commands(self, jobs: Sequence[tuple[ExecTask, str]], label: str) -> dict[tuple[str, str], RunResult]:
        runs = parallel_map(lambda job: self.sandbox.run(self.image(job[0].file_system), job[1]), jobs,
                            self.workers, label)
        return {(task.task_id, command): run for (task, command), run in zip(jobs, runs)}

    def score(self, prepared: PreparedTask, command: str | None) -> CommandScore:
        """Score one predicted command (None when nothing could be extracted) on a kept task.

        It scores 1.0 when it matches any reference (gold or gold2). A command that matches none
        triggers one more gold run; if that run differs from the reference, the task is
        nondeterministic after all and the outcome is `UNSTABLE_GOLD` (dropped).
        """
        if prepared.gold_run is None:
            raise ValueError(f"task {prepared.task.task_id} was dropped: {prepared.drop_reason}")
        if command is None:
            return CommandScore("no_command", 0.0, None, None)
        verdict = guard_verdict(command)["verdict"]
        if verdict == "block":
            return CommandScore("blocked", 0.0, verdict, None)
        image = self.image(prepared.task.file_system)
        run = self.sandbox.run(image, command)
        stdout_match = run.stdout == prepared.gold_run.stdout
        fs_match = run.fs_diff == prepared.gold_run.fs_diff
        matches = {level: next((name for name, reference_command, reference in prepared.references(level)
                                if same_effect_at(run, reference, reference_command, level)), None)
                   for level in LEVELS}
        matched = matches["strict"]
        fields = {"stdout_match": stdout_match, "fs_match": fs_match,
                  "unordered_lines": matches["unordered"] is not None or matched is not None,
                  "lenient": any(name is not None for name in matches.values())}
        if matched is not None:
            return CommandScore("match", 1.0, verdict, run, first_reference=matched == "gold", reference=matched,
                                **fields)
        if not self.sandbox.run(image, prepared.task.gold).same_effect(prepared.gold_run):
            return CommandScore(UNSTABLE_GOLD, 0.0, verdict, run, **fields)
        return CommandScore("timeout" if run.timed_out else "mismatch", 0.0, verdict, run, **fields)

    def score_many(self, pairs: Sequence[tuple[PreparedTask, str | None]]) -> list[CommandScore]:
        """Score (task, command) pairs in parallel, in order."""
        return parallel_map(lambda pair: self.score(*pair), pairs, self.workers, "prediction runs")


def _diff_json(diff: dict[str, Any]) -> dict[str, Any]:
    return {path: (list(entry) if entry is not None else None) for path, entry in sorted(diff.items())}


def _run_fields(prefix: str, run: RunResult | None) -> dict[str, Any]:
    if run is None:
        return {}
    return {
        f"{prefix}_exit_code": run.exit_code,
        f"{prefix}_stdout_head": run.stdout[:HEAD_CHARS],
        f"{prefix}_fs_diff": _diff_json(run.fs_diff),
    }



def reason_kind(reason: str) -> str:
    """Return the reason without its details: 'gold needs a tool missing from the sandbox: tree' -> before ':'."""
    return re.split(r"[:(]", reason, maxsplit=1)[0].strip()


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate execution rows: accuracy over kept tasks, outcome counts and dropped tasks."""
    scored = [row for row in rows if row["status"] == "scored"]
    by_difficulty: dict[int, list[bool]] = defaultdict(list)
    by_file_system: dict[int, list[bool]] = defaultdict(list)
    for row in scored:
        by_difficulty[row["difficulty"]].append(row["score"] == 1.0)
        by_file_system[row["file_system"]].append(row["score"] == 1.0)
    dropped = [{"task_id": row["task_id"], "gold": row["gold"], "reason": row["drop_reason"]}
               for row in rows if row["status"] == "dropped"]
    return {
        "tasks": len(rows),
        "kept": len(scored),
        "accuracy": share([row["score"] == 1.0 for row in scored]),
        "accuracy_first_reference": share([bool(row.get("first_reference")) for row in scored]),
        "accuracy_unordered_lines": share([bool(row.get("unordered_lines")) for row in scored]),
        "accuracy_lenient": share([bool(row.get("lenient")) for row in scored]),
        "accuracy_labels": ACCURACY_LABELS,
        "second_reference_usable": sum(row.get("gold2_problem") is None for row in scored),
        "reference_metrics": aggregate_scores(row["metrics"] for row in scored if "metrics" in row),
        "stdout_match_rate": share([row["stdout_match"] for row in scored]),
        "fs_match_rate": share([row["fs_match"] for row in scored]),
        "outcomes": dict(sorted(Counter(row["outcome"] for row in scored).items())),
        "accuracy_by_difficulty": {str(key): share(value) for key, value in sorted(by_difficulty.items())},
        "accuracy_by_file_system": {f"fs{key}": share(value) for key, value in sorted(by_file_system.items())},
        "dropped_count": len(dropped),
        "dropped_by_reason": dict(sorted(Counter(reason_kind(item["reason"]) for item in dropped).items())),
        "dropped": dropped,
    }


def _row(prepared: PreparedTask) -> dict[str, Any]:
    task = prepared.task
    return {
        "task_id": task.task_id,
        "file_system": task.file_system,
        "difficulty": task.difficulty,
        "query": task.query,
        "gold": task.gold,
        "gold2": task.gold2,
        "status": "scored" if prepared.kept else "dropped",
        "drop_reason": prepared.drop_reason,
        "gold2_problem": prepared.gold2_problem,
        "gold2_level": prepared.gold2_level if prepared.gold2_run is not None else None,
        **_run_fields("gold", prepared.gold_run),
    }


LEAKED_REASON = "leaked: its request or a reference command is in the training split"
PREDICTIONS_FILE = "execution_predictions.jsonl"


def leaked_tasks(tasks: Sequence[ExecTask], train_split: Path) -> set[str]:
    """Return the ids of tasks whose request, gold or gold2 the training split holds.

    The same keys as prepare's leak filter (`preprocessing.leak`): a second check, which finds
    nothing in data prepared from non-icalfa sources and the icalfa tasks trained on in the demo.
    """
    from eval.predict import load_split
    from preprocessing.leak import command_leak_key, request_leak_key

    rows = load_split(train_split.parent, train_split.stem)
    requests = {request_leak_key(row.request) for row in rows}
    commands = {command_leak_key(command) for row in rows for command in row.references}
    return {
        task.task_id for task in tasks
        if request_leak_key(task.query) in requests
        or any(command_leak_key(command) in commands for command in (task.gold, task.gold2) if command.strip())
    }


class ExecPrediction(BaseModel):
    """One row of `execution_predictions.jsonl`: what the model said for a task, or why it was not asked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: str
    query: str
    gold: str
    backend: str
    raw: str | None = None
    prediction: str | None = None
    refused: bool = False
    latency_s: float = 0.0
    drop_reason: str | None = None


def generate_predictions(backend: Backend, tasks: Sequence[ExecTask], drops: dict[str, str]) -> list[ExecPrediction]:
    """Generate a command for every task not in `drops` (task id -> reason it is not asked)."""
    from common.prompt import is_refusal
    from eval.extract import extract_lenient

    asked = [task for task in tasks if task.task_id not in drops]
    generations = iter(backend.generate([task.query for task in asked]) if asked else [])
    rows = []
    for task in tasks:
        common = {"task_id": task.task_id, "query": task.query, "gold": task.gold, "backend": backend.name}
        if task.task_id in drops:
            rows.append(ExecPrediction(**common, drop_reason=drops[task.task_id]))
            continue
        generation = next(generations)
        refused = is_refusal(generation.raw)
        rows.append(ExecPrediction(**common, raw=generation.raw, refused=refused,
                                   prediction=None if refused else extract_lenient(generation.raw),
                                   latency_s=round(generation.latency_s, 4)))
    return rows


def read_predictions(path: Path) -> tuple[list[ExecTask], list[ExecPrediction]]:
    """Read an `execution_predictions.jsonl` and match it to the installed icalfa tasks, naming file, line, field."""
    from pydantic import ValidationError

    from common.jsonl import read_jsonl

    by_id = {task.task_id: task for task in load_tasks()}
    tasks, rows = [], []
    for number, row in read_jsonl(path):
        try:
            prediction = ExecPrediction.model_validate(row)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "row"
            raise ValueError(f"{path}:{number}: field {field!r}: {first['msg']}") from error
        task = by_id.get(prediction.task_id)
        if task is None:
            raise ValueError(f"{path}:{number}: field 'task_id': no icalfa task {prediction.task_id!r}")
        if task in tasks:
            raise ValueError(f"{path}:{number}: field 'task_id': task {task.task_id} appears twice")
        for name in ("query", "gold"):
            if getattr(prediction, name) != getattr(task, name):
                raise ValueError(f"{path}:{number}: field {name!r} differs from icalfa task {task.task_id} "
                                 "(another icalfa version?)")
        tasks.append(task)
        rows.append(prediction)
    if not rows:
        raise ValueError(f"{path}: no predictions")
    return tasks, rows


def _prepare_with_drops(harness: ExecutionHarness, tasks: Sequence[ExecTask],
                        drops: dict[str, str]) -> list[PreparedTask]:
    """Prepare the gold runs of the tasks not in `drops`; the others are dropped with their reason."""
    fresh = {item.task.task_id: item for item in harness.prepare([task for task in tasks if task.task_id not in drops])}
    return [fresh.get(task.task_id) or PreparedTask(task, None, drops[task.task_id]) for task in tasks]


def _score_rows(harness: ExecutionHarness, prepared: Sequence[PreparedTask],
                predictions: dict[str, ExecPrediction]) -> list[dict[str, Any]]:
    """Run every kept task's prediction and return the `execution.jsonl` rows, in task order."""
    kept = [item for item in prepared if item.kept]
    scores = dict(zip((item.task.task_id for item in kept),
                      harness.score_many([(item, predictions[item.task.task_id].prediction) for item in kept])))
    rows = []
    for item in prepared:
        row = _row(item)
        if item.kept:
            prediction, score = predictions[item.task.task_id], scores[item.task.task_id]
            row.update({
                "raw": prediction.raw,
                "prediction": prediction.prediction,
                "latency_s": prediction.latency_s,
                "guard_verdict": score.guard_verdict,
                "outcome": "refused" if prediction.refused else score.outcome,
                "score": score.score,
                "stdout_match": score.stdout_match,
                "fs_match": score.fs_match,
                "first_reference": score.first_reference,
                "unordered_lines": score.unordered_lines,
                "lenient": score.lenient,
                "reference": score.reference,
                "metrics": score_row(prediction.prediction, [item.task.gold, item.task.gold2]
                                     if item.task.gold2.strip() else [item.task.gold]),
                **_run_fields("pred", score.run),
            })
            if score.outcome == UNSTABLE_GOLD:
                row.update(status="dropped", drop_reason=UNSTABLE_GOLD_REASON)
        rows.append(row)
    return rows


def unavailable(backend: str, tasks: int, reason: str) -> dict[str, Any]:
    """Return the execution metrics of a run whose sandbox could not start: the reason and where predictions are."""
    return {"backend": backend, "status": "unavailable", "reason": reason, "tasks": tasks,
            "predictions": PREDICTIONS_FILE}


def evaluate_execution(
    backend: Backend,
    out_dir: Path,
    limit: int | None = None,
    workers: int = DEFAULT_WORKERS,
    limits: Limits | None = None,
    train_split: Path | None = None,
) -> dict[str, Any]:
    """Generate for the icalfa queries, run gold and prediction in the sandbox, write `execution.jsonl`.

    Tasks the model saw in training (`train_split`) are dropped as leaked, never scored. The predictions
    always go to `execution_predictions.jsonl`; where the sandbox cannot start, every task that is not
    leaked is generated, nothing is run, and the metrics say why (`securecli eval exec` scores it later).
    """
    tasks = load_tasks(limit)
    leaked = leaked_tasks(tasks, train_split) if train_split else set()
    drops = {task_id: LEAKED_REASON for task_id in leaked}
    try:
        sandbox = Sandbox(limits)
    except SandboxError as error:
        write_jsonl(Path(out_dir) / PREDICTIONS_FILE, _dump(generate_predictions(backend, tasks, drops)))
        return unavailable(backend.name, len(tasks), str(error))
    with sandbox:
        harness = ExecutionHarness(sandbox, workers)
        prepared = _prepare_with_drops(harness, tasks, drops)
        predictions = generate_predictions(backend, tasks, {item.task.task_id: item.drop_reason
                                                            for item in prepared if not item.kept})
        write_jsonl(Path(out_dir) / PREDICTIONS_FILE, _dump(predictions))
        rows = _score_rows(harness, prepared, {row.task_id: row for row in predictions})
    write_jsonl(Path(out_dir) / "execution.jsonl", rows)
    return {"backend": backend.name, **summarize(rows), "leaked_count": len(leaked)}


def score_predictions_file(path: Path, out_dir: Path, workers: int = DEFAULT_WORKERS,
                           limits: Limits | None = None) -> dict[str, Any]:
    """Score an `execution_predictions.jsonl` in the sandbox (gold runs included); write `<out_dir>/execution.jsonl`."""
    tasks, predictions = read_predictions(path)
    drops = {row.task_id: row.drop_reason for row in predictions if row.drop_reason is not None}
    by_id = {row.task_id: row for row in predictions}
    with Sandbox(limits) as sandbox:
        harness = ExecutionHarness(sandbox, workers)
        prepared = _prepare_with_drops(harness, tasks, drops)
        rows = _score_rows(harness, prepared, by_id)
    write_jsonl(Path(out_dir) / "execution.jsonl", rows)
    return {"backend": predictions[0].backend, **summarize(rows)}


def _dump(rows: Sequence[ExecPrediction]) -> list[dict[str, Any]]:
    return [row.model_dump(mode="json") for row in rows]
