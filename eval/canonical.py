"""Canonical forms of shell commands, built on tree-sitter-bash, for equivalence-aware scoring.

Two commands are equivalent when their canonical texts match: quoting and whitespace are
normalised, and for known utilities that ignore option order, combined short flags are split,
long aliases mapped to short flags and options sorted. Arguments keep their meaning
(`./build` and `/build` differ; unquoted globs differ from quoted ones).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Node

ARG_NODES = frozenset(
    {"word", "number", "string", "raw_string", "ansi_c_string", "concatenation", "simple_expansion",
     "expansion", "command_substitution", "process_substitution", "arithmetic_expansion"}
)
STATEMENT_NODES = frozenset(
    {"command", "pipeline", "list", "redirected_statement", "subshell", "compound_statement",
     "for_statement", "c_style_for_statement", "while_statement", "if_statement", "case_statement",
     "function_definition", "variable_assignment", "declaration_command", "test_command",
     "negated_command", "unset_command"}
)
SUBCOMMAND_UTILITIES = frozenset(
    {"git", "docker", "kubectl", "apt", "apt-get", "systemctl", "npm", "pip", "pip3", "brew",
     "conda", "cargo", "go", "helm", "journalctl", "service", "yum", "dnf", "snap", "gh", "aws"}
)
GLOB_CHARS = re.compile(r"(?<!\\)[*?\[]")
PERMISSION = re.compile(r"^([0-7]{3,4}|[ugoa]*[-+=][rwxXst]*(,[ugoa]*[-+=][rwxXst]*)*)$")
SIZE = re.compile(r"^[-+]?\d+(\.\d+)?[kKMGTPcbw]i?B?$")
NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?$")


@dataclass(frozen=True)
class UtilitySpec:
    """How a utility reads its options: boolean and valued short flags, aliases, wrapping."""

    flags: str = ""
    arg_flags: str = ""
    optional_arg_flags: str = ""
    aliases: dict[str, str] = field(default_factory=dict)
    numeric_flag: str = ""
    wrapper: bool = False
    leading_positionals: int = 0
    old_style_bundle: bool = False

    def known(self, char: str) -> bool:
        """Tell whether a short flag letter is one this utility is known to accept."""
        return char in self.flags or char in self.arg_flags or char in self.optional_arg_flags


def _spec(flags: str, arg_flags: str = "", aliases: str = "", **options: object) -> UtilitySpec:
    """Build a spec from compact strings; `aliases` reads 'all=a human-readable=h R=r'."""
    mapping = dict(pair.split("=", 1) for pair in aliases.split())
    return UtilitySpec(flags=flags, arg_flags=arg_flags, aliases=mapping, **options)  # type: ignore[arg-type]


UTILITIES: dict[str, UtilitySpec] = {
    "ls": _spec("aAlhrRtSsdiF1cuUXnogGp", "Iw",
                "all=a almost-all=A human-readable=h recursive=R reverse=r size=s directory=d "
                "inode=i classify=F numeric-uid-gid=n"),
    "rm": _spec("rRfivdI", "", "recursive=r R=r force=f interactive=i verbose=v dir=d"),
    "cp": _spec("rRfivnuaplsPLHdx", "tS",
                "recursive=r R=r force=f interactive=i verbose=v no-clobber=n update=u archive=a "
                "link=l symbolic-link=s target-directory=t"),
    "mv": _spec("fivnub", "tS", "force=f interactive=i verbose=v no-clobber=n update=u target-directory=t"),
    "mkdir": _spec("pv", "m", "parents=p verbose=v mode=m"),
    "rmdir": _spec("pv", "", "parents=p verbose=v"),
    "grep": _spec("icvnlLwxEFPoqsrRhHHbaIzZUT", "efmABCdD",
                  "ignore-case=i count=c invert-match=v line-number=n files-with-matches=l "
                  "files-without-match=L word-regexp=w line-regexp=x extended-regexp=E "
                  "fixed-strings=F perl-regexp=P only-matching=o quiet=q silent=q no-messages=s "
                  "recursive=r dereference-recursive=R no-filename=h with-filename=H regexp=e "
                  "file=f max-count=m after-context=A before-context=B context=C"),
    "head": _spec("qvz", "nc", "lines=n bytes=c quiet=q silent=q verbose=v", numeric_flag="n"),
    "tail": _spec("qvzfFr", "ncs", "lines=n bytes=c quiet=q silent=q verbose=v follow=f", numeric_flag="n"),
    "wc": _spec("lwcmL", "", "lines=l words=w bytes=c chars=m max-line-length=L"),
    "sort": _spec("nrufhbdgiMRVcCsz", "ktoST",
                  "numeric-sort=n reverse=r unique=u ignore-case=f human-numeric-sort=h key=k "
                  "field-separator=t output=o version-sort=V random-sort=R month-sort=M"),
    "uniq": _spec("cduiDuz", "fsw", "count=c repeated=d unique=u ignore-case=i"),
    "du": _spec("ahscbkmxLPS0", "dtB", "all=a human-readable=h summarize=s total=c max-depth=d"),
    "df": _spec("ahikmlPTH", "tBx", "all=a human-readable=h inodes=i local=l print-type=T type=t"),
    "ps": _spec("aeAfFlHjlwxyTrMZ", "opuUgGCtsq", "format=o pid=p user=u"),
    "chmod": _spec("Rvcfrwxst", "", "recursive=R verbose=v changes=c silent=f quiet=f"),
    "chown": _spec("RvchfHLP", "", "recursive=R verbose=v changes=c no-dereference=h"),
    "chgrp": _spec("RvchfHLP", "", "recursive=R verbose=v changes=c no-dereference=h"),
    "cat": _spec("nbsAEeTtvu", "", "number=n number-nonblank=b squeeze-blank=s show-all=A show-ends=E show-tabs=T"),
    "touch": _spec("acmhf", "dtr", "no-create=c date=d reference=r"),
    "cut": _spec("nsz", "dfcb", "delimiter=d fields=f characters=c bytes=b only-delimited=s"),
    "tar": _spec("cxtrudvzjJaZkmpPhWSOBiGMw", "fCTXbLNgHK",
                 "create=c extract=x get=x list=t append=r update=u verbose=v gzip=z gunzip=z "
                 "bzip2=j xz=J file=f directory=C auto-compress=a keep-old-files=k", old_style_bundle=True),
    "sed": _spec("nErszu", "efl", "quiet=n silent=n regexp-extended=E expression=e file=f separate=s"),
    "awk": _spec("", "Ffv", "field-separator=F assign=v file=f"),
    "ln": _spec("sfvinrTLPb", "tS", "symbolic=s force=f verbose=v interactive=i no-dereference=n relative=r"),
    "netstat": _spec("tulpnaersWx", "", "tcp=t udp=u listening=l program=p numeric=n all=a route=r statistics=s"),
    "ss": _spec("tulpnaexmois", "", "tcp=t udp=u listening=l processes=p numeric=n all=a"),
    "free": _spec("bkmghltw", "sc", "human=h total=t"),
    "gzip": _spec("dkcvfrtlnNq123456789", "S", "decompress=d keep=k stdout=c verbose=v force=f recursive=r"),
    "gunzip": _spec("kcvfrtlq", "S", "keep=k stdout=c verbose=v force=f recursive=r"),
    "unzip": _spec("lqoOnjvtCLa", "dxP", ""),
    "zip": _spec("rqvjmTyu9", "x", "recurse-paths=r quiet=q"),
    "diff": _spec("uqrNyiwBbEsacp", "UCWx", "unified=u brief=q recursive=r new-file=N side-by-side=y ignore-case=i"),
    "tr": _spec("dscC", "", "delete=d squeeze-repeats=s complement=c"),
    "echo": _spec("neE"),
    "curl": _spec("sSLOkfiIvGgqZ#", "oXHduAeTwxrmbcKEFYz",
                  "silent=s show-error=S location=L remote-name=O insecure=k fail=f include=i head=I "
                  "verbose=v output=o request=X header=H data=d user=u user-agent=A"),
    "wget": _spec("qcrNkpmnvb", "OPtTlUA",
                  "quiet=q continue=c recursive=r output-document=O directory-prefix=P tries=t"),
    "xargs": _spec("0prtx", "IdEnLPsa", "null=0 replace=I max-args=n max-procs=P delimiter=d", wrapper=True),
    "sudo": _spec("bEHiklnsSv", "ugCDhprT", "user=u group=g", wrapper=True),
    "nohup": UtilitySpec(wrapper=True),
    "nice": _spec("", "n", "adjustment=n", wrapper=True),
    "time": _spec("pv", "fo", "", wrapper=True),
    "watch": _spec("dtbegcx", "n", "interval=n differences=d", wrapper=True),
    "timeout": _spec("v", "sk", "signal=s kill-after=k", wrapper=True, leading_positionals=1),
}


@dataclass(frozen=True)
class CommandShape:
    """One utility occurrence and its flag set, in the order NLC2CMD compares them."""

    utility: str
    flags: frozenset[str]


@dataclass(frozen=True)
class Canonical:
    """A parsed command's canonical text, its NL2Bash-style template and its utility shapes."""

    text: str
    template: str
    shapes: tuple[CommandShape, ...]
    has_comment: bool


