"""Read one command's words against its catalogue entry: subcommands, options, and the role of every value."""

from __future__ import annotations

from dataclasses import dataclass, field

from commandrisk.catalogue import Behaviour, Capability, Option, Role, Utility

CODE_ROLES = frozenset({"code", "script", "module"})


@dataclass(frozen=True, slots=True)
class Value:
    """One operand or option value, with what it is to the program."""

    role: Role
    text: str
    index: int
    option: str | None = None


@dataclass(slots=True)
class Invocation:
    """What a catalogued command line asks its program to do."""

    utility: Utility
    chain: list[Behaviour]
    program: str = ""
    path: list[str] = field(default_factory=list)
    values: list[Value] = field(default_factory=list)
    capabilities: set[Capability] = field(default_factory=set)
    flags: set[str] = field(default_factory=set)
    unknown_options: list[str] = field(default_factory=list)
    unknown_subcommand: str | None = None
    passthrough: bool = False
    """An allowed free-form subcommand (a package script, a make target): its words are the script's own."""

    @property
    def behaviour(self) -> Behaviour:
        """The innermost subcommand's behaviour."""
        return self.chain[-1]

    @property
    def name(self) -> str:
        """`git push`, `docker compose up`: the program and its subcommands."""
        return " ".join([self.program or self.utility.names[0], *self.path])

    def of_role(self, *roles: Role) -> list[Value]:
        """Values with any of these roles."""
        return [v for v in self.values if v.role in roles]


def read_invocation(utility: Utility, args: list[str], program: str = "") -> Invocation:
    """Classify `args` (the words after the program name) by the utility's catalogue entry."""
    inv = Invocation(utility, [utility], program)
    operands: list[tuple[int, str]] = []
    i = 0
    ended = False
    while i < len(args):
        arg = args[i]
        if inv.passthrough:
            inv.values.extend(Value("data", a, k) for k, a in enumerate(args[i:], start=i))
            break
        if ended or arg == "-" or not _looks_like_option(arg):
            if not ended and not operands and _enter_subcommand(inv, arg):
                i += 1
                continue
            if not ended and inv.behaviour.end_of_options:
                ended = True
            operands.append((i, arg))
            i += 1
            continue
        if arg == "--":
            ended = True
            i += 1
            continue
        i = _read_option(inv, args, i)
    _assign_operands(inv, operands)
    inv.capabilities.add(inv.behaviour.capability)
    return inv


def _looks_like_option(arg: str) -> bool:
    """`-x`, `--long`, `-5`; not `-` alone."""
    return arg.startswith("-") and len(arg) > 1


def _enter_subcommand(inv: Invocation, word: str) -> bool:
    """Step into a subcommand; an unknown one is recorded (and ends subcommand lookup)."""
    subs = inv.behaviour.subcommands
    if not subs or inv.unknown_subcommand is not None:
        return False
    sub = subs.get(word)
    if sub is None:
        if inv.behaviour.unknown_subcommands == "warn":
            inv.unknown_subcommand = word
        else:
            inv.passthrough = True
        return False
    inv.chain.append(sub)
    inv.path.append(word)
    return True


def _lookup(inv: Invocation, name: str) -> tuple[Option | None, bool]:
    """The valued option or flag `name`, searched from the innermost subcommand out."""
    for behaviour in reversed(inv.chain):
        if name in behaviour.options:
            return behaviour.options[name], True
        if name in behaviour.flags or name in behaviour.flag_capabilities or name in behaviour.flag_roles:
            return None, True
    return None, False


def _read_option(inv: Invocation, args: list[str], i: int) -> int:
    """Read the option at `args[i]` (and its value); return the next index."""
    arg = args[i]
    if arg[1:].isdigit():
        inv.flags.add(arg)
        return i + 1
    name, eq, glued = arg.partition("=") if arg.startswith("--") else (arg, "", "")
    option, known = _lookup(inv, name)
    if known:
        return _take(inv, args, i, name, option, glued if eq else None)
    if "=" in arg and not arg.startswith("--"):
        name, _, glued = arg.partition("=")
        option, known = _lookup(inv, name)
        if known:
            return _take(inv, args, i, name, option, glued)
    if arg.startswith("--"):
        inv.unknown_options.append(name)
        return i + 1
    for j in range(1, len(arg)):
        short = "-" + arg[j]
        option, known = _lookup(inv, short)
        if not known:
            inv.unknown_options.append(arg)
            return i + 1
        if option is not None:
            rest = arg[j + 1:]
            return _take(inv, args, i, short, option, rest if rest else None)
        _flag(inv, short)
        if j + 1 < len(arg) and not arg[j + 1].isalpha():
            return i + 1
    return i + 1


def _take(inv: Invocation, args: list[str], i: int, name: str, option: Option | None, glued: str | None) -> int:
    """Record a flag, or an option with its value (glued on or in the next words)."""
    if option is None:
        _flag(inv, name)
        return i + 1
    if option.capability:
        inv.capabilities.add(option.capability)
    if glued is not None:
        inv.values.append(Value(option.role, glued, i, name))
        return _rest_is_data(inv, args, i + 1) if option.ends_options else i + 1
    if option.optional:
        return i + 1
    if option.until:
        j = i + 1
        while j < len(args) and args[j] not in option.until:
            inv.values.append(Value(option.role, args[j], j, name))
            j += 1
        return j + 1
    for k in range(option.nargs):
        if i + 1 + k < len(args):
            inv.values.append(Value(option.role if k == 0 else "data", args[i + 1 + k], i + 1 + k, name))
    return _rest_is_data(inv, args, i + 1 + option.nargs) if option.ends_options else i + 1 + option.nargs


def _rest_is_data(inv: Invocation, args: list[str], start: int) -> int:
    """After `python -c CODE` or `-m MODULE` every word belongs to the program run: data to the utility."""
    inv.values.extend(Value("data", args[k], k, None) for k in range(start, len(args)))
    return len(args)


def _flag(inv: Invocation, name: str) -> None:
    """Record a flag and what it changes."""
    inv.flags.add(name)
    for behaviour in inv.chain:
        if name in behaviour.flag_capabilities:
            inv.capabilities.add(behaviour.flag_capabilities[name])


def _assign_operands(inv: Invocation, operands: list[tuple[int, str]]) -> None:
    """Give each operand its role: in order, the last role repeating, `last_operand` for the final one."""
    behaviour = inv.behaviour
    roles = list(behaviour.operands)
    if any(v.role in CODE_ROLES for v in inv.values):
        while len(roles) > 1 and roles[0] in CODE_ROLES:
            roles.pop(0)
    renamed = {b.flag_roles[flag] for b in inv.chain if b.flag_roles for flag in inv.flags if flag in b.flag_roles}
    for position, (index, text) in enumerate(operands):
        role = roles[min(position, len(roles) - 1)]
        if behaviour.last_operand and len(operands) >= 2 and position == len(operands) - 1:
            role = behaviour.last_operand
        if role == "read" and renamed:
            role = sorted(renamed)[0]
        inv.values.append(Value(role, text, index))
        if role == "argv":
            inv.values.extend(Value("argv", t, k) for k, t in operands[position + 1:])
            return
