"""Unit tests of the preprocessing sources, stages, tldr rules and batched shellcheck."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preprocessing import shellcheck
from preprocessing.params import PrepareParams
from preprocessing.records import RawRow
from preprocessing.sources import SourceError, parse_spec, read_source
from preprocessing.stages import check_schema, normalize_command, normalize_nl
from preprocessing.tldr import TldrFillError, fill_placeholders

TRICKY_COMMANDS = [
    'echo "unterminated',
    "ls )",
    "cat <<EOF",
    "for f in *; do echo $f",
    "x=1",
    "echo $x",
    "local y=2",
    "break",
    "cd /tmp",
    "cd ..",
    "echo $?",
    "ls | grep x > out.txt | sort",
    "rm $(ls)",
    "echo `date`",
    "find . -name *.txt",
    "# shellcheck disable=all",
    "echo hi \\",
    "[ $a == b ]",
    "f() { echo hi; }; f",
    "printf '%s\\n' \"$HOME\"",
]


def test_hf_source_uses_load_dataset_on_a_local_dataset_dir(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    for split in ("train", "dev", "test"):
        rows = [{"nl_command": f"{split} request {i}", "bash_code": f"echo {split} {i}"} for i in range(3)]
        (tmp_path / "data" / f"{split}.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    data = read_source(parse_spec(f"hf:{tmp_path}"))
    assert len(data.rows) == 9 and data.revision == "local"
    assert sorted(data.files) == ["data/dev.json", "data/test.json", "data/train.json"]
    assert {row.fields["nl"] for row in data.rows} >= {"dev request 0", "test request 2"}
    with pytest.raises(SourceError, match="no column"):
        read_source(parse_spec(f"hf:{tmp_path}#command=missing_column"))


def test_hf_spec_parsing_defaults_and_revision() -> None:
    default = parse_spec("hf")
    assert default.target == "prabhanshubhowal/natural_language_to_linux" and default.revision is None
    assert default.columns == {"nl": "nl_command", "command": "bash_code"}
    pinned = parse_spec("hf:org/data@0123456789abcdef0123456789abcdef01234567")
    assert (pinned.target, pinned.revision) == ("org/data", "0123456789abcdef0123456789abcdef01234567")


def test_nl2bash_source_aligns_lines_and_checks_counts(tmp_path: Path) -> None:
    (tmp_path / "all.nl").write_text("list files\nshow the date\n")
    (tmp_path / "all.cm").write_text("ls\ndate\n")
    rows = read_source(parse_spec(f"nl2bash:{tmp_path}")).rows
    assert [(r.fields["nl"], r.fields["command"], r.location) for r in rows] == [
        ("list files", "ls", f"{tmp_path / 'all.nl'}:1"),
        ("show the date", "date", f"{tmp_path / 'all.nl'}:2"),
    ]
    (tmp_path / "all.cm").write_text("ls\n")
    with pytest.raises(SourceError, match="lines"):
        read_source(parse_spec(f"nl2bash:{tmp_path}"))
    with pytest.raises(SourceError, match="not found"):
        read_source(parse_spec(f"nl2bash:{tmp_path / 'nowhere'}"))


def test_icalfa_source_reads_the_packaged_tasks() -> None:
    data = read_source(parse_spec("icalfa"))
    assert len(data.rows) == 300 and len(data.files) == 5
    assert all(isinstance(r.fields["nl"], str) and isinstance(r.fields["command"], str) for r in data.rows)


def test_tldr_rules_fill_or_drop(tmp_path: Path) -> None:
    assert fill_placeholders("tar {{[-c|--create]}} {{[-f|--file]}} {{path/to/archive}}.tar.gz {{path/to/file1 path/to/file2 ...}}") == (
        "tar --create --file backup.tar.gz notes1.txt notes2.txt"
    )
    assert fill_placeholders("ssh {{username}}@{{host}} -p {{port}}") == "ssh alice@server.example.com -p 8080"
    assert fill_placeholders("dd if={{path/to/file.iso}} of={{/dev/sdX}}") == "dd if=file.iso of=/dev/sdb"
    assert fill_placeholders("docker stop {{container_name}}") == "docker stop web"
    assert fill_placeholders("curl {{https://example.com/a}}") == "curl https://example.com/a"
    with pytest.raises(TldrFillError, match="subcommand"):
        fill_placeholders("git {{subcommand}}")
    rows = [
        {"platform": "common", "page": "ls", "description": "List files one per line", "command": "ls -1"},
        {"platform": "common", "page": "git", "description": "Run a subcommand", "command": "git {{subcommand}}"},
        {"platform": "linux", "page": "mkdir", "description": "Create a directory", "command": "mkdir {{path/to/directory}}"},
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = read_source(parse_spec(f"tldr:{path}"))
    assert [r.fields.get("command") for r in data.rows] == ["ls -1", "git {{subcommand}}", "mkdir projects"]
    assert [r.error_code for r in data.rows] == [None, "tldr_placeholder", None]


def test_schema_and_normalization() -> None:
    rows = [
        RawRow("t", "f:1", {"nl": "ok request", "command": "ls"}),
        RawRow("t", "f:2", {"nl": "line\nbreak", "command": "ls"}),
        RawRow("t", "f:3", {"nl": "x" * 600, "command": "ls"}),
        RawRow("t", "f:4", {"nl": "   ", "command": "ls"}),
        RawRow("t", "f:5", {"nl": "lone \ud800 surrogate", "command": "ls"}),
    ]
    kept, rejects = check_schema(rows, PrepareParams())
    assert [r.location for r in kept] == ["f:1"]
    assert [(r.location, r.code) for r in rejects] == [
        ("f:2", "invalid_text"), ("f:3", "length"), ("f:4", "invalid_text"), ("f:5", "invalid_text")]
    assert "UTF-8" in rejects[3].reason and "'nl'" in rejects[0].reason
    assert normalize_command("$ ls   -la  'a  b'\t") == "ls -la 'a  b'"
    assert normalize_command('echo  "x   y"   z') == 'echo "x   y" z'
    assert normalize_nl("Ｆｕｌｌ\u00a0width  text ") == "Full width text"


def test_batched_shellcheck_equals_checking_each_command_alone() -> None:
    commands = [r.fields["command"] for r in read_source(parse_spec("icalfa")).rows][:120] + TRICKY_COMMANDS
    for severity in ("error", "style"):
        batched = shellcheck.check_commands(commands, severity, batch_size=37, workers=2)
        alone = [shellcheck.check_alone(command, severity) for command in commands]
        assert batched == alone, severity
    assert any(batched), "the tricky commands must produce findings"


def test_shellcheck_missing_binary_or_timeout_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(shellcheck.ShellcheckError, match="timed out"):
        shellcheck.check_commands(["ls"] * 3, timeout=1e-4)
    monkeypatch.setattr(shellcheck, "find_shellcheck", lambda: tmp_path / "no-shellcheck")
    with pytest.raises(shellcheck.ShellcheckError, match="cannot run shellcheck"):
        shellcheck.check_commands(["ls"])
    monkeypatch.undo()
    monkeypatch.setattr(shellcheck.shutil, "which", lambda *_a, **_k: None)
    monkeypatch.setattr("importlib.metadata.files", lambda _name: [])
    with pytest.raises(shellcheck.ShellcheckError, match="not found"):
        shellcheck.find_shellcheck()
