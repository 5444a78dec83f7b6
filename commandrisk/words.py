"""Resolve tree-sitter word nodes to the text Bash would pass: quotes, escapes, ANSI-C, $IFS, braces."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from commandrisk.paths import DYN

if TYPE_CHECKING:
    from tree_sitter import Node

SPLIT = "\x01"
"""An unquoted field separator (from $IFS or an unquoted variable holding spaces)."""

DEFAULT_VARIABLES = {
    "IFS": " ",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "SHELL": "/bin/bash",
    "HOME": "~",
}
SUBSTITUTION_TYPES = frozenset({"command_substitution", "process_substitution"})
_ANSI_SIMPLE = {
    "a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", "'": "'", '"': '"', "?": "?",
}
_ANSI_RE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)", re.S)
_UNQUOTED_ESCAPE_RE = re.compile(r"\\(\n|.)", re.S)
_DQUOTE_ESCAPE_RE = re.compile(r"\\([$`\"\\\n])")
_BRACE_RE = re.compile(r"\{([^{}]*,[^{}]*)\}")
MAX_BRACE_WORDS = 32


@dataclass
class Word:
    """One resolved shell word: its text, where it came from, and the substitutions inside it."""

    text: str
    node: Any
    quoted: bool = False
    computed: bool = False
    """True when a substitution in the word decoded text (base64, xxd, printf escapes, ...)."""
    substitutions: list[Any] = field(default_factory=list)
    commands: list[Any] = field(default_factory=list)

    @property
    def dynamic(self) -> bool:
        """True when part of the text is only known at run time."""
        return DYN in self.text


def decode_ansi_c(body: str) -> str:
    """Decode the inside of a `$'...'` string."""

    def sub(match: re.Match[str]) -> str:
        esc = match.group(1)
        head = esc[0]
        if head == "x" and len(esc) > 1:
            return chr(int(esc[1:], 16))
        if head in "uU" and len(esc) > 1:
            return chr(min(int(esc[1:], 16), 0x10FFFF))
        if head.isdigit():
            return chr(int(esc, 8) & 0xFF)
        if head == "c" and len(esc) == 2:
            return chr(ord(esc[1]) & 0x1F)
        return _ANSI_SIMPLE.get(esc, "\\" + esc)

    return _ANSI_RE.sub(sub, body)


def expand_braces(text: str) -> list[str]:
    """Expand comma brace groups (`{rm,-rf,/}`, `/{etc,usr}`), bounded in size."""
    words = [text]
    for _ in range(4):
        expanded: list[str] = []
        changed = False
        for word in words:
            match = _BRACE_RE.search(word)
            if not match:
                expanded.append(word)
                continue
            changed = True
            head, tail = word[: match.start()], word[match.end():]
            expanded.extend(head + option + tail for option in match.group(1).split(","))
        words = expanded[:MAX_BRACE_WORDS]
        if not changed:
            break
    return words


class Resolver:
    """Turns word nodes into `Word`s using known variables and a static evaluator for `$(...)`."""

    def __init__(self, variables: dict[str, str], evaluate: Callable[[Any], Any]):
        self.variables = variables
        self.evaluate = evaluate

    def word(self, node: Node) -> Word:
        """Resolve one argument-like node."""
        word = Word("", node, quoted=node.type in ("string", "raw_string", "ansi_c_string"))
        word.text = self._text(node, word, quoted=False)
        return word

    def _text(self, node: Node, word: Word, quoted: bool) -> str:
        kind = node.type
        if kind == "word" or kind == "number":
            raw = node.text.decode("utf-8", "replace")
            return raw if quoted else _UNQUOTED_ESCAPE_RE.sub(lambda m: "" if m.group(1) == "\n" else m.group(1), raw)
        if kind == "raw_string":
            return node.text.decode("utf-8", "replace")[1:-1]
        if kind == "ansi_c_string":
            return decode_ansi_c(node.text.decode("utf-8", "replace")[2:-1])
        if kind == "string_content":
            return _DQUOTE_ESCAPE_RE.sub(lambda m: "" if m.group(1) == "\n" else m.group(1), node.text.decode())
        if kind in ("string", "translated_string"):
            return "".join(self._text(c, word, True) for c in node.named_children)
        if kind == "concatenation":
            return "".join(self._text(c, word, quoted) for c in node.children)
        if kind in ("simple_expansion", "expansion"):
            return self._expansion(node, quoted)
        if kind in SUBSTITUTION_TYPES:
            word.substitutions.append(node)
            if kind == "process_substitution":
                return "/dev/fd/63"
            output = self.evaluate(node)
            if output is None:
                return DYN
            word.computed = word.computed or output.decoded
            value = output.text.rstrip("\n")
            return value if quoted else _split_unquoted(value)
        if kind == "arithmetic_expansion":
            return DYN
        if node.child_count == 0:
            return node.text.decode("utf-8", "replace")
        return "".join(self._text(c, word, quoted) for c in node.children)

    def _expansion(self, node: Node, quoted: bool) -> str:
        """Resolve `$x`, `${x}`, `${x:-d}`, `${x:o:l}`; unknown values become DYN."""
        name = None
        operators: list[str] = []
        operands: list[Node] = []
        for child in node.children:
            if child.type in ("variable_name", "special_variable_name") and name is None:
                name = child.text.decode()
            elif child.type in ("$", "${", "}"):
                continue
            elif not child.is_named:
                operators.append(child.text.decode())
            else:
                operands.append(child)
        value = self.variables.get(name) if name else None
        if operators == [":", ":"] and value is not None and len(operands) == 2:
            offset, length = (_int(o.text) for o in operands)
            value = value[offset: offset + length] if offset is not None and length is not None else None
        elif operators == [":"] and value is not None and len(operands) == 1:
            offset = _int(operands[0].text)
            value = value[offset:] if offset is not None else None
        elif operators in ([":-"], ["-"]) and operands:
            value = value if value else Resolver(self.variables, self.evaluate).word(operands[0]).text
        elif operators:
            value = None
        if value is None:
            return DYN
        return value if quoted else _split_unquoted(value)


def _int(raw: bytes) -> int | None:
    """Parse a decimal offset, or None."""
    try:
        return int(raw.decode())
    except ValueError:
        return None


def _split_unquoted(value: str) -> str:
    """Mark the field separators an unquoted expansion would split on."""
    return re.sub(r"[ \t\n]+", SPLIT, value)
