"""The rows that flow between stages, and the reject record every dropped row becomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Row kinds: a source pair, a blocked source pair turned into a refusal, a generated adversarial request
# answered with a refusal or with the benign command alone, and a generated near-miss benign request.
COMMAND = "command"
REFUSAL = "refusal"
ADVERSARIAL_REFUSAL = "adversarial_refusal"
ADVERSARIAL_IGNORE = "adversarial_ignore"
NEAR_MISS = "near_miss"
REFUSAL_KINDS = frozenset({REFUSAL, ADVERSARIAL_REFUSAL})
CONVERTED = "converted to refusal"


@dataclass(frozen=True)
class RawRow:
    """One row as a source adapter read it: unvalidated fields, or a read error.

    `names` maps each internal field (`nl`, `command`) to its name in the user's source, for messages.
    """

    source: str
    location: str
    fields: dict[str, Any]
    error_code: str | None = None
    error: str | None = None
    kind: str = COMMAND
    origin: str | None = None
    family: str | None = None
    names: dict[str, str] = field(default_factory=dict)

    def field_name(self, key: str) -> str:
        """Return how the user's source calls an internal field: `'c' (command)`, or just `'command'`."""
        name = self.names.get(key, key)
        return repr(key) if name == key else f"{name!r} ({key})"


def source_kind(label: str) -> str:
    """Return the kind part of a source label (`jsonl:pairs.jsonl` -> `jsonl`): a source's identity in the data."""
    return label.split(":", 1)[0]


@dataclass(frozen=True)
class Record:
    """One validated pair `{id, nl, command, source, source_row}`; `guard` is set by the danger filter
    ("block" on a converted refusal, "none" on a generated refusal, which has no command to judge).

    `kind` is one of the row kinds above; `origin` is the id of the source row a generated row wraps
    (the split keeps the two together); `family` is a generated adversarial row's attack family.
    """

    id: str
    nl: str
    command: str
    source: str
    source_row: str
    guard: str = "allow"
    kind: str = COMMAND
    origin: str | None = None
    family: str | None = None


@dataclass(frozen=True)
class Reject:
    """A dropped row (or, with `outcome` CONVERTED, a blocked one kept as a refusal) and its reason."""

    stage: str
    code: str
    reason: str
    source: str
    location: str
    nl: Any = None
    command: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    outcome: str = "dropped"

    def to_json(self) -> dict[str, Any]:
        """Return the `rejects.jsonl` form."""
        row = {
            "stage": self.stage,
            "code": self.code,
            "reason": self.reason,
            "source": self.source,
            "location": self.location,
            "nl": self.nl,
            "command": self.command,
            "outcome": self.outcome,
        }
        row.update(self.extra)
        return row
