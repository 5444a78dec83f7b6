"""`securecli check`: judge shell commands or scripts with CommandRisk; exit 0 allow, 1 warn, 2 block."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from common.console import CliConsole

console = CliConsole(highlight=False)
err_console = CliConsole(stderr=True, highlight=False)
VERDICT_STYLE = {"allow": "green", "warn": "yellow", "block": "bold red"}


def register(app: typer.Typer) -> None:
    """Add the `check` verb."""
    app.command("check")(check_command)


def check_command(
    commands: Annotated[list[str] | None, typer.Argument(help="commands to check (default: one per line on stdin)")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="read commands from a file, one per line")] = None,
    scripts: Annotated[bool, typer.Option("--scripts", help="treat each argument as a script file, judged whole")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line: command, verdict, risk, findings")] = False,
    policy: Annotated[Path | None, typer.Option("--policy", help="policy YAML (default: the packaged policy)")] = None,
) -> None:
    """Check shell commands with the CommandRisk guard.

    Exit status: 0 if everything is allowed, 1 if the worst verdict is warn, 2 if anything is blocked.
    """
    from commandrisk import PolicyError, assess, default_context, load_policy

    try:
        loaded = load_policy(policy)
        inputs = list(_inputs(commands or [], file, scripts))
    except (PolicyError, OSError, UnicodeDecodeError) as error:
        err_console.error(error)
        raise typer.Exit(2) from None
    context = default_context(loaded)
    worst = 0
    for label, text in inputs:
        result = assess(text, context, loaded)
        worst = max(worst, result.verdict.severity)
        if as_json:
            record = {"command": label, "verdict": result.verdict.value, "risk": result.risk,
                      "findings": [f.model_dump(mode="json") for f in result.findings],
                      "explanation": result.explanation}
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            _show(label, result)
    raise typer.Exit(worst)


def _inputs(commands: list[str], file: Path | None, scripts: bool) -> Iterator[tuple[str, str]]:
    """(label, text) pairs from arguments, a file, script files, or stdin."""
    if scripts:
        for name in commands:
            yield name, Path(name).read_text(encoding="utf-8")
        return
    yield from ((c, c) for c in commands)
    if file is not None:
        yield from ((line, line) for line in _lines(file.read_text(encoding="utf-8")))
    if not commands and file is None:
        yield from ((line, line) for line in _lines(sys.stdin.read()))


def _lines(text: str) -> Iterator[str]:
    """Non-empty, non-comment lines."""
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            yield line


def _show(label: str, result: object) -> None:
    """Human output: verdict, risk, command, then one line per finding."""
    verdict = result.verdict.value
    style = VERDICT_STYLE[verdict]
    console.print(f"[{style}]{verdict.upper():5}[/{style}] risk {result.risk:3}  {escape(label)}")
    for finding in result.findings:
        console.print(f"      {finding.verdict.value:5} {finding.category.value} {finding.technique} "
                      f"{finding.rule_id}: {escape(finding.message)}")
