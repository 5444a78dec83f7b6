"""Unwrap commands that run other commands: sudo, env, nohup, timeout, xargs, ssh, watch, su -c, ..."""

from __future__ import annotations

from dataclasses import dataclass, field

from commandrisk.paths import DYN


@dataclass(frozen=True)
class Spec:
    """How a wrapper's own arguments look: options that take a value, leading positionals to skip."""

    valued: frozenset[str] = frozenset()
    positionals: int = 0
    script_flag: str | None = None
    joins_rest: bool = False


def _spec(valued: str = "", positionals: int = 0, script_flag: str | None = None, joins_rest: bool = False) -> Spec:
    return Spec(frozenset(valued.split()), positionals, script_flag, joins_rest)


WRAPPERS: dict[str, Spec] = {
    "sudo": _spec("-u -g -h -p -C -D -r -t -U -T --user --group --host --prompt --chdir --role --type "
                  "--other-user --close-from --command-timeout"),
    "doas": _spec("-u -C"),
    "pkexec": _spec("--user"),
    "env": _spec("-u --unset -C --chdir"),
    "nohup": _spec(),
    "setsid": _spec(),
    "time": _spec("-f -o --format --output"),
    "builtin": _spec(),
    "exec": _spec("-a"),
    "stdbuf": _spec("-i -o -e --input --output --error"),
    "nice": _spec("-n --adjustment"),
    "ionice": _spec("-c -n -p -P -u --class --classdata"),
    "chrt": _spec(positionals=1),
    "taskset": _spec("-c", positionals=1),
    "timeout": _spec("-s -k --signal --kill-after", positionals=1),
    "gtimeout": _spec("-s -k --signal --kill-after", positionals=1),
    "unbuffer": _spec(),
    "catchsegv": _spec(),
    "chroot": _spec("--userspec --groups", positionals=1),
    "flock": _spec("-w -E --timeout --conflict-exit-code", positionals=1, script_flag="-c"),
    "runuser": _spec("-u -g -G --user --group", script_flag="-c"),
    "su": _spec("-s -g -G --shell --group", script_flag="-c"),
    "sg": _spec(positionals=1, script_flag="-c"),
    "script": _spec("-t -T -I -O -B -E", script_flag="-c"),
    "xargs": _spec("-I -n -P -d -E -L -s -a --max-args --max-procs --delimiter --eof --max-lines "
                   "--max-chars --arg-file --replace"),
    "watch": _spec("-n -d --interval --differences -q --equexit", joins_rest=True),
    "ssh": _spec("-p -i -l -o -F -L -R -D -J -b -c -e -m -O -Q -S -W -w -E -B", positionals=1, joins_rest=True),
    "sshpass": _spec("-p -f -d -e -P"),
    "strace": _spec("-o -e -p -s -u -E -I -P -S -a -b -O -X"),
    "ltrace": _spec("-o -e -p -s -u -n"),
    "busybox": _spec(),
    "fakeroot": _spec(),
    "faketime": _spec(positionals=1),
    "firejail": _spec(),
    "torsocks": _spec(),
    "proxychains": _spec("-f"),
    "proxychains4": _spec("-f"),
    "unshare": _spec("-S -G --setuid --setgid --root --wd"),
    "command": _spec(),
    "caffeinate": _spec("-t -w"),
}
ROOT_WRAPPERS = frozenset({"sudo", "doas", "pkexec", "su", "runuser"})
SCRIPT_ONLY = frozenset({"su", "sg", "script"})


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
        spec = WRAPPERS.get(name)
        if spec is None or (name == "command" and _command_is_lookup(argv[start + 1:])):
            break
        result.wrappers.append(name)
        if name in SCRIPT_ONLY:
            _script_only(argv[start + 1:], spec, result)
            start = len(argv)
            break
        nxt, flags, script = _skip(argv, start + 1, spec, name)
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
        if spec.joins_rest:
            if nxt < len(argv):
                result.scripts.append(" ".join(argv[nxt:]))
            result.remote = result.remote or name == "ssh"
            start = len(argv)
            break
        if nxt >= len(argv):
            result.root_shell = name in ROOT_WRAPPERS and bool(flags & {"-s", "-i", "--shell", "--login"})
            result.wrappers.pop()
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
    result.root_shell = result.wrappers[-1] == "su" and (not users or users[0] == "root")


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
