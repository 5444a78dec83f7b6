"""Unwrap commands that run other commands: sudo, env, nohup, timeout, xargs, ssh, watch, su -c, ..."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from commandrisk.catalogue import catalogue
from commandrisk.paths import DYN


@dataclass(frozen=True)
class Spec:
    """How a wrapper's own arguments look: options that take a value, leading positionals to skip."""

    valued: frozenset[str] = frozenset()
    positionals: int = 0
    script_flag: str | None = None
    joins_rest: bool = False
    root: bool = False
    remote: bool = False
    script_only: bool = False


@lru_cache(maxsize=1)
def wrapper_specs() -> dict[str, Spec]:
    """How each catalogued wrapper's own words end (`commandrisk/catalogue/`, entries with a `wrapper:` block)."""
    specs = {}
    for name, utility in catalogue().wrappers().items():
        wrapper = utility.wrapper
        specs[name] = Spec(frozenset(utility.options), wrapper.positionals, wrapper.script_flag, wrapper.joins_rest,
                           wrapper.root, wrapper.remote, wrapper.script_only)
    return specs


@dataclass
class Unwrapped:
    """The command that really runs, the wrappers around it, and any text they run as a script."""

    argv: list[str]
    index: int = 0
    wrappers: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    remote: bool = False
    root_shell: bool = False
    xargs_slot: int | None = None
    layers: list[list[str]] = field(default_factory=list)


def basename(word: str) -> str:
    """Command name without directory: `/usr/bin/rm` -> `rm`."""
    return word.rsplit("/", 1)[-1]


def unwrap(argv: list[str], max_layers: int = 8) -> Unwrapped:
    """Peel wrappers off `argv`; `index` is where the real command starts."""
    result = Unwrapped(argv)
    start = 0
    for _ in range(max_layers):
        if start >= len(argv):
            break
        name = basename(argv[start])
        spec = wrapper_specs().get(name)
        if spec is None or (name == "command" and _command_is_lookup(argv[start + 1:])):
            break
        result.wrappers.append(name)
        if spec.script_only:
            result.layers.append(list(argv[start:]))
            _script_only(argv[start + 1:], spec, result)
            start = len(argv)
            break
        nxt, flags, script = _skip(argv, start + 1, spec, name)
        result.layers.append(list(argv[start:nxt]) if script is None else list(argv[start:]))
        if script is not None:
            result.scripts.append(script)
            start = len(argv)
            break
        if name == "xargs":
            inner = argv[nxt:] or ["echo"]
            replace = _xargs_replace(argv[start + 1: nxt])
            if replace:
                inner = [a.replace(replace, DYN) for a in inner]
                result.argv = argv[:nxt] + inner
            else:
                result.argv = argv[:nxt] + inner + [DYN]
                result.xargs_slot = len(result.argv) - 1
            argv = result.argv
            start = nxt
            continue
        if spec.joins_rest and not (name == "watch" and flags & {"-x", "--exec"}):
            if nxt < len(argv):
                result.scripts.append(" ".join(argv[nxt:]))
            result.remote = result.remote or spec.remote
            start = len(argv)
            break
        if nxt >= len(argv):
            result.root_shell = spec.root and bool(flags & {"-s", "-i", "--shell", "--login"})
            result.wrappers.pop()
            result.layers.pop()
            break
        start = nxt
    result.index = start
    return result


def _script_only(args: list[str], spec: Spec, result: Unwrapped) -> None:
    """`su [-] [user] [-c CMD]`, `sg group -c CMD`, `script -c CMD`: a script, or else an interactive shell."""
    for i, arg in enumerate(args[:-1]):
        if arg in (spec.script_flag, "--command"):
            result.scripts.append(args[i + 1])
            return
    users = [a for a in args if not a.startswith("-")]
    result.root_shell = spec.root and (not users or users[0] == "root")


def _command_is_lookup(args: list[str]) -> bool:
    """`command -v x` only looks a name up."""
    return bool(args) and args[0] in ("-v", "-V")


def _xargs_replace(options: list[str]) -> str | None:
    """The replacement string of `xargs -I R` / `-i` / `--replace`."""
    for i, opt in enumerate(options):
        if opt == "-I" and i + 1 < len(options):
            return options[i + 1]
        if opt.startswith("-I") and len(opt) > 2:
            return opt[2:]
        if opt in ("-i", "--replace"):
            return "{}"
        if opt.startswith("--replace="):
            return opt.split("=", 1)[1]
    return None


def _skip(argv: list[str], i: int, spec: Spec, name: str) -> tuple[int, set[str], str | None]:
    """Skip the wrapper's options and positionals; return next index, flags seen, and a `-c` script."""
    flags: set[str] = set()
    positionals = spec.positionals
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if name == "env" and "=" in arg and not arg.startswith("-"):
            i += 1
            continue
        if name == "env" and arg in ("-S", "--split-string") and i + 1 < len(argv):
            return len(argv), flags, " ".join(argv[i + 1:])
        if spec.script_flag and arg in (spec.script_flag, "--command") and i + 1 < len(argv):
            return len(argv), flags, argv[i + 1]
        if arg.startswith("-") and len(arg) > 1:
            key = arg.split("=", 1)[0]
            flags.add(key)
            if "=" not in arg and (key in spec.valued or (len(arg) == 2 and arg in spec.valued)):
                i += 2
            else:
                i += 1
            continue
        if positionals:
            positionals -= 1
            i += 1
            continue
        break
    return i, flags, None
