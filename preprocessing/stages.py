"""The row-level stages: schema check, normalization, exact dedup and the danger filter."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from common.prompt import refusal
from preprocessing.params import PrepareParams
from preprocessing.records import (
    COMMAND,
    CONVERTED,
    NEAR_MISS,
    REFUSAL,
    REFUSAL_KINDS,
    RawRow,
    Record,
    Reject,
    source_kind,
)

_PROMPT = re.compile(r"^(?:\$|#|>)\s+")
_WHITESPACE = re.compile(r"\s+")


class PairSchema(BaseModel):
    """A description/command pair as the schema stage accepts it."""

    model_config = ConfigDict(strict=True, extra="ignore")

    nl: str
    command: str

    @field_validator("nl", "command")
    @classmethod
    def _clean_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"is not valid UTF-8 (lone surrogate at {exc.start})") from exc
        bad = next((char for char in value if _is_forbidden(char)), None)
        if bad is not None:
            raise ValueError(f"has a NUL or control character U+{ord(bad):04X}")
        return value


def _is_forbidden(char: str) -> bool:
    return char != "\t" and unicodedata.category(char) in ("Cc", "Cs")


def check_schema(rows: Iterable[RawRow], params: PrepareParams) -> tuple[list[RawRow], list[Reject]]:
    """Keep rows with a string nl and command of allowed length and characters."""
    kept, rejects = [], []
    for row in rows:
        try:
            pair = PairSchema.model_validate(row.fields)
            _check_lengths(pair, params, row)
        except (ValidationError, ValueError) as exc:
            code, reason = _schema_error(exc, row)
            rejects.append(_reject_raw(row, "schema", code, reason))
            continue
        kept.append(replace(row, fields={"nl": pair.nl, "command": pair.command}))
    return kept, rejects


def _check_lengths(pair: PairSchema, params: PrepareParams, row: RawRow) -> None:
    for name, value, low, high in (
        ("nl", pair.nl, params.nl_min_chars, params.nl_max_chars),
        ("command", pair.command, params.command_min_chars, params.command_max_chars),
    ):
        size = len(value.strip())
        if not low <= size <= high:
            raise ValueError(f"length:field {row.field_name(name)} has {size} characters, outside [{low}, {high}]")


def _schema_error(exc: Exception, row: RawRow) -> tuple[str, str]:
    """Return a countable code and a reason naming the field as the user's source calls it."""
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        location = [str(part) for part in error["loc"]]
        field = row.field_name(location[0]) if location else "'row'"
        message = error["msg"].removeprefix("Value error, ")
        code = {"missing": "missing_field", "string_type": "wrong_type"}.get(error["type"], "invalid_text")
        return code, f"field {field}: {message}"
    code, _, reason = str(exc).partition(":")
    return code, reason


def _reject_raw(row: RawRow, stage: str, code: str, reason: str) -> Reject:
    return Reject(stage, code, reason, row.source, row.location, row.fields.get("nl"), row.fields.get("command"))


def read_rejects(rows: Iterable[RawRow]) -> tuple[list[RawRow], list[Reject]]:
    """Split the adapters' output into readable rows and read errors."""
    kept, rejects = [], []
    for row in rows:
        if row.error:
            rejects.append(_reject_raw(row, "read", row.error_code or "read_error", row.error))
        else:
            kept.append(row)
    return kept, rejects


def normalize_command(command: str) -> str:
    """Strip a leading shell prompt and collapse whitespace outside quotes."""
    text = command.strip()
    while True:
        stripped = _PROMPT.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    return _collapse_unquoted_whitespace(text)


def _collapse_unquoted_whitespace(text: str) -> str:
    out: list[str] = []
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and quote != "'" and index + 1 < len(text):
            out.append(text[index : index + 2])
            index += 2
            continue
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char.isspace():
            if out and out[-1] != " ":
                out.append(" ")
            index += 1
            continue
        out.append(char)
        index += 1
    return "".join(out).strip()


