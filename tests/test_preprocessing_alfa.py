"""NL2SH-ALFA through the real `datasets.load_dataset`, and the leak filter against the icalfa eval tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preprocessing import sources
from preprocessing.leak import command_leak_key, load_leak_set, request_leak_key
from preprocessing.params import PrepareParams
from preprocessing.pipeline import prepare
from preprocessing.sources import DEFAULT_TRAINING_SOURCES, KNOWN_HF_DATASETS, parse_spec, read_source

ALFA_FIXTURE = Path(__file__).parent / "data" / "nl2sh_alfa"
TRAIN_SPEC = f"hf:{ALFA_FIXTURE}#config=train,nl=nl,command=bash"
TEST_SPEC = f"hf:{ALFA_FIXTURE}#config=test,nl=nl,command=bash"


@pytest.fixture
def load_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Record every `datasets.load_dataset` call while still running the real one."""
    import datasets

    calls: list[tuple] = []
    real = datasets.load_dataset

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    return calls


def test_both_alfa_configs_load_through_load_dataset(load_calls: list[tuple]) -> None:
    train = read_source(parse_spec(TRAIN_SPEC))
    test = read_source(parse_spec(TEST_SPEC))
    assert load_calls == [(str(ALFA_FIXTURE), "train"), (str(ALFA_FIXTURE), "test")]
    assert (len(train.rows), len(test.rows)) == (8, 3)
    assert train.spec.label == "hf:nl2sh_alfa:train" and test.spec.label == "hf:nl2sh_alfa:test"
    assert train.rows[0].fields == {"nl": "show free memory in megabytes", "command": "free -m"}
    assert train.rows[0].location == "hf:nl2sh_alfa:train/train[0]"
    assert sorted(train.files) == ["README.md", "test.csv", "train.csv"]
    assert train.manifest_entry()["config"] == "train"


def test_the_hub_spec_is_pinned_and_downloads_then_loads_the_train_config(
    monkeypatch: pytest.MonkeyPatch, load_calls: list[tuple]
) -> None:
    spec = parse_spec("hf:westenfelder/NL2SH-ALFA")
    pinned = KNOWN_HF_DATASETS["westenfelder/NL2SH-ALFA"].revision
    assert (spec.target, spec.revision, spec.config) == ("westenfelder/NL2SH-ALFA", pinned, "train")
    assert spec.columns == {"nl": "nl", "command": "bash"} and len(pinned) == 40
    assert parse_spec("hf:westenfelder/NL2SH-ALFA#config=test").label == "hf:westenfelder/NL2SH-ALFA:test"
    downloads: list[tuple[str, str]] = []

    def snapshot(repo: str, revision: str) -> Path:
        downloads.append((repo, revision))
        return ALFA_FIXTURE

    monkeypatch.setattr(sources, "_hf_snapshot", snapshot)
    data = read_source(spec)
    assert downloads == [("westenfelder/NL2SH-ALFA", pinned)]
    assert load_calls == [(str(ALFA_FIXTURE), "train")]
    assert data.revision == pinned and len(data.rows) == 8
    assert DEFAULT_TRAINING_SOURCES == ("hf:westenfelder/NL2SH-ALFA", "hf")


def test_leak_keys_ignore_whitespace_quoting_case_and_punctuation() -> None:
    assert command_leak_key("$ ls   -l") == command_leak_key("ls -l")
    assert command_leak_key("find . -name '*.py'") == command_leak_key('find . -name "*.py"')
    assert command_leak_key("ls|wc -l") == command_leak_key("ls | wc -l")
    assert command_leak_key("echo 'a b'") != command_leak_key("echo a b")
    assert command_leak_key('echo "unterminated') == 'echo "unterminated'
    same = request_leak_key("list files in the current  directory")
    assert request_leak_key("List files in the current directory.") == same
    leaks = load_leak_set()
    assert len(leaks.tasks) == 300 and leaks.by_request[request_leak_key("print hello world")] == "fs1-007"


def test_leaked_rows_are_removed_before_the_split_and_counted_per_source(tmp_path: Path) -> None:
    result = prepare([TRAIN_SPEC, TEST_SPEC], tmp_path / "out", PrepareParams())
    report = json.loads((result.out_dir / "report.json").read_text())
    train, test = report["per_source"]["hf:nl2sh_alfa:train"], report["per_source"]["hf:nl2sh_alfa:test"]
    assert train["leaked"] == {"total": 4, "leak_request": 1, "leak_command": 2, "leak_both": 1}
    assert train["rejected_by_stage"] == {"leak": 4} and train["kept"] == 4
    assert test["leaked"]["total"] == 3 and test["kept"] == 0
    leak_stage = next(stage for stage in report["funnel"]["stages"] if stage["stage"] == "leak")
    assert leak_stage["dropped"] == 7 == report["leak_check"]["removed"]
    assert report["leak_check"]["tasks"] == 300
    rejects = [json.loads(line) for line in (result.out_dir / "rejects.jsonl").read_text().splitlines()]
    by_command = {row["command"]: row for row in rejects if row["source"] == "hf:nl2sh_alfa:train"}
    assert by_command["ls -l"]["code"] == "leak_command" and "fs1-000" in by_command["ls -l"]["reason"]
    near = by_command["find /system -type f -name '*.out' -printf '%h\\n' | sort -u"]
    assert near["eval_tasks"] == ["fs2-004"]
    kept = [row["messages"][2]["content"] for name in ("train", "val", "test") for row in result.splits[name]]
    assert sorted(kept) == sorted(["free -m", "find src -name '*.py' | xargs wc -l", "ss -tln",
                                   "tar czf logs.tar.gz logs"])
    manifest = json.loads((result.out_dir / "manifest.json").read_text())
    assert sorted(manifest["leak_check"]["files"]) == [f"icalfa/nl2bash_fs_{n}.json" for n in range(1, 6)]
    from eval.execution import leaked_tasks, load_tasks

    assert leaked_tasks(load_tasks(), result.out_dir / "train.jsonl") == set(), "the eval's second check finds none"
    again = prepare([TRAIN_SPEC, TEST_SPEC], tmp_path / "again", PrepareParams())
    assert again.dataset_hash == result.dataset_hash
    for path in result.out_dir.iterdir():
        assert (again.out_dir / path.name).read_bytes() == path.read_bytes(), path.name


def test_the_icalfa_source_is_exempt_and_its_tasks_still_split_whole(tmp_path: Path) -> None:
    result = prepare([TRAIN_SPEC, "icalfa"], tmp_path / "out", PrepareParams(), dry_run=True)
    icalfa = result.report["per_source"]["icalfa"]
    assert icalfa["leaked"]["total"] == 0 and "leak" not in icalfa["rejected_by_stage"]
    assert result.report["per_source"]["hf:nl2sh_alfa:train"]["leaked"]["total"] == 4
    assert result.report["leak_check"]["exempt_sources"] == ["icalfa"]
