"""Execution accuracy, InterCode-style, on the `icalfa` NL2Bash file-system tasks.

Each task's file system is built once from its setup script, then copied per run (see
`eval.sandbox`). The gold command runs twice, in two passes seconds apart; tasks whose runs differ,
time out, need a missing tool or are blocked by the guard are dropped with the reason. A prediction
scores 1 when its normalised stdout and its file-system diff both equal the reference gold run's,
else 0; a prediction that does not match triggers one more gold run, and a task whose gold then
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

from eval.backends import Backend
from eval.metrics import guard_verdict
from eval.predict import write_jsonl
from eval.sandbox import Image, Limits, RunResult, Sandbox, SandboxError, missing_tool
from securecli.provenance import package_dir

FILE_SYSTEMS = (1, 2, 3, 4, 5)
TASK_FIELDS = ("query", "gold", "gold2", "difficulty")
HEAD_CHARS = 2000
DEFAULT_WORKERS = 2
UNSTABLE_GOLD = "gold_unstable"
UNSTABLE_GOLD_REASON = "gold nondeterministic: a later gold run differed from the reference run"

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

    @property
    def kept(self) -> bool:
        """Tell whether the task is scored."""
        return self.drop_reason is None


@dataclass(frozen=True)
class CommandScore:
    """How one predicted command fared against a kept task's gold run (not run: run is None)."""

    outcome: str
    score: float
    guard_verdict: str | None
    run: RunResult | None
    stdout_match: bool = False
    fs_match: bool = False


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


def _gold_problem(first: RunResult, second: RunResult, timeout_s: float) -> str | None:
    """Explain why two gold runs make a task unusable, or return None."""
    for run in (first, second):
        if run.timed_out:
            return f"gold timed out after {timeout_s:g} s"
        if run.output_limit_hit:
            return "gold output exceeds the output limit"
        tool = missing_tool(run)
        if tool:
            return f"gold needs a tool missing from the sandbox: {tool}"
    if first.same_effect(second):
        return None
    if first.stdout != second.stdout:
        return "gold nondeterministic: stdout differs between two runs"
    changed = sorted(set(first.fs_diff.items()) ^ set(second.fs_diff.items()), key=str)
    return f"gold nondeterministic: file-system diff differs between two runs ({changed[0][0]})"


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
        """Run every gold twice, in two passes seconds apart, and keep the tasks whose runs agree."""
        verdicts = {task.task_id: guard_verdict(task.gold) for task in tasks}
        runnable = [task for task in tasks if verdicts[task.task_id]["verdict"] != "block"]
        for file_system in sorted({task.file_system for task in runnable}):
            self.image(file_system)
        first = self._run_all(runnable, "gold runs (1/2)")
        second = self._run_all(runnable, "gold runs (2/2)")
        prepared = []
        for task in tasks:
            verdict = verdicts[task.task_id]
            if verdict["verdict"] == "block":
                categories = ", ".join(verdict["categories"])
                prepared.append(PreparedTask(task, None, f"gold blocked by the guard ({categories})"))
                continue
            problem = _gold_problem(first[task.task_id], second[task.task_id], self.sandbox.limits.timeout_s)
            prepared.append(PreparedTask(task, None if problem else first[task.task_id], problem))
        return prepared

    def _run_all(self, tasks: Sequence[ExecTask], label: str) -> dict[str, RunResult]:
        runs = parallel_map(lambda task: self.sandbox.run(self.image(task.file_system), task.gold),
                            tasks, self.workers, label)
        return {task.task_id: run for task, run in zip(tasks, runs)}

    def score(self, prepared: PreparedTask, command: str | None) -> CommandScore:
        """Score one predicted command (None when nothing could be extracted) on a kept task.

        A command that does not match triggers one more gold run; if that run differs from the
        reference, the task is nondeterministic after all and the outcome is `UNSTABLE_GOLD` (dropped).
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
        if stdout_match and fs_match and not run.timed_out:
            return CommandScore("match", 1.0, verdict, run, True, True)
        if not self.sandbox.run(image, prepared.task.gold).same_effect(prepared.gold_run):
            return CommandScore(UNSTABLE_GOLD, 0.0, verdict, run, stdout_match, fs_match)
        return CommandScore("timeout" if run.timed_out else "mismatch", 0.0, verdict, run, stdout_match, fs_match)

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


def _rate(values: list[bool]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


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
        "accuracy": _rate([row["score"] == 1.0 for row in scored]),
        "stdout_match_rate": _rate([row["stdout_match"] for row in scored]),
        "fs_match_rate": _rate([row["fs_match"] for row in scored]),
        "outcomes": dict(sorted(Counter(row["outcome"] for row in scored).items())),
        "accuracy_by_difficulty": {str(key): _rate(value) for key, value in sorted(by_difficulty.items())},
        "accuracy_by_file_system": {f"fs{key}": _rate(value) for key, value in sorted(by_file_system.items())},
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
        "status": "scored" if prepared.kept else "dropped",
        "drop_reason": prepared.drop_reason,
        **_run_fields("gold", prepared.gold_run),
    }


LEAKED_REASON = "leaked: its request or gold command is in the training split"
PREDICTIONS_FILE = "execution_predictions.jsonl"


def leaked_tasks(tasks: Sequence[ExecTask], train_split: Path) -> set[str]:
    """Return the ids of tasks whose request or gold command the training split holds (same split keys)."""
    from eval.predict import load_split
    from preprocessing.split import command_group_key, description_group_key

    rows = load_split(train_split.parent, train_split.stem)
    requests = {description_group_key(row.request) for row in rows}
    commands = {command_group_key(command) for row in rows for command in row.references}
    return {
        task.task_id for task in tasks
        if description_group_key(task.query) in requests or command_group_key(task.gold) in commands
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
    from eval.extract import extract_lenient
    from securecli.prompt import is_refusal

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

    from eval.predict import read_jsonl

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
    return {"backend": backend.name, **summarize(rows)}


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
