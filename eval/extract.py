"""Pull the command out of a model's raw output, strictly (command only) or leniently."""

from __future__ import annotations

import re
from collections.abc import Iterator

from common.prompt import REFUSAL_PREFIX, is_refusal
from eval.canonical import canonicalize, parse

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
PROMPT_MARK = re.compile(r"^\s*[$>]\s+")
LEAD_IN = re.compile(r"^.{0,80}?(?:command|run|use|try|answer|output)\s*(?:is|would be)?\s*:\s*", re.IGNORECASE)
SHELL_FENCES = frozenset({"", "bash", "sh", "shell", "console", "zsh", "terminal"})
PROSE_WORDS = frozenset(
    {"a", "an", "and", "above", "alternatively", "answer", "below", "certainly", "explanation",
     "finally", "first", "following", "here", "however", "i", "it", "note", "of", "okay", "output",
     "result", "step", "sure", "that", "the", "these", "this", "to", "we", "you", "your"}
)
CAPITALISED_WORD = re.compile(r"^[A-Z][a-z]+[,.:!?]?$")
ENGLISH_WORD = re.compile(r"^[A-Za-z']+[,.:!?]?$")
SENTENCE_END = re.compile(r"^[A-Za-z]{2,}[.!?:]$")


def _looks_like_prose(command: str) -> bool:
    """Tell whether text that parses as Bash is really an English sentence."""
    for line in command.splitlines():
        words = line.split()
        if not words:
            continue
        first = words[0]
        if first in {"$", ">"}:
            return True
        if first.lower().rstrip(",.:!?") in PROSE_WORDS or CAPITALISED_WORD.match(first):
            return True
        wordy = sum(bool(ENGLISH_WORD.match(word)) for word in words)
        if len(words) >= 3 and SENTENCE_END.search(words[-1]) and wordy >= 0.8 * len(words):
            return True
    return False


def _refusal_line(text: str) -> str | None:
    """Return the first refusal in the trained form, from its prefix to the end of its line."""
    start = text.lower().find(REFUSAL_PREFIX)
    if start < 0:
        return None
    return text[start:].splitlines()[0].strip()


def _without_comments(text: str) -> str:
    """Remove Bash comments (a shebang stays) from text that parses."""
    root = parse(text)
    if root is None:
        return text
    data = text.encode()
    spans: list[tuple[int, int]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "comment" and not (node.start_byte == 0 and data.startswith(b"#!")):
            spans.append((node.start_byte, node.end_byte))
        stack.extend(node.children)
    for start, end in sorted(spans, reverse=True):
        data = data[:start] + data[end:]
    return "\n".join(line.rstrip() for line in data.decode().splitlines() if line.strip())


def extract_strict(raw: str) -> str | None:
    """Return the output if it is exactly one command or script (or one refusal line), else None.

    No code fences, no prose, no comments (a leading shebang is allowed); it must parse as Bash.
    """
    text = raw.strip()
    if not text:
        return None
    if is_refusal(text):
        return text if "\n" not in text else None
    if "```" in text:
        return None
    if text.startswith("#!"):
        body = text.split("\n", 1)[1] if "\n" in text else ""
        return text if body.strip() and extract_strict(body) is not None else None
    parsed = canonicalize(text)
    if parsed is None or parsed.has_comment or _looks_like_prose(text):
        return None
    return text


def _candidate(text: str) -> str | None:
    """Return `text` as a command if, once prompt marks are removed, it is command-only."""
    lines = [PROMPT_MARK.sub("", line) if PROMPT_MARK.match(line) and not line.lstrip().startswith("#!") else line
             for line in text.strip().splitlines()]
    return extract_strict(_without_comments("\n".join(lines)))


def _snippets(raw: str) -> Iterator[str]:
    """Yield the places a command may hide, best first: shell fences, inline code, the text, its lines."""
    for language, body in FENCE.findall(raw):
        if language.lower() in SHELL_FENCES:
            yield body
    prose = FENCE.sub("\n", raw)
    yield from INLINE_CODE.findall(prose)
    yield prose
    for line in prose.splitlines():
        stripped = LEAD_IN.sub("", line.strip()).strip()
        if stripped.endswith(".") and not stripped.endswith(".."):
            stripped = stripped[:-1]
        if stripped:
            yield stripped


def extract_lenient(raw: str) -> str | None:
    """Return the command found in fences, inline code or prose (or a refusal), else None."""
    strict = extract_strict(raw)
    if strict is not None:
        return strict
    refusal = _refusal_line(raw)
    if refusal is not None:
        return refusal
    return next((found for found in map(_candidate, _snippets(raw)) if found is not None), None)