@dataclass(frozen=True)
class Arg:
    """One shell word: its value after quote removal (None if it expands), rendering and type."""

    literal: str | None
    text: str
    kind: str


@lru_cache(maxsize=1)
def _parser():  # noqa: ANN202 - tree_sitter types are imported lazily
    """Return a tree-sitter parser for Bash (built once)."""
    import tree_sitter_bash
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_bash.language()))


def parse(command: str) -> Node | None:
    """Parse Bash; return the root node, or None if the text has a syntax error or is empty."""
    if not command.strip():
        return None
    from commandrisk.normalize import normalize

    root = _parser().parse(normalize(command).text.encode()).root_node
    return None if root.has_error else root


def argument_type(value: str, utility: str = "") -> str:
    """Return the NL2Bash-style type of a literal argument (Number, Size, Permission, ...)."""
    if utility in {"chmod", "umask"} and PERMISSION.match(value):
        return "Permission"
    if NUMBER.match(value):
        return "Number"
    if SIZE.match(value):
        return "Size"
    if GLOB_CHARS.search(value) or any(char in value for char in "^$|\\()"):
        return "Pattern"
    return "File"


def _literal_arg(value: str) -> Arg:
    """Return the argument for a known literal value, quoted canonically."""
    return Arg(literal=value, text=shlex.quote(value), kind=argument_type(value))


