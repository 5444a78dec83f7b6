"""Make input text what Bash would read: NUL bytes dropped, invalid Unicode made explicit, size capped.

Characters beyond the Basic Multilingual Plane (emoji, private-use planes) are replaced by U+FFFD before
parsing: the Bash grammar's scanner crashes on some of them, and no shell word's meaning depends on them.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_INPUT = 200_000
_SURROGATES = (0xD800, 0xDFFF)


@dataclass(frozen=True)
class Normalized:
    """The text to analyse and what was changed to get it."""

    text: str
    nul_bytes: int = 0
    invalid_characters: int = 0
    truncated: bool = False


def normalize(command: str) -> Normalized:
    """Drop NULs as Bash does, replace lone surrogates with U+FFFD, and cap the length."""
    nuls = command.count("\x00")
    text = command.replace("\x00", "") if nuls else command
    invalid = 0
    if not _encodes(text):
        invalid = sum(1 for c in text if _SURROGATES[0] <= ord(c) <= _SURROGATES[1])
        text = "".join("\ufffd" if _SURROGATES[0] <= ord(c) <= _SURROGATES[1] else c for c in text)
    if any(ord(c) > 0xFFFF for c in text):
        text = "".join("\ufffd" if ord(c) > 0xFFFF else c for c in text)
    truncated = len(text) > MAX_INPUT
    return Normalized(text[:MAX_INPUT] if truncated else text, nuls, invalid, truncated)


def _encodes(text: str) -> bool:
    """True when the text is valid UTF-8 material (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
