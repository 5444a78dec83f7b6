"""End-to-end tests of `preprocessing.pipeline.prepare` on data the tests write (no ../shared)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from common.prompt import is_refusal, plain_text_row, training_row
from preprocessing import output
from preprocessing.params import PrepareParams
from preprocessing.pipeline import prepare
from preprocessing.sources import SourceError
from preprocessing.split import SPLITS, command_group_key, description_group_key

PAIRS = [
    ("list all files in the current directory", "ls -la"),
    ("list all files in the current directory", "ls -la"),
    ("List   all files in the current directory ", "$ ls  -la"),
    ("show all files including hidden ones", "ls -la"),
    ("show disk usage of the home folder", "du -sh ~"),
    ("print disk usage of home in human units", "du -sh ~"),
    ("count lines in notes.txt", "wc -l notes.txt"),
    ("count the lines in notes.txt", "wc -l < notes.txt"),
    ("find python files under src", "find src -name '*.py'"),
    ("search for DEPRECATED in all python files", "grep -rn DEPRECATED --include='*.py' ."),
    ("show running docker containers", "docker ps"),
    ("show the last 20 lines of the syslog", "tail -n 20 /var/log/syslog"),
    ("print the current working directory", "pwd"),
    ("show free memory in megabytes", "free -m"),
    ("wipe the whole filesystem", "rm -rf /"),
    ("format the first disk", "mkfs.ext4 /dev/sda"),
    ("broken quoting", "echo \"unterminated"),
    ("redirect overrides pipe", "ls | grep x > out.txt | sort"),
    ("create a directory called build", "mkdir -p build"),
    ("archive the logs folder", "tar czf logs.tar.gz logs"),
    ("show the date in ISO format", "date -I"),
    ("print the kernel version", "uname -r"),
    ("list listening tcp ports", "ss -tln"),
    ("show the first 5 lines of notes.txt", "head -n 5 notes.txt"),
    ("sort names.txt and remove duplicates", "sort -u names.txt"),
    ("print the number of files in src", "find src -type f | wc -l"),
    ("copy notes.txt to backup", "cp notes.txt backup/"),
    ("show the environment variables", "env"),
    ("compress data.csv with gzip", "gzip data.csv"),
    ("show who is logged in", "who"),
]


def write_jsonl(path: Path, rows: list[dict], extra_lines: tuple[bytes, ...] = ()) -> Path:
    """Write rows (and raw extra lines) as JSONL."""
    data = b"".join(json.dumps(row).encode() + b"\n" for row in rows) + b"".join(extra_lines)
    path.write_bytes(data)
    return path


def pair_rows() -> list[dict]:
    return [{"question": nl, "answer": cmd} for nl, cmd in PAIRS]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory):
    """One full run on the pair rows plus icalfa, shared by the tests that only read its output."""
    root = tmp_path_factory.mktemp("prep")
    source = write_jsonl(root / "pairs.jsonl", pair_rows())
    specs = [f"jsonl:{source}#nl=question,command=answer", "icalfa"]
    result = prepare(specs, root / "out", PrepareParams())
    return root, specs, result


def split_bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / f"{name}.jsonl").read_bytes() for name in SPLITS}


def test_output_layout_and_rows(first_run) -> None:
    root, _, result = first_run
    folder = result.out_dir
    assert folder == root / "out" / result.dataset_hash
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["train.jsonl", "val.jsonl", "test.jsonl", "rejects.jsonl", "report.json", "manifest.json"]
    )
    latest = root / "out" / "latest"
    assert latest.is_symlink() and os.readlink(latest) == result.dataset_hash
    rows = [json.loads(line) for name in SPLITS for line in (folder / f"{name}.jsonl").read_text().splitlines()]
    assert len(rows) == sum(result.report["splits"].values()) > 250
    for row in rows:
        assert set(row) == {"messages", "text", "id", "source", "guard", "kind", "origin"}
        assert row["guard"] in ("allow", "warn", "block", "none")
        user, assistant = row["messages"][1]["content"], row["messages"][2]["content"]
        assert row["messages"] == training_row(user, assistant)["messages"]
        assert row["text"] == plain_text_row(user, assistant)
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in ("train.jsonl", "val.jsonl", "test.jsonl", "rejects.jsonl", "report.json"):
        assert manifest["files"][name] == output.sha256_bytes((folder / name).read_bytes())
    assert manifest["dataset_hash"] == result.dataset_hash
    assert manifest["sources"][1]["revision"].startswith("icalfa==")
    assert manifest["sources"][0]["files"] and manifest["parameters"]["val_ratio"] == 0.1
    assert manifest["tools"]["shellcheck"]


def test_report_funnel_tokens_and_accounting(first_run) -> None:
    _, _, result = first_run
    report = json.loads((result.out_dir / "report.json").read_text())
    stages = report["funnel"]["stages"]
    assert [s["stage"] for s in stages] == ["read", "schema", "normalize", "leak", "dedup", "danger", "shellcheck"]
    for before, after in zip(stages, stages[1:]):
        assert before["out"] == after["in"]
    for stage in stages:
        assert stage["in"] - stage["out"] == stage["dropped"] == sum(stage["reasons"].values())
    for label, counts in report["per_source"].items():
        assert counts["kept"] + counts["converted_to_refusal"] + counts["rejected"] == counts["input"], label
        assert sum(counts["splits"].values()) == counts["kept"] + counts["converted_to_refusal"]
    assert report["per_source"]["jsonl:pairs.jsonl"]["input"] == len(PAIRS)
    assert report["per_source"]["icalfa"]["input"] == 300
    tokens = report["tokens"]
    assert 0 < tokens["all"]["p50"] <= tokens["all"]["p99"] <= tokens["all"]["max"]
    assert tokens["recommended_sequence_len"] % 64 == 0
    assert tokens["recommended_sequence_len"] >= tokens["all"]["max"]
    rejects = [json.loads(line) for line in (result.out_dir / "rejects.jsonl").read_text().splitlines()]
    generated_drops = sum(rows["dropped"] for rows in report["funnel"]["generated"])
    assert len(rejects) == report["funnel"]["rejected"] + report["funnel"]["converted_to_refusal"] + generated_drops
    by_command = {r["command"]: r for r in rejects}
    assert by_command["rm -rf /"]["stage"] == "danger" and by_command["rm -rf /"]["reason"]
    assert by_command["ls | grep x > out.txt | sort"]["stage"] == "shellcheck"
    assert by_command["ls | grep x > out.txt | sort"]["code"].startswith("SC")
    assert sum(r["stage"] == "dedup" for r in rejects) >= 1
    assert by_command["pwd"]["stage"] == "leak" and by_command["pwd"]["code"] == "leak_both"
    assert report["per_source"]["jsonl:pairs.jsonl"]["leaked"]["total"] == 3
    assert report["per_source"]["icalfa"]["leaked"]["total"] == 0


def test_danger_reason_comes_from_the_guard(first_run) -> None:
    from commandrisk import assess

    _, _, result = first_run
    danger = {r["command"]: r for r in result.rejects if r["stage"] == "danger"}
    assert danger["rm -rf /"]["reason"] == assess("rm -rf /").explanation
    kept = [row for rows in result.splits.values() for row in rows]
    for row in kept:
        if not is_refusal(row["messages"][2]["content"]):
            assert assess(row["messages"][2]["content"]).verdict.value == row["guard"]


def test_two_runs_are_byte_identical(first_run, tmp_path: Path) -> None:
    _, specs, result = first_run
    again = prepare(specs, tmp_path / "out", PrepareParams())
    assert again.dataset_hash == result.dataset_hash
    for path in result.out_dir.iterdir():
        assert (again.out_dir / path.name).read_bytes() == path.read_bytes(), path.name


def test_shuffled_input_gives_the_same_splits(first_run, tmp_path: Path) -> None:
    _, _, result = first_run
    rows = pair_rows()
    random.Random(7).shuffle(rows)
    source = write_jsonl(tmp_path / "pairs.jsonl", rows)
    shuffled = prepare([f"jsonl:{source}#nl=question,command=answer", "icalfa"], tmp_path / "out",
                       PrepareParams(), dry_run=True)
    assert shuffled.dataset_hash == result.dataset_hash
    for name in SPLITS:
        assert shuffled.splits[name] == result.splits[name]


def test_no_description_or_command_crosses_splits(first_run) -> None:
    _, _, result = first_run
    seen: dict[str, str] = {}
    for name, rows in result.splits.items():
        for row in rows:
            keys = ["d:" + description_group_key(row["messages"][1]["content"])]
            if not is_refusal(row["messages"][2]["content"]):
                keys.append("c:" + command_group_key(row["messages"][2]["content"]))
            for key in keys:
                assert seen.setdefault(key, name) == name, key


def test_split_ratios_are_configurable(tmp_path: Path) -> None:
    rows = [{"nl": f"print the number {i} twice", "command": f"echo {i} {i}"} for i in range(400)]
    source = write_jsonl(tmp_path / "numbers.jsonl", rows)
    result = prepare([f"jsonl:{source}"], tmp_path / "out",
                     PrepareParams(train_ratio=0.5, val_ratio=0.25, test_ratio=0.25, refusal_ratio=0, near_miss_ratio=0),
                     dry_run=True)
    sizes = result.report["splits"]
    assert sum(sizes.values()) == 400
    assert 160 <= sizes["train"] <= 240 and 60 <= sizes["val"] <= 140 and 60 <= sizes["test"] <= 140
    with pytest.raises(ValueError, match="sum to 1"):
        PrepareParams(train_ratio=0.5, val_ratio=0.1, test_ratio=0.1)


def test_malformed_lines_are_rejected_with_file_and_line(tmp_path: Path) -> None:
    good = [{"nl": f"print the number {i} twice", "command": f"echo {i} {i}"} for i in range(60)]
    extra = (
        b'{"nl": "bad json", "command": \n',
        b'{"nl": "no command here"}\n',
        b'{"nl": "wrong type", "command": 42}\n',
        b'["not", "an", "object"]\n',
        b'{"nl": "bad bytes \xff\xfe", "command": "ls"}\n',
        b'{"nl": "nul \\u0000 inside", "command": "ls"}\n',
        b'{"nl": "ok", "command": "ls"}\n',
        b"\n",
        b'{"nl": "show free memory in megabytes", "command": "free -m"}\n',
    )
    source = write_jsonl(tmp_path / "messy.jsonl", good, extra)
    result = prepare([f"jsonl:{source}"], tmp_path / "out", PrepareParams(), dry_run=True)
    rejects = {r["location"]: r for r in result.rejects}

    def at(line: int) -> dict:
        return rejects[f"{source}:{len(good) + line}"]

    assert at(1)["stage"] == "read" and "bad JSON" in at(1)["reason"]
    assert at(2)["code"] == "missing_field" and "'command'" in at(2)["reason"]
    assert at(3)["code"] == "wrong_type" and "'command'" in at(3)["reason"]
    assert at(4)["code"] == "not_object"
    assert at(5)["code"] == "invalid_utf8"
    assert "control character" in at(6)["reason"]
    assert at(7)["code"] == "length"
    counts = result.report["per_source"]["jsonl:messy.jsonl"]
    assert (counts["input"], counts["kept"], counts["rejected"]) == (len(good) + 8, len(good) + 1, 7)


def test_empty_or_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(SourceError, match="empty"):
        prepare([f"jsonl:{tmp_path / 'empty.jsonl'}"], tmp_path / "out", PrepareParams(), dry_run=True)
    with pytest.raises(SourceError, match="not found"):
        prepare([f"jsonl:{tmp_path / 'missing.jsonl'}"], tmp_path / "out", PrepareParams(), dry_run=True)
    with pytest.raises(SourceError, match="unknown kind"):
        prepare(["csv:whatever"], tmp_path / "out", PrepareParams(), dry_run=True)
    with pytest.raises(SourceError, match="no source"):
        prepare([], tmp_path / "out", PrepareParams(), dry_run=True)


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "p.jsonl", pair_rows())
    result = prepare([f"jsonl:{source}#nl=question,command=answer"], tmp_path / "out", PrepareParams(), dry_run=True)
    assert result.out_dir is None and len(result.dataset_hash) == 16
    assert not (tmp_path / "out").exists()


def test_interrupted_write_leaves_no_partial_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_jsonl(tmp_path / "p.jsonl", pair_rows())
    spec = f"jsonl:{source}#nl=question,command=answer"
    out = tmp_path / "out"
    previous = prepare(["icalfa"], out, PrepareParams())

    def crash(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(output.os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare([spec], out, PrepareParams())
    assert sorted(p.name for p in out.iterdir()) == sorted([previous.dataset_hash, "latest"])
    assert os.readlink(out / "latest") == previous.dataset_hash


def test_cli_prepare_dry_run_and_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from securecli.commands import prepare as prepare_module

    app = typer.Typer()
    app.callback()(lambda: None)
    prepare_module.register(app)
    source = write_jsonl(tmp_path / "p.jsonl", pair_rows())
    args = ["prepare", "--source", f"jsonl:{source}#nl=question,command=answer", "--out", str(tmp_path / "out")]
    dry = CliRunner().invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "shellcheck" in dry.output and "dry run" in dry.output and not (tmp_path / "out").exists()
    for row in ("-> refusal rows", "+ near-miss rows", "+ adversarial rows"):
        assert row in dry.output
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    digest = os.readlink(tmp_path / "out" / "latest")
    assert digest in done.output and "recommended sequence_len" in done.output
    missing = tmp_path / ("a-long-folder-name-" * 4) / "nope.jsonl"
    monkeypatch.setenv("COLUMNS", "40")
    bad = CliRunner().invoke(app, ["prepare", "--source", f"jsonl:{missing}"])
    assert bad.exit_code == 2
    assert f"error: source 'jsonl:{missing}': file {missing} not found" in bad.output.splitlines()


def test_cli_errors_are_one_line_off_a_terminal(tmp_path: Path) -> None:
    import subprocess
    import sys

    missing = tmp_path / ("a-long-folder-name-" * 4) / "nope.jsonl"
    env = {**os.environ, "COLUMNS": "40", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    entry = (
        "import sys\n"
        "from securecli.cli import main\n"
        "for args in (['eval', 'compare'], ['prepare', '--source', sys.argv[1]]):\n"
        "    sys.argv = ['securecli', *args]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
    )
    ran = subprocess.run([sys.executable, "-c", entry, f"jsonl:{missing}"], capture_output=True, text=True, env=env,
                         stdin=subprocess.DEVNULL, timeout=120)
    lines = ran.stderr.splitlines()
    assert any(line.startswith("Error: Missing argument") for line in lines), ran.stderr
    assert f"error: source 'jsonl:{missing}': file {missing} not found" in lines, ran.stderr