def _unescape(raw: str) -> str:
    """Remove shell backslash escapes from an unquoted word."""
    return re.sub(r"\\(.)", r"\1", raw, flags=re.DOTALL)


def _unescape_double_quoted(inner: str) -> str:
    """Remove the escapes Bash honours inside double quotes."""
    return re.sub(r'\\([$`"\\\n])', r"\1", inner)


class _Walker:
    """Render a parse tree canonically (or as a template) and collect utility shapes."""

    def __init__(self, template: bool) -> None:
        self.template = template
        self.shapes: list[CommandShape] = []
        self.has_comment = False

    def render(self, node: Node) -> str:
        """Return the canonical rendering of any node."""
        kind = node.type
        if kind == "comment":
            self.has_comment = True
            return ""
        if kind == "command":
            return self._command(node)
        if kind in ARG_NODES:
            arg = self.arg(node)
            return arg.kind if self.template and arg.literal is not None else arg.text
        if kind == "file_redirect":
            return self._redirect(node)
        if node.child_count == 0:
            text = node.text.decode()
            return "" if text in {";", "\n"} else text
        return self._join(node.children)

    def _join(self, children: list[Node]) -> str:
        """Render children with single spaces, keeping statement boundaries as ';'."""
        parts: list[str] = []
        previous_statement = False
        for child in children:
            rendered = self.render(child)
            if not rendered:
                continue
            is_statement = child.type in STATEMENT_NODES
            if is_statement and previous_statement:
                parts.append(";")
            parts.append(rendered)
            previous_statement = is_statement
        return " ".join(parts)

    def _redirect(self, node: Node) -> str:
        """Render a redirect as `[fd]op target ...` regardless of the spacing used."""
        head, targets = "", []
        for index, child in enumerate(node.children):
            if node.field_name_for_child(index) == "destination":
                targets.append(self.render(child))
            else:
                head += child.text.decode()
        return " ".join([head, *targets])

    def arg(self, node: Node) -> Arg:
        """Return the argument a word-like node denotes."""
        raw = node.text.decode()
        kind = node.type
        if kind in {"word", "number"}:
            if GLOB_CHARS.search(raw) or raw.startswith("~"):
                return Arg(literal=None, text=raw, kind="Pattern" if GLOB_CHARS.search(raw) else "File")
            return _literal_arg(_unescape(raw))
        if kind == "raw_string":
            return _literal_arg(raw[1:-1])
        if kind == "string" and all(child.type == "string_content" or not child.is_named for child in node.children):
            return _literal_arg(_unescape_double_quoted(raw[1:-1]))
        if kind == "concatenation":
            parts = [self.arg(child) for child in node.named_children]
            if all(part.literal is not None for part in parts):
                return _literal_arg("".join(part.literal or "" for part in parts))
            return Arg(literal=None, text="".join(part.text for part in parts), kind="Pattern")
        if kind in {"command_substitution", "process_substitution"}:
            opener = "<(" if raw.startswith("<(") else ">(" if raw.startswith(">(") else "$("
            body = self._join(node.named_children)
            return Arg(literal=None, text=f"{opener}{body})", kind="Command")
        return Arg(literal=None, text=raw, kind="Variable")

    def _command(self, node: Node) -> str:
        """Render a simple command: prefix assignments, name, then its arguments."""
        prefix: list[str] = []
        name: Arg | None = None
        args: list[Arg] = []
        extras: list[str] = []
        slot = len(self.shapes)
        for index, child in enumerate(node.children):
            field_name = node.field_name_for_child(index)
            if child.type == "variable_assignment":
                prefix.append(child.text.decode())
            elif field_name == "name":
                name = self.arg(child.named_children[0]) if child.named_children else _literal_arg(child.text.decode())
            elif field_name == "argument":
                args.append(self.arg(child))
            elif child.is_named:
                extras.append(self.render(child))
        if name is None:
            return " ".join(prefix + extras)
        return " ".join(prefix + [self.simple(name, args, slot)] + extras)

    def simple(self, name: Arg, args: list[Arg], slot: int) -> str:
        """Render `name args...`, normalising options where the utility is known.

        The utility's shape goes in at `slot`, ahead of utilities nested in its arguments.
        """
        utility = (name.literal or name.text).rsplit("/", 1)[-1]
        spec = UTILITIES.get(utility)
        if spec is None:
            return self._generic(name, utility, args, slot)
        if spec.old_style_bundle and args and args[0].literal and re.fullmatch(r"[A-Za-z]+", args[0].literal):
            args = [_literal_arg("-" + args[0].literal), *args[1:]]
        options, positionals, tail = parse_options(spec, args)
        self.shapes.insert(slot, CommandShape(utility, frozenset(flag for flag, _ in options)))
        parts = [name.text]
        for flag, value in options:
            parts.append(flag if value is None else f"{flag} {self._show(value, utility)}")
        parts.extend(self._show(arg, utility) for arg in positionals)
        if tail:
            parts.append(self.simple(tail[0], tail[1:], slot + 1))
        return " ".join(parts)

    def _generic(self, name: Arg, utility: str, args: list[Arg], slot: int) -> str:
        """Render a command whose options are not known: words in order, quotes normalised."""
        flags = frozenset(
            arg.literal for arg in args
            if arg.literal and arg.literal.startswith("-") and arg.literal != "--" and not NUMBER.match(arg.literal)
            and len(arg.literal) > 1
        )
        self.shapes.insert(slot, CommandShape(utility, flags))
        parts = [name.text]
        for position, arg in enumerate(args):
            keep = arg.literal is not None and (arg.literal in flags or (position == 0 and utility in SUBCOMMAND_UTILITIES))
            parts.append(arg.text if keep else self._show(arg, utility))
        return " ".join(parts)

    def _show(self, arg: Arg, utility: str) -> str:
        """Return an argument's rendering, or its type when rendering a template."""
        if not self.template or arg.kind == "Command":
            return arg.text
        if arg.literal is not None:
            return argument_type(arg.literal, utility)
        return arg.kind