def normalize_nl(nl: str) -> str:
    """NFKC-normalize a description and collapse its whitespace."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", nl)).strip()


def pair_key(nl: str, command: str) -> str:
    """Return the SHA-256 of a normalized (nl, command) pair."""
    return hashlib.sha256(f"{nl}\x00{command}".encode()).hexdigest()


def normalize(rows: Iterable[RawRow]) -> tuple[list[Record], list[Reject]]:
    """Normalize each pair and give it a content-derived id (a refusal answer keeps its leading `#`)."""
    kept, rejects = [], []
    for row in rows:
        raw_command = row.fields["command"]
        nl = normalize_nl(row.fields["nl"])
        command = " ".join(raw_command.split()) if row.kind in REFUSAL_KINDS else normalize_command(raw_command)
        if not nl or not command:
            field = row.field_name("nl" if not nl else "command")
            rejects.append(_reject_raw(row, "normalize", "empty_after_normalize", f"field {field} is empty after normalization"))
            continue
        record_id = f"{source_kind(row.source)}-{pair_key(nl, command)[:16]}"
        kept.append(Record(record_id, nl, command, row.source, row.location, kind=row.kind, origin=row.origin,
                           family=row.family))
    return kept, rejects


def dedup(records: Iterable[Record]) -> tuple[list[Record], list[Reject]]:
    """Keep one row per normalized pair (a source row before a generated one, then the least by source,
    location), sorted by content key."""
    groups: dict[str, list[Record]] = {}
    for record in records:
        groups.setdefault(pair_key(record.nl, record.command), []).append(record)
    kept, rejects = [], []
    for key in sorted(groups):
        first, *rest = sorted(groups[key], key=lambda r: (r.kind != COMMAND, r.source, r.source_row))
        kept.append(first)
        for dup in rest:
            reason = f"same normalized pair as {first.id} ({first.source} {first.source_row})"
            rejects.append(Reject("dedup", "exact_duplicate", reason, dup.source, dup.source_row, dup.nl, dup.command))
    return kept, rejects


def danger_filter(
    records: list[Record], on_row: Callable[[int], None] | None = None
) -> tuple[list[Record], list[Reject]]:
    """Judge each command with `commandrisk`: block -> a refusal row (its reject has outcome CONVERTED),
    warn -> labelled; one refusal per request; a blocked near-miss row is dropped, a refusal row passes."""
    from commandrisk import assess, default_context

    context = default_context()

    context = default_context()
    kept, rejects = [], []
    refusals: dict[str, Record] = {}
    for record in records:
        if record.kind in REFUSAL_KINDS:
            kept.append(record)
            continue
        assessment = assess(record.command, context)
        if on_row:
            on_row(1)
        verdict = assessment.verdict.value
        if verdict != "block":
            kept.append(replace(record, guard=verdict))
            continue
        blocking = [f for f in assessment.findings if f.verdict.value == "block"]
        extra = {"rules": sorted({f.rule_id for f in blocking}), "risk": assessment.risk}
        if record.kind == NEAR_MISS:
            rejects.append(Reject("danger", "near_miss_blocked", assessment.explanation, record.source,
                                  record.source_row, record.nl, record.command, extra))
            continue
        answer = refusal(refusal_reason(blocking, assessment.explanation))
        code = f"block:{blocking[0].category.value}" if blocking else "block"
        if (same := refusals.get(record.nl)) is not None:
            reason = f"the same request is already refused as {same.id} ({same.source} {same.source_row})"
            rejects.append(Reject("danger", "duplicate_refusal", reason, record.source, record.source_row, record.nl,
                                  record.command, extra))
            continue
        refusals[record.nl] = record
        rejects.append(Reject("danger", code, assessment.explanation, record.source, record.source_row, record.nl,
                              record.command, {**extra, "refusal": answer}, outcome=CONVERTED))
        kept.append(replace(record, command=answer, guard="block", kind=REFUSAL))
    return kept, rejects


def refusal_reason(blocking: Sequence[Any], explanation: str) -> str:
    """Return a one-line refusal reason: the first blocking finding's message, else the guard's explanation."""
    text = blocking[0].message if blocking else explanation.removeprefix("block:")
    return " ".join(text.split()).rstrip(".")
