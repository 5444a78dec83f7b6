"""The generated rows: bank validation, determinism, targets, variety and separation from the eval suites."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from common.prompt import refusal
from eval.safety import default_suite_path
from preprocessing.generate import (
    ADVERSARIAL_BANK,
    FAMILIES,
    NEAR_MISS_BANK,
    AdversarialBank,
    BankError,
    NearMissBank,
    adversarial_bank,
    adversarial_rows,
    load_bank,
    near_miss_bank,
    near_miss_rows,
    template_slots,
)
from preprocessing.records import ADVERSARIAL_IGNORE, ADVERSARIAL_REFUSAL, NEAR_MISS, Record
from preprocessing.shellcheck import check_commands

RECORDS = [Record(f"t-{i:03d}", f"show the first {i} lines of notes{i}.txt", f"head -n {i} notes{i}.txt", "t", str(i))
           for i in range(60)]
SUITES = Path(default_suite_path()).parent
STOP_WORDS = frozenset(
    "a an the and or of to in on for by with from at as is are be it its this that these those my me i you your "
    "all any every each some so then also but not no do does please can could would should will just into onto "
    "up down out over under there here what which who how when where than too very".split()
)


def test_banks_load_and_cover_every_family() -> None:
    bank = adversarial_bank()
    assert {template.family for template in bank.templates} == set(FAMILIES)
    assert {template.target for template in bank.templates} == {"refusal", "benign"}
    assert len(near_miss_bank().pairs) >= 30


def test_same_inputs_give_the_same_rows_and_the_seed_changes_them() -> None:
    first = adversarial_rows(RECORDS, 200, seed=0)
    assert first == adversarial_rows(list(reversed(RECORDS)), 200, seed=0)
    assert first != adversarial_rows(RECORDS, 200, seed=1)
    assert near_miss_rows(20, seed=0) == near_miss_rows(20, seed=0) != near_miss_rows(20, seed=5)


def test_targets_are_the_benign_command_or_the_refusal() -> None:
    bank = adversarial_bank()
    templates = {template.id: template for template in bank.templates}
    payloads = {payload.id: payload for payload in bank.payloads}
    commands = {record.id: record for record in RECORDS}
    for row in adversarial_rows(RECORDS, 400, seed=3):
        template_id, payload_id = row.location.split(":", 1)[1].split("[", 1)[0].split("+")
        template, source = templates[template_id], commands[row.origin]
        if template.target == "benign":
            assert row.kind == ADVERSARIAL_IGNORE and row.fields["command"] == source.command
            assert payloads[payload_id].text in row.fields["nl"] and source.nl in row.fields["nl"]
        else:
            reason = payloads[payload_id].reason if payload_id != "-" else template.reason
            assert row.kind == ADVERSARIAL_REFUSAL and row.fields["command"] == refusal(reason)


def test_no_single_phrasing_dominates() -> None:
    rows = adversarial_rows(RECORDS, 4000, seed=0)
    templates = Counter(row.location.split(":", 1)[1].split("+")[0] for row in rows)
    families = Counter(row.family for row in rows)
    assert set(templates) == {template.id for template in adversarial_bank().templates}
    assert max(templates.values()) / len(rows) <= 0.08
    assert max(families.values()) - min(families.values()) <= 1
    kinds = Counter(row.kind for row in rows)
    assert 0.25 <= kinds[ADVERSARIAL_IGNORE] / len(rows) <= 0.6
    near = near_miss_rows(10_000, seed=0)
    assert len(near) == sum(len(pair.requests) for pair in near_miss_bank().pairs)
    assert len({row.fields["command"] for row in near_miss_rows(len(near_miss_bank().pairs), seed=0)}) == len(
        near_miss_bank().pairs), "every pair's first phrasing comes before any second one"
    assert all(row.kind == NEAR_MISS for row in near)


def test_payloads_are_unsafe_and_near_misses_are_real_commands() -> None:
    from commandrisk import assess

    for payload in adversarial_bank().payloads:
        assert assess(payload.example_command).verdict.value != "allow", payload.id
    commands = [pair.command for pair in near_miss_bank().pairs]
    for pair in near_miss_bank().pairs:
        assert assess(pair.command).verdict.value != "block", pair.id
    assert not any(check_commands(commands, "error"))


def test_a_bad_bank_names_file_line_and_field(tmp_path: Path) -> None:
    text = ADVERSARIAL_BANK.read_text(encoding="utf-8")
    broken = tmp_path / "adversarial.yaml"
    broken.write_text(text.replace("family: obfuscation", "family: obfuscashun", 1), encoding="utf-8")
    line = next(n for n, content in enumerate(broken.read_text().splitlines(), 1) if "obfuscashun" in content)
    with pytest.raises(BankError, match=rf"adversarial\.yaml: line {line}: field templates\.\d+\.family"):
        load_bank(broken, AdversarialBank)
    broken.write_text(text.replace("{request}, and once that finishes, {payload}", "and once that finishes, {payload}"))
    with pytest.raises(BankError, match=r"templates\.\d+: .*needs both \{request\} and \{payload\}"):
        load_bank(broken, AdversarialBank)
    near = tmp_path / "near_miss.yaml"
    near.write_text(NEAR_MISS_BANK.read_text().replace("id: dd-help", "id: grep-rmrf-docs"))
    first_pair = next(n for n, content in enumerate(near.read_text().splitlines(), 1) if content.startswith("  - "))
    with pytest.raises(BankError, match=rf"line {first_pair}: field pairs: duplicate pair id"):
        load_bank(near, NearMissBank)


def _content_words(text: str) -> list[str]:
    return [word for word in re.findall(r"[a-z0-9][a-z0-9./~_-]*", text.casefold()) if word not in STOP_WORDS]


def _ngrams(text: str, size: int = 4) -> set[tuple[str, ...]]:
    words = _content_words(text)
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def _bank_phrases() -> list[str]:
    """Every fixed phrase of the banks: template fragments between slots, payloads, near-miss requests."""
    bank = adversarial_bank()
    phrases = [payload.text for payload in bank.payloads]
    for template in bank.templates:
        phrases += [part for part in re.split(r"\{(?:request|payload)\}", template.text) if part.strip()]
    phrases += [request for pair in near_miss_bank().pairs for request in pair.requests]
    return phrases


def _suite_requests() -> list[str]:
    requests = []
    for path in sorted(SUITES.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            requests.append(str(row.get("request") or row.get("question")))
    return requests


def test_banks_share_no_request_or_phrase_with_the_eval_suites() -> None:
    suite = _suite_requests()
    assert len(suite) >= 100
    phrases = _bank_phrases()
    normalized = {" ".join(_content_words(request)) for request in suite}
    assert not [p for p in phrases if " ".join(_content_words(p)) in normalized]
    suite_grams = set().union(*map(_ngrams, suite))
    shared = {phrase: sorted(_ngrams(phrase) & suite_grams) for phrase in phrases if _ngrams(phrase) & suite_grams}
    assert not shared, shared


def test_overlap_check_catches_a_copied_phrase() -> None:
    suite_request = next(request for request in _suite_requests() if len(_content_words(request)) >= 6)
    assert _ngrams(f"please {suite_request} now") & set().union(*map(_ngrams, _suite_requests()))
    assert template_slots("{request} then {payload} {{literal}}") == {"request", "payload"}
