"""JSON and JSON-lines I/O for every stage: stable serialization, atomic writes, errors naming file and line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from common.atomic import write_bytes_atomic

MANIFEST_NAME = "manifest.json"


class ManifestError(ValueError):
    """A run or dataset manifest that is missing, unreadable or incomplete."""


def read_json(path: Path, what: str) -> dict[str, Any]:
    """Read a JSON object, with errors naming the file and what it should be."""
    if not path.is_file():
        raise ManifestError(f"{path}: {what} not found")
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ManifestError(f"{path}: {what} is not valid JSON (line {error.lineno}): {error.msg}") from error
    if not isinstance(loaded, dict):
        raise ManifestError(f"{path}: {what} must be a JSON object, got {type(loaded).__name__}")
    return loaded


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf8(text: str) -> bytes:
    """Encode JSON text as UTF-8, writing any lone surrogate (from a `\\ud800` escape) back as that escape."""
    return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text).encode()


def jsonl_bytes(rows: list[dict[str, Any]]) -> bytes:
    """Serialize rows as UTF-8 JSONL with a stable key order."""
    return _utf8("".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows))


def json_bytes(obj: Any) -> bytes:
    """Serialize one JSON document, indented, with sorted keys."""
    return _utf8(json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=2) + "\n")


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write rows as JSON lines, atomically."""
    write_bytes_atomic(path, jsonl_bytes(list(rows)))


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; a bad line raises naming file and line."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from error
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object")
            yield number, row


def flatten_json(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one mapping of dotted keys to leaf values (`{"a": {"b": 1}}` -> `{"a.b": 1}`)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten_json(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat
