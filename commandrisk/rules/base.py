"""Rule registry and the helpers rules share: flags, positionals, places, writes, data flow."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from commandrisk.hits import Hit
from commandrisk.models import Category, Verdict
from commandrisk.paths import DYN, Place
from commandrisk.walker import Scan, SimpleCommand

Rule = Callable[[SimpleCommand, Scan], Iterable[Hit]]
BY_NAME: dict[str, list[Rule]] = defaultdict(list)
EVERY: list[Rule] = []
WHOLE: list[Callable[[Scan], Iterable[Hit]]] = []

BLOCK, WARN = Verdict.BLOCK, Verdict.WARN
INTERPRETERS = frozenset(
    "python python2 python3 perl ruby node nodejs php lua luajit tclsh Rscript pwsh deno bun".split()
)
DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c", "lwp-download", "lwp-request", "http", "https",
                         "xh", "curlie", "wget2", "GET"})
NETWORK_SINKS = frozenset({"curl", "wget", "nc", "ncat", "netcat", "nc.traditional", "nc.openbsd", "socat", "telnet",
                           "ssh", "scp", "sftp", "ftp", "tftp", "mail", "mailx", "sendmail", "mutt", "rsync",
                           "openssl", "http", "https", "xh", "aws", "gsutil", "rclone", "smbclient", "s3cmd"})


def on(*names: str) -> Callable[[Rule], Rule]:
    """Register a rule for commands with these names."""

    def register(rule: Rule) -> Rule:
        for name in names:
            BY_NAME[name].append(rule)
        return rule

    return register


def every(rule: Rule) -> Rule:
    """Register a rule run on every command."""
    EVERY.append(rule)
    return rule


def whole(rule: Callable[[Scan], Iterable[Hit]]) -> Callable[[Scan], Iterable[Hit]]:
    """Register a rule that looks at all commands of a scan together."""
    WHOLE.append(rule)
    return rule


def hit(cmd: SimpleCommand, category: Category, rule_id: str, verdict: Verdict, risk: int, message: str,
        technique: str | None = None) -> Hit:
    """Build a Hit located at `cmd`."""
    return Hit(category, rule_id, verdict, risk, message, cmd.snippet, cmd.span, technique)


@dataclass(frozen=True)
class Args:
    """A command's arguments split into short flag letters, long flags and positionals."""

    short: frozenset[str]
    long: frozenset[str]
    positionals: list[str]
    options: list[str]

    def has(self, letter: str = "", *longs: str) -> bool:
        """True if `-<letter>` (alone or combined) or any long flag is present."""
        return (bool(letter) and any(c in self.short for c in letter)) or any(
            name in self.long for name in longs
        )


def parse_args(args: list[str], valued: frozenset[str] = frozenset()) -> Args:
    """Split args; options in `valued` consume the next word."""
    short: set[str] = set()
    long: set[str] = set()
    positionals: list[str] = []
    options: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            positionals.extend(args[i + 1:])
            break
        if arg.startswith("--"):
            long.add(arg.split("=", 1)[0])
            options.append(arg)
            if arg in valued:
                i += 1
        elif arg.startswith("-") and len(arg) > 1 and DYN not in arg[:2]:
            short.update(arg[1:])
            options.append(arg)
            if arg in valued:
                i += 1
        else:
            positionals.append(arg)
        i += 1
    return Args(frozenset(short), frozenset(long), positionals, options)


def place(cmd: SimpleCommand, scan: Scan, text: str) -> Place:
    """Classify a path argument of `cmd`."""
    return scan.frame.place(text, cmd.cwd)



def interpreter_family(name: str) -> str | None:
    """Normalise `python3.11` -> `python`, `nodejs` -> `node`."""
    base = name.rstrip("0123456789.")
    if base in ("python", "perl", "ruby", "php", "lua", "luajit"):
        return "lua" if base == "luajit" else base
    if base in ("node", "nodejs", "deno", "bun"):
        return "node"
    return None


def writes(cmd: SimpleCommand) -> Iterator[tuple[str, str]]:
    """Files the command writes, with mode 'overwrite', 'append' or 'link'."""
    for redirect in cmd.redirects:
        if redirect.writes and not redirect.op.startswith("<") or redirect.op == "<>":
            yield redirect.target, "append" if ">>" in redirect.op else "overwrite"
    name, args = cmd.name, cmd.args
    if name == "tee":
        parsed = parse_args(args)
        mode = "append" if parsed.has("a", "--append") else "overwrite"
        for target in parsed.positionals:
            yield target, mode
    elif name in ("cp", "mv", "install", "ln", "rsync") and args:
        parsed = parse_args(args, frozenset({"-t", "--target-directory", "-S", "--suffix", "-m", "--mode", "-o",
                                             "-g", "--owner", "--group", "-e", "--exclude", "--include"}))
        target = next((o.split("=", 1)[1] for o in parsed.options if o.startswith("--target-directory=")), None)
        if target is None and "-t" in args and args.index("-t") + 1 < len(args):
            target = args[args.index("-t") + 1]
        if target is None and len(parsed.positionals) >= 2:
            target = parsed.positionals[-1]
        if target is not None:
            yield target, "link" if name == "ln" else "overwrite"
    elif name == "dd":
        for arg in args:
            if arg.startswith("of="):
                yield arg[3:], "overwrite"
    elif name in ("sed", "perl") and any(a.startswith("-i") or a.startswith("-pi") or a == "--in-place"
                                          for a in args):
        parsed = parse_args(args, frozenset({"-e", "-f", "--expression", "--file"}))
        files = parsed.positionals[1:] if not any(o in ("-e", "-f") for o in parsed.options) else parsed.positionals
        for target in files:
            yield target, "edit"
    elif name == "truncate":
        for target in parse_args(args, frozenset({"-s", "-r", "--size", "--reference"})).positionals:
            yield target, "overwrite"



def downloads(commands: Iterable[SimpleCommand]) -> bool:
    """True if any of the commands fetches from the network."""
    return any(c.name in DOWNLOADERS or (c.name in ("nc", "ncat", "netcat", "socat", "telnet")) for c in commands)


def static_text_into(cmd: SimpleCommand) -> list[str]:
    """Literal texts printed by `echo`/`printf` commands upstream of `cmd` (e.g. into `crontab -`)."""
    texts = []
    for source in cmd.upstream():
        if source.name in ("echo", "printf") and source.args:
            texts.append(" ".join(a for a in source.args if not a.startswith("-")))
        elif source.stdin_text is not None and source.name == "cat":
            texts.append(source.stdin_text)
    if cmd.stdin_text is not None:
        texts.append(cmd.stdin_text)
    return texts


def content_written(cmd: SimpleCommand) -> str | None:
    """The literal text a command writes through a redirect or tee, when known."""
    if cmd.name in ("echo", "printf") and cmd.args and not any(DYN in a for a in cmd.args):
        return " ".join(a for a in cmd.args if a not in ("-e", "-n", "-E"))
    if cmd.name == "cat" and cmd.stdin_text is not None:
        return cmd.stdin_text
    if cmd.name == "tee":
        texts = static_text_into(cmd)
        return "\n".join(texts) if texts else None
    return None


def nested_hits(text: str, cmd: SimpleCommand, scan: Scan) -> list[Hit]:
    """Judge `text` as a script run in the same frame (bounded by the caller's depth)."""
    from commandrisk.rules import evaluate_text

    if cmd.depth >= 4 or not text.strip():
        return []
    return evaluate_text(text, scan.frame, cmd.depth + 1)
