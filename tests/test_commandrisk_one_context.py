"""One context for every caller: `securecli check` and `securecli ask` judge each suite command identically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from commandrisk import Context, default_context
from eval.backends import Generation
from eval.metrics import guard_verdict
from securecli import ask
from securecli.cli import build_app

DATA = Path(__file__).parent / "data" / "commandrisk"
COMMANDS = [row["command"] for name in ("attacks", "benign", "asks")
            for row in yaml.safe_load((DATA / f"{name}.yaml").read_text(encoding="utf-8"))]
SINGLE_LINE = [c for c in COMMANDS if "\n" not in c and "\0" not in c]


class EchoBackend:
    """Answers every request with the command it was built with."""

    name = "echo"

    def __init__(self, command: str) -> None:
        self.command = command

    def generate(self, requests):
        return [Generation(request=r, raw=self.command, latency_s=0.0) for r in requests]


def test_every_suite_command_gets_the_same_verdict_from_check_and_ask(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    guard_verdict.__globals__["_guard_context"].cache_clear()
    source = tmp_path / "commands.txt"
    source.write_text("".join(c + "\n" for c in SINGLE_LINE), encoding="utf-8")
    result = CliRunner().invoke(build_app(), ["check", "--json", "--file", str(source)])
    checked = [json.loads(line)["verdict"] for line in result.stdout.splitlines()]
    assert len(checked) == len(SINGLE_LINE)
    reshaped = []
    for command, verdict in zip(SINGLE_LINE, checked):
        asked = ask.ask("do the thing", EchoBackend(command))
        if (asked.command or asked.rejected_output) != command:
            reshaped.append(command)
            assert asked.command != command
            continue
        command_findings = {f.verdict for f in asked.findings if f.stage == "command"}
        got = max(command_findings, key=("allow", "warn", "block").index) if command_findings else "allow"
        assert got == verdict, command
        assert guard_verdict(command)["verdict"] == verdict, command
    assert len(reshaped) <= 0.02 * len(SINGLE_LINE), reshaped


def test_default_context_uses_the_git_work_tree_and_the_policy(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    inner = tmp_path / "src" / "pkg"
    inner.mkdir(parents=True)
    context = default_context(cwd=inner)
    assert isinstance(context, Context)
    assert context.cwd == str(inner.resolve()) and context.workspace_root == str(tmp_path.resolve())
    assert default_context(cwd=tmp_path.parent).workspace_root == str(tmp_path.parent.resolve())
