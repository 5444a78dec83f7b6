"""Evaluate text-producing commands (echo, printf, base64 -d, xxd -r, rev, tr) without running them."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from commandrisk.paths import DYN
from commandrisk.words import decode_ansi_c

MAX_TEXT = 100_000
_PRINTF_SPEC_RE = re.compile(r"%(?:%|[-+ #0]*\d*(?:\.\d+)?[sbdqcixXoeEfgG])")


@dataclass(frozen=True)
class Output:
    """Text a command would print, and whether producing it decoded or computed anything."""

    text: str
    decoded: bool


def run(argv: list[str], stdin: Output | None) -> Output | None:
    """Return what `argv` prints given `stdin`, or None when that is not statically known."""
    if not argv or any(DYN in a for a in argv):
        return None
    name, args = argv[0].rsplit("/", 1)[-1], argv[1:]
    handler = _HANDLERS.get(name)
    if handler is None:
        return None
    try:
        out = handler(args, stdin)
    except (ValueError, UnicodeDecodeError, binascii.Error, IndexError, OverflowError):
        return None
    if out is None or len(out.text) > MAX_TEXT:
        return None
    return out


def _echo(args: list[str], stdin: Output | None) -> Output:
    newline, escapes = True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        flags = args.pop(0)
        newline = newline and "n" not in flags
        escapes = ("e" in flags) or (escapes and "E" not in flags)
    text = " ".join(args)
    decoded = escapes and "\\" in text
    if escapes:
        text = decode_ansi_c(text)
    return Output(text + ("\n" if newline else ""), decoded)


def _printf(args: list[str], stdin: Output | None) -> Output | None:
    if args and args[0] == "--":
        args = args[1:]
    if not args or args[0] == "-v":
        return None
    fmt, values = args[0], list(args[1:])
    decoded = "\\" in fmt or any(s != "%s" for s in _PRINTF_SPEC_RE.findall(fmt))

    def spec(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "%%":
            return "%"
        value = values.pop(0) if values else ""
        if token.endswith("b"):
            return decode_ansi_c(value)
        if token[-1] in "di":
            return str(int(value or "0", 0))
        if token[-1] in "c":
            return value[:1]
        if token[-1] in "xXo":
            return format(int(value or "0", 0), token[-1])
        return value

    return Output(decode_ansi_c(_PRINTF_SPEC_RE.sub(spec, fmt)), decoded)


def _stdin_or_file(args: list[str], stdin: Output | None) -> str | None:
    positional = [a for a in args if not a.startswith("-")]
    if positional:
        return None
    return stdin.text if stdin else None


def _base64(args: list[str], stdin: Output | None) -> Output | None:
    if not any(a in ("-d", "--decode", "-D") or (a.startswith("-") and "d" in a and not a.startswith("--")) for a in args):
        return None
    data = _stdin_or_file([a for a in args if a not in ("-w0", "-i")], stdin)
    if data is None:
        return None
    raw = re.sub(r"\s+", "", data)
    return Output(base64.b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8", "replace"), True)


def _base32(args: list[str], stdin: Output | None) -> Output | None:
    if not any(a in ("-d", "--decode") for a in args) or stdin is None:
        return None
    raw = re.sub(r"\s+", "", stdin.text)
    return Output(base64.b32decode(raw + "=" * (-len(raw) % 8)).decode("utf-8", "replace"), True)


def _xxd(args: list[str], stdin: Output | None) -> Output | None:
    if not any(a.startswith("-r") for a in args) or not any("p" in a for a in args if a.startswith("-")):
        return None
    data = _stdin_or_file([a for a in args if a.startswith("-")], stdin)
    if data is None:
        return None
    return Output(bytes.fromhex(re.sub(r"\s+", "", data)).decode("utf-8", "replace"), True)


def _rev(args: list[str], stdin: Output | None) -> Output | None:
    if args or stdin is None:
        return None
    return Output("\n".join(line[::-1] for line in stdin.text.split("\n")), True)


def _expand_set(spec: str) -> str:
    spec = decode_ansi_c(spec)
    out: list[str] = []
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            out.extend(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            out.append(spec[i])
            i += 1
    return "".join(out)


def _tr(args: list[str], stdin: Output | None) -> Output | None:
    if len(args) != 2 or stdin is None or any(a.startswith("-") for a in args):
        return None
    source, target = _expand_set(args[0]), _expand_set(args[1])
    if not target:
        return None
    target = target + target[-1] * max(0, len(source) - len(target))
    return Output(stdin.text.translate(str.maketrans(source, target[: len(source)])), True)


def _cat(args: list[str], stdin: Output | None) -> Output | None:
    if args and args != ["-"]:
        return None
    return stdin


def _openssl(args: list[str], stdin: Output | None) -> Output | None:
    if "-d" in args and ("base64" in args or "-base64" in args or "-a" in args) and stdin is not None:
        return _base64(["-d"], stdin)
    return None


_HANDLERS = {
    "echo": _echo,
    "printf": _printf,
    "base64": _base64,
    "base32": _base32,
    "xxd": _xxd,
    "rev": _rev,
    "tr": _tr,
    "cat": _cat,
    "openssl": _openssl,
}
