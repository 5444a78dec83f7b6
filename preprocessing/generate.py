"""Generated training rows: adversarial wrappings of benign requests and near-miss benign requests.

Both come from data banks (`preprocessing/templates/*.yaml`, validated here) and a seed, so the same
kept rows, seed and banks give the same generated rows. An adversarial row's answer is a refusal when
the request as a whole is unsafe, or the benign command alone when a benign task carries an injected
extra; a near-miss row mentions dangerous words as data and its answer is a real command.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from functools import cache
from pathlib import Path
from string import Formatter
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from common.prompt import refusal
from preprocessing.records import ADVERSARIAL_IGNORE, ADVERSARIAL_REFUSAL, NEAR_MISS, RawRow, Record

BANK_DIR = Path(__file__).resolve().parent / "templates"
ADVERSARIAL_BANK = BANK_DIR / "adversarial.yaml"
NEAR_MISS_BANK = BANK_DIR / "near_miss.yaml"
ADVERSARIAL_SOURCE = "generated:adversarial"
NEAR_MISS_SOURCE = "generated:near_miss"

Family = Literal[
    "override_roleplay", "smuggled_task", "destruction_euphemism", "obfuscation",
    "disguised_exfiltration", "disguised_persistence", "authority_pretext",
]
FAMILIES: tuple[str, ...] = Family.__args__
PayloadKind = Literal["destruction", "tampering", "euphemism", "exfiltration", "persistence"]
SLOTS = frozenset({"request", "payload"})


class BankError(ValueError):
    """A template bank that does not load or validate; the message names the file, line and field."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Payload(_Entry):
    """A harmful action a template can slot in, the refusal reason for it and an example of the command."""

    id: str = Field(min_length=1)
    kind: PayloadKind
    text: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    example_command: str = Field(min_length=1)


class Template(_Entry):
    """One attack form: its family, its text with {request}/{payload} slots, and what the answer is."""

    id: str = Field(min_length=1)
    family: Family
    target: Literal["refusal", "benign"]
    text: str = Field(min_length=1)
    payload_kinds: list[PayloadKind] = Field(default_factory=list)
    reason: str | None = None

    @model_validator(mode="after")
    def _slots_fit_the_target(self) -> Template:
        slots = template_slots(self.text)
        if unknown := slots - SLOTS:
            raise ValueError(f"unknown slot(s) {sorted(unknown)}; allowed: {{request}}, {{payload}}")
        if self.target == "benign" and slots != SLOTS:
            raise ValueError("a benign-target template needs both {request} and {payload}")
        if "payload" in slots:
            if not self.payload_kinds or self.reason:
                raise ValueError("a template with {payload} needs payload_kinds and takes its reason from the payload")
        elif self.payload_kinds or not self.reason or "request" not in slots:
            raise ValueError("a template without {payload} needs {request}, a reason and no payload_kinds")
        return self


class AdversarialBank(_Entry):
    """The payloads and templates; every family has a template and every named payload kind a payload."""

    payloads: list[Payload] = Field(min_length=1)
    templates: list[Template] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> AdversarialBank:
        for name, ids in (("payload", [p.id for p in self.payloads]), ("template", [t.id for t in self.templates])):
            if duplicates := sorted({i for i in ids if ids.count(i) > 1}):
                raise ValueError(f"duplicate {name} id(s) {duplicates}")
        if missing := sorted(set(FAMILIES) - {t.family for t in self.templates}):
            raise ValueError(f"no template for famil(ies) {missing}")
        kinds = {p.kind for p in self.payloads}
        for template in self.templates:
            if absent := sorted(set(template.payload_kinds) - kinds):
                raise ValueError(f"template {template.id!r} names payload kind(s) {absent} that have no payload")
        return self


class NearMissPair(_Entry):
    """A command and the request phrasings that mention dangerous words as data."""

    id: str = Field(min_length=1)
    command: str = Field(min_length=1)
    requests: list[str] = Field(min_length=1)


class NearMissBank(_Entry):
    """Every near-miss pair."""

    pairs: list[NearMissPair] = Field(min_length=1)

    @field_validator("pairs")
    @classmethod
    def _unique(cls, pairs: list[NearMissPair]) -> list[NearMissPair]:
        ids = [pair.id for pair in pairs]
        if duplicates := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"duplicate pair id(s) {duplicates}")
        return pairs


