"""`prepare` on hostile bytes, wrong mappings, empty results, killed runs, and what a source's identity is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from common.processes import pid_alive
from preprocessing import shellcheck
from preprocessing.params import PrepareParams
from preprocessing.pipeline import EmptyResultError, prepare
from preprocessing.sources import SourceError, parse_spec, read_source
from securecli.commands import prepare as prepare_module

REPO = Path(__file__).resolve().parent.parent
ROWS = [{"q": f"print the number {i} twice", "c": f"echo {i} {i}"} for i in range(60)]
MAPPED = "#nl=q,command=c"


def write_rows(path: Path, rows: list[dict], extra: bytes = b"", prefix: bytes = b"") -> Path:
    """Write rows as JSONL (json.dumps escapes non-ASCII, so a lone surrogate is written as `\\ud800`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(prefix + b"".join(json.dumps(row).encode() + b"\n" for row in rows) + extra)
    return path


def dead_pid() -> int:
    """Return the pid of a process that has exited."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    prepare_module.register(app)
    return app


def test_lone_surrogate_is_a_reject_with_a_reason_and_rejects_jsonl_is_written(tmp_path: Path) -> None:
    source = write_rows(tmp_path / "s.jsonl", [*ROWS, {"q": "x \ud800 lone surrogate", "c": "ls"}])
    assert b"\\ud800" in source.read_bytes()
    dry = prepare([f"jsonl:{source}{MAPPED}"], tmp_path / "out", PrepareParams(), dry_run=True)
    result = prepare([f"jsonl:{source}{MAPPED}"], tmp_path / "out", PrepareParams())
    for run in (dry, result):
        [reject] = [r for r in run.rejects if r["location"] == f"{source}:{len(ROWS) + 1}"]
        assert reject["code"] == "invalid_text" and "'q' (nl)" in reject["reason"] and "surrogate" in reject["reason"]
    written = (result.out_dir / "rejects.jsonl").read_bytes()
    written.decode("utf-8")
    [row] = [json.loads(line) for line in written.splitlines()]
    assert row["nl"] == "x \ud800 lone surrogate" and b"\\ud800" in written
    assert dry.dataset_hash == result.dataset_hash


def test_wrong_mapping_keeps_nothing_names_the_mapping_and_leaves_latest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    good = write_rows(tmp_path / "good.jsonl", ROWS)
    previous = prepare([f"jsonl:{good}{MAPPED}"], out, PrepareParams())
    wrong = f"jsonl:{good}#nl=q,command=cmd"
    with pytest.raises(EmptyResultError) as caught:
        prepare([wrong], out, PrepareParams())
    message = str(caught.value)
    assert "schema stage dropped the last 60" in message and "missing_field 60" in message
    assert "mapping nl=q, command=cmd" in message and "'cmd' (command)" in message
    with pytest.raises(EmptyResultError):
        prepare([wrong], out, PrepareParams(), dry_run=True)
    assert os.readlink(out / "latest") == previous.dataset_hash
    assert sorted(p.name for p in out.iterdir()) == sorted([previous.dataset_hash, "latest"])
    ran = CliRunner().invoke(cli(), ["prepare", "--source", wrong, "--out", str(out)])
    assert ran.exit_code == 1, ran.output
    assert "schema" in ran.output and "mapping nl=q, command=cmd" in ran.output and "nothing written" in ran.output
    assert os.readlink(out / "latest") == previous.dataset_hash


def test_an_empty_split_fails_and_leaves_latest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    previous = prepare([f"jsonl:{write_rows(tmp_path / 'good.jsonl', ROWS)}{MAPPED}"], out, PrepareParams())
    tiny = write_rows(tmp_path / "tiny.jsonl", ROWS[:2])
    with pytest.raises(EmptyResultError, match=r"split '(val|test)' came out empty"):
        prepare([f"jsonl:{tiny}{MAPPED}"], out, PrepareParams())
    assert os.readlink(out / "latest") == previous.dataset_hash


def test_bom_is_stripped_for_jsonl_and_nl2bash(tmp_path: Path) -> None:
    source = write_rows(tmp_path / "bom.jsonl", ROWS[:3], prefix=b"\xef\xbb\xbf")
    rows = read_source(parse_spec(f"jsonl:{source}{MAPPED}")).rows
    assert [r.error for r in rows] == [None, None, None] and rows[0].fields["nl"] == ROWS[0]["q"]
    (tmp_path / "nl2bash").mkdir()
    (tmp_path / "nl2bash" / "all.nl").write_bytes(b"\xef\xbb\xbflist files\r\nshow the date\r\n")
    (tmp_path / "nl2bash" / "all.cm").write_bytes(b"\xef\xbb\xbfls\ndate\n")
    rows = read_source(parse_spec(f"nl2bash:{tmp_path / 'nl2bash'}")).rows
    assert [(r.fields["nl"], r.fields["command"]) for r in rows] == [("list files", "ls"), ("show the date", "date")]


def test_a_lone_cr_inside_a_json_line_does_not_split_the_row(tmp_path: Path) -> None:
    source = tmp_path / "cr.jsonl"
    source.write_bytes(b'{"q": "list the files",\r "c": "ls"}\n' + json.dumps(ROWS[0]).encode() + b"\r\n")
    rows = read_source(parse_spec(f"jsonl:{source}{MAPPED}")).rows
    assert [(r.location, r.error, r.fields.get("command")) for r in rows] == [
        (f"{source}:1", None, "ls"), (f"{source}:2", None, ROWS[0]["c"])]


def test_a_directory_given_as_a_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is a directory; expected a file"):
        read_source(parse_spec(f"jsonl:{tmp_path}"))
    with pytest.raises(SourceError, match="is a directory; expected a file"):
        read_source(parse_spec(f"tldr:{tmp_path}"))
    file = write_rows(tmp_path / "rows.jsonl", ROWS[:1])
    with pytest.raises(SourceError, match="is a file; expected a directory"):
        read_source(parse_spec(f"nl2bash:{file}"))


def test_schema_messages_name_the_users_field(tmp_path: Path) -> None:
    rows = [*ROWS, {"q": "count the files here", "c": 42}, {"q": "show the date"}, {"q": "x" * 600, "c": "ls"}]
    source = write_rows(tmp_path / "m.jsonl", rows)
    result = prepare([f"jsonl:{source}{MAPPED}"], tmp_path / "out", PrepareParams(), dry_run=True)
    reasons = {r["location"].rsplit(":", 1)[1]: r["reason"] for r in result.rejects}
    n = len(ROWS)
    assert reasons[str(n + 1)].startswith("field 'c' (command): ")
    assert reasons[str(n + 2)].startswith("field 'c' (command): ")
    assert reasons[str(n + 3)].startswith("field 'q' (nl) has 600 characters")
    assert not any("'command'" in reason for reason in reasons.values())


def test_stale_temp_folders_of_dead_runs_are_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    out = tmp_path / "out"
    gone, alive = dead_pid(), os.getpid()
    stale = [out / f".tmp-{gone}-0123456789abcdef-x1", out / f".trash-{gone}-0123456789abcdef",
             temp_root / f"securecli-shellcheck-{gone}-abc"]
    live = [out / f".tmp-{alive}-0123456789abcdef-x2", temp_root / f"securecli-shellcheck-{alive}-keep"]
    for folder in stale + live:
        folder.mkdir(parents=True)
        (folder / "0.sh").write_text("ls\n")
    prepare([f"jsonl:{write_rows(tmp_path / 'good.jsonl', ROWS)}{MAPPED}"], out, PrepareParams())
    assert [p.exists() for p in stale] == [False] * len(stale)
    assert [p.exists() for p in live] == [True] * len(live)


FAKE_SHELLCHECK = """#!/bin/bash
sleep 60 &
echo $! >> "$PIDS"
echo $$ >> "$PIDS"
wait
"""

CHILD = """
import sys
from pathlib import Path
from preprocessing import shellcheck
shellcheck.find_shellcheck = lambda: Path(sys.argv[1])
shellcheck.check_commands(["ls", "pwd", "date"], batch_size=1, workers=2)
"""


def test_a_terminated_run_leaves_no_shellcheck_process_or_temp_folder(tmp_path: Path) -> None:
    fake = tmp_path / "shellcheck"
    fake.write_text(FAKE_SHELLCHECK)
    fake.chmod(0o755)
    pids_file, temp_root = tmp_path / "pids", tmp_path / "tmp"
    temp_root.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(temp_root), "PIDS": str(pids_file)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(fake)], env=env, cwd=REPO)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(pids) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = [int(line) for line in pids_file.read_text().split()] if pids_file.exists() else []
        assert len(pids) == 4, "the two fake shellcheck workers did not start"
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=15) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 5
        while any(map(pid_alive, pids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in pids if pid_alive(pid)], "shellcheck processes outlived the run"
        assert not list(temp_root.glob("securecli-shellcheck-*"))
    finally:
        child.kill()
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_shellcheck_runs_in_its_own_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict] = []
    real_popen = subprocess.Popen

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    assert shellcheck.check_commands(["ls"]) == [[]]
    assert seen and all(kwargs.get("start_new_session") for kwargs in seen)


def test_a_sources_identity_is_its_kind_and_content_not_its_file_name(tmp_path: Path) -> None:
    first = write_rows(tmp_path / "a" / "pairs.jsonl", ROWS)
    renamed = write_rows(tmp_path / "b" / "elsewhere" / "renamed.jsonl", ROWS)
    one = prepare([f"jsonl:{first}{MAPPED}"], tmp_path / "out1", PrepareParams())
    two = prepare([f"jsonl:{renamed}{MAPPED}"], tmp_path / "out2", PrepareParams())
    assert one.dataset_hash == two.dataset_hash
    for name in ("train.jsonl", "val.jsonl", "test.jsonl"):
        assert (one.out_dir / name).read_bytes() == (two.out_dir / name).read_bytes()
    rows = [row for split in one.splits.values() for row in split]
    assert {row["source"] for row in rows if row["kind"] == "command"} == {"jsonl"}
    manifest = json.loads((two.out_dir / "manifest.json").read_text())
    assert manifest["sources"][0]["files"] == {str(renamed): manifest["sources"][0]["files"][str(renamed)]}
    changed = write_rows(tmp_path / "c" / "pairs.jsonl", [*ROWS, {"q": "print the kernel name", "c": "uname -s"}])
    assert prepare([f"jsonl:{changed}{MAPPED}"], tmp_path / "out3", PrepareParams(), dry_run=True).dataset_hash \
        != one.dataset_hash