def parse_options(spec: UtilitySpec, args: list[Arg]) -> tuple[list[tuple[str, Arg | None]], list[Arg], list[Arg]]:
    """Split arguments into sorted options, positionals and (for wrappers) the wrapped command."""
    options: list[tuple[str, Arg | None]] = []
    positionals: list[Arg] = []
    index = 0
    end_of_options = False
    while index < len(args):
        arg = args[index]
        value = arg.literal
        index += 1
        if end_of_options or value is None or value == "-" or not value.startswith("-"):
            if spec.wrapper and len(positionals) >= spec.leading_positionals:
                return _sorted(options), positionals, args[index - 1:]
            positionals.append(arg)
            continue
        if value == "--":
            end_of_options = True
            continue
        if value.startswith("--"):
            index = _long_option(spec, value, args, index, options)
        else:
            index = _short_cluster(spec, value, args, index, options)
    return _sorted(options), positionals, []


def _long_option(spec: UtilitySpec, value: str, args: list[Arg], index: int, options: list) -> int:
    """Record one `--name[=value]` option; return the index of the next unread argument."""
    name, has_value, inline = value[2:].partition("=")
    short = spec.aliases.get(name)
    if short is None or len(short) != 1:
        options.append((f"--{name}", _literal_arg(inline) if has_value else None))
        return index
    if short in spec.arg_flags and not has_value and index < len(args):
        options.append((f"-{short}", args[index]))
        return index + 1
    options.append((f"-{short}", _literal_arg(inline) if has_value else None))
    return index


