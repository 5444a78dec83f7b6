"""The rows that flow between stages, and the reject record every dropped row becomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    """One validated pair `{id, nl, command, source, source_row}`; `guard` is set by the danger filter."""

    id: str
    nl: str
    command: str
    source: str
    source_row: str
    guard: str = "allow"


@dataclass(frozen=True)
class Reject:
    """A dropped row: the stage, a countable code, a human reason, and the row itself."""

    stage: str
    code: str
    reason: str
    source: str
    location: str
    nl: Any = None
    command: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

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
        }
        row.update(self.extra)
        return row