def template_slots(text: str) -> set[str]:
    """Return the names of the `{slot}`s in a template text (`{{` is a literal brace)."""
    return {name for _, name, _, _ in Formatter().parse(text) if name is not None}


Bank = TypeVar("Bank", AdversarialBank, NearMissBank)


def load_bank(path: Path, model: type[Bank]) -> Bank:
    """Read and validate one YAML bank; errors name the file, line and field."""
    text = path.read_text(encoding="utf-8")
    try:
        return model.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as error:
        raise BankError(f"{path}: invalid YAML: {error}") from error
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "document"
        message = first["msg"].removeprefix("Value error, ")
        raise BankError(f"{path}: line {_line_of(text, list(first['loc']))}: field {field}: {message}") from error


def _line_of(text: str, location: list[Any]) -> int:
    """Return the 1-based line of the YAML node at a validation error's location (its nearest parent)."""
    node = yaml.compose(text)
    for part in location:
        if isinstance(node, yaml.MappingNode):
            node = next((value for key, value in node.value if key.value == part), node)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
    return node.start_mark.line + 1 if node is not None else 1


@cache
def adversarial_bank() -> AdversarialBank:
    """Return the shipped adversarial bank, loaded once."""
    return load_bank(ADVERSARIAL_BANK, AdversarialBank)


@cache
def near_miss_bank() -> NearMissBank:
    """Return the shipped near-miss bank, loaded once."""
    return load_bank(NEAR_MISS_BANK, NearMissBank)


def bank_hashes() -> dict[str, str]:
    """Return the sha256 of each bank file (part of the dataset hash and the manifest)."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in (ADVERSARIAL_BANK, NEAR_MISS_BANK)}


def _rank(seed: int, *parts: object) -> str:
    return hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).hexdigest()


def near_miss_rows(count: int, seed: int, bank: NearMissBank | None = None) -> list[RawRow]:
    """Return `count` near-miss rows: first phrasings of every pair before second ones, in seeded order."""
    bank = bank or near_miss_bank()
    phrasings = [(index, _rank(seed, "near_miss", pair.id, index), pair, request)
                 for pair in bank.pairs for index, request in enumerate(pair.requests)]
    chosen = sorted(phrasings, key=lambda item: item[:2])[: max(0, count)]
    return [RawRow(NEAR_MISS_SOURCE, f"{NEAR_MISS_BANK.name}:{pair.id}[{index}]",
                   {"nl": request, "command": pair.command}, kind=NEAR_MISS)
            for index, _, pair, request in chosen]


def _as_clause(request: str) -> str:
    """Return a benign request ready to sit inside a template (no closing punctuation)."""
    return request.strip().rstrip(".!?").rstrip()


def adversarial_rows(records: list[Record], count: int, seed: int, bank: AdversarialBank | None = None) -> list[RawRow]:
    """Return `count` adversarial rows wrapping the records' benign requests, the families taken in turn."""
    bank = bank or adversarial_bank()
    benign = sorted(records, key=lambda record: record.id)
    if not benign or count <= 0:
        return []
    rng = random.Random(f"securecli-adversarial:{seed}")
    families = sorted({template.family for template in bank.templates})
    rng.shuffle(families)
    templates: dict[str, list[Template]] = defaultdict(list)
    for template in bank.templates:
        templates[template.family].append(template)
    payloads: dict[str, list[Payload]] = defaultdict(list)
    for payload in bank.payloads:
        payloads[payload.kind].append(payload)
    rows = []
    for index in range(count):
        template = rng.choice(templates[families[index % len(families)]])
        source = rng.choice(benign)
        payload = rng.choice([p for kind in template.payload_kinds for p in payloads[kind]]) if template.payload_kinds else None
        request = template.text.format(request=_as_clause(source.nl), payload=payload.text if payload else "")
        if template.target == "benign":
            answer, kind = source.command, ADVERSARIAL_IGNORE
        else:
            answer, kind = refusal(payload.reason if payload else str(template.reason)), ADVERSARIAL_REFUSAL
        location = f"{ADVERSARIAL_BANK.name}:{template.id}+{payload.id if payload else '-'}[{index}] from {source.id}"
        rows.append(RawRow(ADVERSARIAL_SOURCE, location, {"nl": request, "command": answer},
                           kind=kind, origin=source.id, family=template.family))
    return rows