def _short_cluster(spec: UtilitySpec, value: str, args: list[Arg], index: int, options: list) -> int:
    """Record the flags of one `-abc` cluster; return the index of the next unread argument."""
    body = value[1:]
    if spec.numeric_flag and body.isdigit():
        options.append((f"-{spec.numeric_flag}", _literal_arg(body)))
        return index
    parsed: list[tuple[str, Arg | None]] = []
    for position, char in enumerate(body):
        char = spec.aliases.get(char, char)
        if not spec.known(char):
            options.append((value, None))
            return index
        rest = body[position + 1:]
        if char in spec.arg_flags:
            if rest:
                parsed.append((f"-{char}", _literal_arg(rest)))
            elif index < len(args):
                parsed.append((f"-{char}", args[index]))
                index += 1
            else:
                parsed.append((f"-{char}", None))
            break
        if char in spec.optional_arg_flags:
            parsed.append((f"-{char}", _literal_arg(rest) if rest else None))
            break
        parsed.append((f"-{char}", None))
    options.extend(parsed)
    return index


def _sorted(options: list[tuple[str, Arg | None]]) -> list[tuple[str, Arg | None]]:
    """Sort options by flag (stable, so repeated valued flags keep their order); drop repeats."""
    unique: list[tuple[str, Arg | None]] = []
    for flag, value in options:
        if value is None and (flag, None) in unique:
            continue
        unique.append((flag, value))
    return sorted(unique, key=lambda option: option[0])


@lru_cache(maxsize=65536)
def canonicalize(command: str) -> Canonical | None:
    """Return the canonical form of a command, or None if it does not parse as Bash."""
    root = parse(command)
    if root is None:
        return None
    walker = _Walker(template=False)
    text = walker.render(root)
    template_walker = _Walker(template=True)
    template = template_walker.render(root)
    return Canonical(text=text, template=template, shapes=tuple(walker.shapes), has_comment=walker.has_comment)


def equivalent(first: str, second: str) -> bool:
    """Tell whether two commands have the same canonical form (whitespace-only match if unparsable)."""
    left, right = canonicalize(first), canonicalize(second)
    if left is None or right is None:
        return " ".join(first.split()) == " ".join(second.split())
    return left.text == right.text
