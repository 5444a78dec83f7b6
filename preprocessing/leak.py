"""Leak filter: training rows that match an execution-eval task are removed before the split.

The eval tasks are the 300 icalfa tasks (`icalfa/assets/datasets/nl2bash_fs_{1..5}.json`, rows
{query, gold, gold2, difficulty}), the same ones the paper's NL2SH-ALFA test config holds. A row
leaks when its request equals a task query up to whitespace, case and punctuation, or its command
equals a task's `gold` or `gold2` up to whitespace and quoting (`command_leak_key`).

Rows of the `icalfa` source itself are exempt: they are the eval tasks, and the demo trains on some
of them on purpose. The leak-free split keeps each task's request and command in one split, and the
execution eval drops every task whose request or command is in the training split (its second
check), so only held-out tasks are scored.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.provenance import package_dir, sha256_file
from preprocessing.records import Record, Reject
from preprocessing.sources import SourceError
from preprocessing.split import description_group_key
from preprocessing.stages import normalize_command

EVAL_FILE_SYSTEMS = (1, 2, 3, 4, 5)
EXEMPT_SOURCES = frozenset({"icalfa"})
LEAK_CODES = {("request",): "leak_request", ("command",): "leak_command", ("request", "command"): "leak_both"}


class LeakSetError(SourceError):
    """The eval tasks to filter against cannot be read."""


@dataclass(frozen=True)
class EvalTask:
    """One execution-eval task as the leak filter sees it."""

    task_id: str
    query: str
    commands: tuple[str, ...]


@dataclass(frozen=True)
class LeakSet:
    """The eval tasks indexed by request key and command key, plus where they came from."""

    tasks: tuple[EvalTask, ...]
    by_request: dict[str, str]
    by_command: dict[str, str]
    files: dict[str, str]

    def identity(self) -> dict[str, Any]:
        """Return the manifest's description of the eval tasks filtered against."""
        return {"tasks": len(self.tasks), "files": dict(sorted(self.files.items()))}


def command_leak_key(command: str) -> str:
    """Return the command with a leading prompt dropped and whitespace and quoting normalized.

    The shell words are compared (so `-name '*.py'` equals `-name "*.py"`), joined by NUL so that
    `echo 'a b'` and `echo a b` stay different; text shlex cannot split keeps its whitespace form.
    """
    text = normalize_command(command)
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        return "\x00".join(lexer)
    except ValueError:
        return text


def request_leak_key(request: str) -> str:
    """Return the request casefolded, with punctuation and whitespace collapsed."""
    return description_group_key(request)


def load_leak_set(folder: Path | None = None) -> LeakSet:
    """Read the icalfa tasks (from the installed package unless `folder` is given)."""
    if folder is None:
        try:
            folder = package_dir("icalfa", "the leak filter reads the eval tasks: pip install icalfa") / "assets"
        except ModuleNotFoundError as exc:
            raise LeakSetError(str(exc)) from exc
        folder = folder / "datasets"
    tasks: list[EvalTask] = []
    files: dict[str, str] = {}
    for file_system in EVAL_FILE_SYSTEMS:
        path = folder / f"nl2bash_fs_{file_system}.json"
        if not path.is_file():
            raise LeakSetError(f"{path}: eval task file not found")
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise LeakSetError(f"{path}: line {exc.lineno}: invalid JSON: {exc.msg}") from exc
        files[f"icalfa/{path.name}"] = sha256_file(path)
        for index, row in enumerate(rows):
            if not isinstance(row, dict) or not isinstance(row.get("query"), str):
                raise LeakSetError(f"{path}: row {index}: field 'query' missing or not a string")
            commands = tuple(str(row[name]) for name in ("gold", "gold2") if isinstance(row.get(name), str))
            tasks.append(EvalTask(f"fs{file_system}-{index:03d}", row["query"], commands))
    by_request: dict[str, str] = {}
    by_command: dict[str, str] = {}
    for task in tasks:
        by_request.setdefault(request_leak_key(task.query), task.task_id)
        for command in task.commands:
            by_command.setdefault(command_leak_key(command), task.task_id)
    return LeakSet(tuple(tasks), by_request, by_command, files)


def leak_filter(records: Iterable[Record], leaks: LeakSet) -> tuple[list[Record], list[Reject]]:
    """Remove every non-exempt row whose request or command matches an eval task, with the reason."""
    kept, rejects = [], []
    for record in records:
        if record.source in EXEMPT_SOURCES:
            kept.append(record)
            continue
        hits = {"request": leaks.by_request.get(request_leak_key(record.nl)),
                "command": leaks.by_command.get(command_leak_key(record.command))}
        matched = tuple(name for name, task in hits.items() if task)
        if not matched:
            kept.append(record)
            continue
        reason = "; ".join(f"its {name} matches icalfa eval task {hits[name]}" for name in matched)
        rejects.append(Reject("leak", LEAK_CODES[matched], reason, record.source, record.source_row, record.nl,
                              record.command, {"eval_tasks": sorted({hits[name] for name in matched})}))
    return kept, rejects
