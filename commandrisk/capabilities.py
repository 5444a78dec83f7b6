"""Allow only what is understood: judge every command by what the catalogue says it does.

A command is understood when its program is catalogued (or is a function the same script defines), its
options and subcommand are known, and every path it writes or deletes lies in the workspace or a temp
directory. Everything else asks (warn), naming the capability or gap; programs run from temp directories
or just written by the same command line are blocked.
"""

from __future__ import annotations

import fnmatch
import posixpath
import shlex
from collections.abc import Iterator
from dataclasses import replace

from commandrisk import code, environment
from commandrisk.catalogue import Capability, Utility, catalogue
from commandrisk.hits import Hit
from commandrisk.invocation import Invocation, Value, read_invocation
from commandrisk.models import TECHNIQUES, Category, Verdict
from commandrisk.paths import DYN, GLOB_CHARS, Location, Place
from commandrisk.policy import Policy
from commandrisk.rules.base import writes
from commandrisk.sensitive import worst_matches
from commandrisk.walker import SYSTEM_BIN_DIRS, Scan, SimpleCommand

WARN, BLOCK = Verdict.WARN, Verdict.BLOCK
SAFE_TARGET_KINDS = frozenset({"workspace", "scratch"})
CAPABILITY_CATEGORY: dict[str, tuple[Category, str, str]] = {
    "package_install": (Category.PACKAGE_INSTALL, "T1195.002", "installs packages from the network"),
    "privilege": (Category.PRIVILEGE_ESCALATION, "T1548", "runs with raised privileges"),
    "system": (Category.SYSTEM_TAMPERING, "T1565", "changes the system configuration or its disks"),
    "vcs_remote": (Category.CREDENTIAL_ACCESS, "T1567", "changes where the repository sends its code"),
    "vcs_push": (Category.CREDENTIAL_ACCESS, "T1567", "pushes code to a remote"),
    "shell": (Category.UNTRUSTED_EXECUTION, "T1059", "runs a command given in an option"),
    "scheduler": (Category.PERSISTENCE, "T1053", "schedules commands to run later"),
    "name_resolution": (Category.DEFENSE_EVASION, "T1574", "changes which program a name runs"),
    "tunnel": (Category.CREDENTIAL_ACCESS, "T1572", "opens a network tunnel or proxy to another machine"),
    "recon": (Category.CREDENTIAL_ACCESS, "T1046", "scans networks or hosts"),
}
MAX_VARIANTS = 24


def judge(scan: Scan, policy: Policy) -> list[tuple[SimpleCommand | None, Hit]]:
    """Capability findings for every command of the scan."""
    functions = {c.function for c in scan.commands if c.function}
    prepared: set[str] = set()
    found: list[tuple[SimpleCommand | None, Hit]] = []
    for cmd in scan.commands:
        found.extend((cmd, h) for h in _command(cmd, scan, policy, functions, prepared))
        prepared.update(_prepared_paths(cmd, scan))
    return found


def _command(cmd: SimpleCommand, scan: Scan, policy: Policy, functions: set[str | None],
             prepared: set[str]) -> Iterator[Hit]:
    """Findings for one command: its program, wrappers, environment, redirections and invocation."""
    yield from _redirect_hits(cmd, scan)
    yield from _environment_hits(cmd, scan, policy)
    for layer in cmd.wrapper_argvs:
        yield from _wrapper_layer(cmd, layer, scan, policy, prepared)
    if not cmd.argv:
        return
    program = cmd.argv[0]
    if not program:
        return
    if DYN in program or any(c in GLOB_CHARS for c in program):
        yield from _dynamic_program(cmd, scan)
        return
    if "/" in program:
        utility = yield from _path_program(cmd, scan, policy, prepared)
        if utility is None:
            return
    elif program in functions:
        return
    else:
        utility = catalogue().get(program)
        if utility is None:
            yield _hit(cmd, Category.UNKNOWN_PROGRAM, "unknown.program", WARN, 45,
                       f"{program} is not in the utility catalogue, so what it does is unknown; if it is safe, "
                       f"allow it in a policy file (rules: allow: ['{program}'])")
            yield from _embedded_commands(cmd, scan)
            return
    yield from _invocation(cmd, utility, scan, policy, prepared)


def _wrapper_layer(cmd: SimpleCommand, layer: list[str], scan: Scan, policy: Policy,
                   prepared: set[str]) -> Iterator[Hit]:
    """A wrapper's own words (`sudo -u x`, `ssh -o ProxyCommand=... host`): its capability, options and values;
    the command or script it wraps is judged as a command of its own."""
    utility = catalogue().get(posixpath.basename(layer[0]))
    if utility is None:
        return
    inv = read_invocation(utility, layer[1:], posixpath.basename(layer[0]))
    yield from _capability_hits(cmd, inv.capabilities, policy, inv.name)
    for value in inv.values:
        if value.role not in ("exec", "argv"):
            yield from _value_hits(cmd, inv, value, scan, policy, prepared)


def _hit(cmd: SimpleCommand, category: Category, rule_id: str, verdict: Verdict, risk: int, message: str,
         technique: str | None = None) -> Hit:
    return Hit(category, rule_id, verdict, risk, message, cmd.snippet, cmd.span, technique or TECHNIQUES[category])


def _capability_hits(cmd: SimpleCommand, capabilities: set[Capability], policy: Policy, who: str) -> Iterator[Hit]:
    """One finding per capability the policy does not allow."""
    for capability in sorted(capabilities):
        verdict = policy.capability_verdict(capability)
        if verdict == "allow":
            continue
        category, technique, phrase = CAPABILITY_CATEGORY.get(
            capability, (Category.POLICY, "T1059", f"has the capability {capability}"))
        yield _hit(cmd, category, f"capability.{capability}", Verdict(verdict), 50 if verdict == "warn" else 85,
                   f"{who} {phrase} (capability {capability}; set capabilities.{capability} in a policy file)",
                   technique)


def _path_program(cmd: SimpleCommand, scan: Scan, policy: Policy, prepared: set[str]):
    """A program named by a path: the system's utility, workspace code, or untrusted code."""
    program = cmd.argv[0]
    location = scan.frame.locate(program, cmd.cwd)
    place = scan.frame.place(program, cmd.cwd)
    shown = location.display() if location else program
    if location is not None and location.anchor == "/" and "/".join(location.parts[:-1]) in SYSTEM_BIN_DIRS:
        utility = catalogue().get(cmd.name)
        if utility is None:
            yield _hit(cmd, Category.UNKNOWN_PROGRAM, "unknown.program", WARN, 45,
                       f"{shown} is not in the utility catalogue, so what it does is unknown; if it is safe, "
                       f"allow it in a policy file (rules: allow: ['{cmd.name}'])")
        return utility
    yield from _untrusted_code(cmd, scan, policy, prepared, program, place, "runs the program")
    return None


def _untrusted_code(cmd: SimpleCommand, scan: Scan, policy: Policy, prepared: set[str], path: str, place: Place,
                    verb: str) -> Iterator[Hit]:
    """Code run from a file: allowed workspace entry points pass, temp and just-written files are blocked."""
    shown = place.location.display()
    if place.location.parts[:2] in (("dev", "fd"), ("proc", "self")) or shown == "/dev/stdin":
        yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "exec.generated_code", WARN, 55,
                   f"{verb} code that another command generates ({shown})")
    elif _key(place.location) in prepared:
        yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "exec.just_written", BLOCK, 85,
                   f"{verb} {shown}, which this command line just wrote or made executable")
    elif place.kind == "scratch":
        yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "exec.from_temp", BLOCK, 80,
                   f"{verb} {shown} from a temporary directory, where anyone can plant code")
    elif place.kind == "workspace":
        name = posixpath.basename(path)
        if name in catalogue().system_names:
            yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "exec.shadowed_utility", WARN, 55,
                       f"{verb} {shown} from the workspace; it is not the system's {name}")
        elif not policy.allows_workspace_program(_workspace_relative(place.location, scan)):
            yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "exec.workspace_code", WARN, 45,
                       f"{verb} {shown} from the workspace; allow it with workspace_programs in a policy file")
    else:
        yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "exec.outside_system", WARN, 55,
                   f"{verb} {shown}, which is neither a system program nor in the workspace")


def _workspace_relative(location: Location, scan: Scan) -> str:
    """`./scripts/x.sh` for a location inside the workspace."""
    parts = location.parts[len(scan.frame.workspace.parts):]
    return "./" + "/".join(parts)


def _key(location: Location | None) -> str:
    return location.display() if location is not None else ""


WRITERS = frozenset({"tee", "cp", "mv", "install", "ln", "rsync", "dd", "sed", "perl", "truncate", "chmod", "curl",
                     "wget"})


def _prepared_paths(cmd: SimpleCommand, scan: Scan) -> set[str]:
    """Files this command writes or makes executable (for `exec.just_written` later in the line)."""
    if not cmd.redirects and cmd.name not in WRITERS:
        return set()
    paths = {_key(scan.frame.locate(target, cmd.cwd)) for target, _ in writes(cmd) if DYN not in target}
    if cmd.name in ("chmod", "install") and cmd.argv:
        paths.update(_key(scan.frame.locate(a, cmd.cwd)) for a in cmd.args[1:] if not a.startswith("-"))
    if cmd.name in ("curl", "wget"):
        paths.update(_key(scan.frame.locate(a.rstrip("/").rsplit("/", 1)[-1], cmd.cwd))
                     for a in cmd.args if "://" in a)
    return paths


def _dynamic_program(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """A program name from a glob or an unresolved expansion: judged as the worst program it could be."""
    program = cmd.argv[0]
    yield _hit(cmd, Category.UNKNOWN_PROGRAM, "unknown.dynamic_program", WARN, 55,
               f"the program {program} is only known at run time (a glob or an unresolved expansion)")
    pattern = posixpath.basename(program).replace(DYN, "*")
    if not pattern.strip("*"):
        return
    names = [n for n in _rule_programs() if fnmatch.fnmatchcase(n, pattern)]
    for name in names[:MAX_VARIANTS]:
        variant = replace(cmd, argv=[name, *cmd.args], words=list(cmd.words))
        variant.name = name
        yield from _as_worst(cmd, _rule_hits(variant, scan), f"if it is {name}")


def _rule_programs() -> list[str]:
    """Programs the destructive-case rules know by name: the worst candidates for an unknown name."""
    from commandrisk.rules.base import BY_NAME

    return sorted(BY_NAME)


def _rule_hits(cmd: SimpleCommand, scan: Scan) -> list[Hit]:
    """The destructive-case rules' findings for a hypothetical command; a rule that cannot read its arguments
    has nothing to say about this hypothesis."""
    from commandrisk.rules.base import BY_NAME, EVERY

    found: list[Hit] = []
    for rule in [*BY_NAME.get(cmd.name, ()), *EVERY]:
        try:
            found.extend(rule(cmd, scan))
        except (IndexError, ValueError, KeyError):
            continue
    return found


def _as_worst(cmd: SimpleCommand, hits: list[Hit], condition: str) -> Iterator[Hit]:
    """Findings of a variant, re-pointed at the real command."""
    for h in hits:
        if h.verdict != Verdict.ALLOW:
            yield replace(h, rule_id=f"worst_case.{h.rule_id}", message=f"{h.message} ({condition})",
                          snippet=cmd.snippet, span=cmd.span)


def _embedded_commands(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """An unknown program may be a wrapper: judge the words after `--` or after a catalogued name as a command."""
    args = cmd.args
    for i, arg in enumerate(args):
        start = i + 1 if arg == "--" else i if catalogue().get(arg) is not None else None
        if start is None or start >= len(args):
            continue
        inner = args[start:]
        variant = replace(cmd, argv=list(inner), words=[None] * len(inner))
        variant.name = posixpath.basename(inner[0])
        hits = list(_as_worst(cmd, _rule_hits(variant, scan), f"if {cmd.name} runs `{' '.join(inner)}`"))
        if hits:
            yield from hits
            return


def _invocation(cmd: SimpleCommand, utility: Utility, scan: Scan, policy: Policy,
                prepared: set[str]) -> Iterator[Hit]:
    """Findings from what the catalogued program is told to do."""
    inv = read_invocation(utility, cmd.args, cmd.name)
    if inv.unknown_subcommand is not None:
        yield _hit(cmd, Category.UNKNOWN_PROGRAM, "unknown.subcommand", WARN, 45,
                   f"{inv.name} {inv.unknown_subcommand} is not a catalogued subcommand")
    unknown = [o for o in inv.unknown_options if o]
    if unknown and inv.behaviour.unknown_options == "warn" and not all(_harmless_unknown(inv, o) for o in unknown):
        yield _hit(cmd, Category.UNKNOWN_PROGRAM, "unknown.option", WARN, 40,
                   f"{inv.name} option {unknown[0]} is not in the catalogue, so its effect is unknown")
    yield from _capability_hits(cmd, inv.capabilities, policy, inv.name)
    for value in inv.values:
        yield from _value_hits(cmd, inv, value, scan, policy, prepared)
    if "interpreter" in inv.capabilities and not [v for v in inv.of_role("code", "script", "module", "exec")
                                                   if v.text not in ("-", "/dev/stdin")]:
        yield from _stdin_code(cmd, inv, scan, policy, prepared)
    yield from _glob_variants(cmd, inv, scan)


def _stdin_code(cmd: SimpleCommand, inv: Invocation, scan: Scan, policy: Policy,
                prepared: set[str]) -> Iterator[Hit]:
    """An interpreter with no program on its command line reads one: from a file (`< x.py`), a generated
    stream (`< <(...)`), a heredoc, a pipe, or, with nothing at all, the keyboard (an interactive shell)."""
    language = inv.utility.language or inv.name
    shell = language in code.SHELL_LANGUAGES
    redirect = next((r for r in cmd.redirects if r.op == "<"), None)
    if redirect is not None:
        generated = _generated_text(redirect.word)
        if generated is not None:
            yield from (_nested(cmd, generated, scan, policy, f"{inv.name} runs") if shell
                        else code.judge(generated, language, cmd, scan))
        place = scan.frame.place(redirect.target, cmd.cwd)
        yield from _untrusted_code(cmd, scan, policy, prepared, redirect.target, place, f"{inv.name} runs the script")
    elif cmd.stdin_text is not None:
        if not shell:
            yield from code.judge(cmd.stdin_text, language, cmd, scan)
    elif cmd.pipeline and cmd.stage:
        upstream = _static_upstream(cmd)
        if upstream is None:
            yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "exec.code_from_pipe", WARN, 55,
                       f"{inv.name} runs a program read from its standard input, produced by the command before it")
        elif not shell:
            yield from code.judge(upstream, language, cmd, scan)
    elif cmd.depth == 0 and not inv.flags & {"--version", "-V", "--help", "-h"}:
        yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "exec.interactive_shell", WARN, 50,
                   f"{inv.name} starts an interactive session, where anything can be run")


def _generated_text(word) -> str | None:
    """What `<(echo ...)` or `<(printf ...)` prints, when it is static."""
    from commandrisk import static

    if word is None or len(word.commands) != 1:
        return None
    inner = word.commands[0]
    output = static.run(inner.argv, None) if inner.name in ("echo", "printf") else None
    return output.text if output is not None else None


def _static_upstream(cmd: SimpleCommand) -> str | None:
    """The text the previous stage prints, when it only prints what the guard can read (echo, printf, heredoc)."""
    from commandrisk import static

    previous = cmd.pipeline[cmd.stage - 1] if cmd.pipeline else []
    if len(previous) != 1:
        return None
    source = previous[0]
    if source.name == "cat" and source.stdin_text is not None and not source.args:
        return source.stdin_text
    output = static.run(source.argv, None) if source.name in ("echo", "printf") else None
    return output.text if output is not None else None


def _harmless_unknown(inv: Invocation, option: str) -> bool:
    """Options every wrapper of a known program accepts: `--help`, `--version`."""
    return option in ("--help", "--version", "-h")


def _value_hits(cmd: SimpleCommand, inv: Invocation, value: Value, scan: Scan, policy: Policy,
                prepared: set[str]) -> Iterator[Hit]:
    """Findings for one operand or option value, by its role."""
    role = value.role
    if role == "workdir" and "edit" in inv.capabilities:
        role = "write"
    if role in ("write", "delete"):
        yield from _target_hits(cmd, inv, value.text, role, scan)
    elif role == "exec":
        yield from _nested(cmd, value.text, scan, policy, f"{inv.name} {value.option or ''} runs")
    elif role == "argv" and value is next(v for v in inv.values if v.role == "argv"):
        words = [v.text for v in inv.values if v.role == "argv"]
        if DYN in " ".join(words):
            yield _hit(cmd, Category.OBFUSCATION, "exec.dynamic_command", WARN, 55,
                       f"{inv.name} runs a command only known at run time")
        else:
            yield from _nested(cmd, shlex.join(words), scan, policy, f"{inv.name} runs")
    elif role == "script":
        if value.text not in ("-", "/dev/stdin"):
            place = scan.frame.place(value.text, cmd.cwd)
            yield from _untrusted_code(cmd, scan, policy, prepared, value.text, place, f"{inv.name} runs the script")
    elif role == "code":
        language = inv.behaviour.language or inv.utility.language or inv.name
        for h in code.judge(value.text, language, cmd, scan):
            yield h
    elif role == "config":
        yield from _config_hits(cmd, inv, value, scan, policy)
    elif role == "module":
        yield from _module_hits(cmd, inv, value, scan, policy, prepared)
    elif role in ("remote_path", "url") and "vcs_push" in inv.capabilities:
        yield from _push_target(cmd, inv, value, policy)


def _target_hits(cmd: SimpleCommand, inv: Invocation, target: str, role: str, scan: Scan) -> Iterator[Hit]:
    """Writes and deletes outside the workspace and temp directories ask, and so does deleting the workspace
    itself (everything in it, or its `.git` history)."""
    place = scan.frame.place(target, cmd.cwd)
    if place.kind == "workspace" and role == "delete":
        yield from _workspace_wipe(cmd, inv, place, scan)
        return
    if place.kind in SAFE_TARGET_KINDS or place.kind == "device":
        return
    verb = "deletes" if role == "delete" else "writes"
    yield _hit(cmd, Category.OUTSIDE_WORKSPACE, f"outside.{role}", WARN, 35,
               f"{inv.name} {verb} {_where(place, target)}, outside the workspace and temp directories")


def _where(place: Place, target: str) -> str:
    """How a target outside the workspace reads in a finding (a dynamic one says so)."""
    if place.dynamic and place.kind == "unknown":
        return f"{target.replace(DYN, '<dynamic>')} (a path only known at run time)"
    return place.describe()


def _workspace_wipe(cmd: SimpleCommand, inv: Invocation, place: Place, scan: Scan) -> Iterator[Hit]:
    """`rm -rf .`, `rm -rf *`, `rm -rf .git`, `find . -delete`: the whole project or its history."""
    if place.dynamic:
        return
    inside = place.location.parts[len(scan.frame.workspace.parts):]
    filtered = any(v.option for v in inv.values)
    if not inside or inside in (("*",), (".*",)):
        if not filtered:
            yield _hit(cmd, Category.DESTRUCTIVE_FS, "workspace.delete_all", WARN, 60,
                       f"{inv.name} deletes everything in the workspace", "T1485")
    elif inside[0] == ".git" and len(inside) <= 2 and not (len(inside) == 2 and inside[1] in ("index.lock",)):
        yield _hit(cmd, Category.DESTRUCTIVE_FS, "workspace.delete_history", WARN, 60,
                   f"{inv.name} deletes the repository's history ({place.location.display()})", "T1485")


def _redirect_hits(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """A redirection that writes outside the workspace asks."""
    for redirect in cmd.redirects:
        if not redirect.writes:
            continue
        place = scan.frame.place(redirect.target, cmd.cwd)
        if place.kind in SAFE_TARGET_KINDS or place.kind == "device":
            continue
        yield _hit(cmd, Category.OUTSIDE_WORKSPACE, "outside.redirect", WARN, 35,
                   f"redirects output into {_where(place, redirect.target)}, outside the workspace and temp "
                   "directories")


def _environment_hits(cmd: SimpleCommand, scan: Scan, policy: Policy) -> Iterator[Hit]:
    """Assignments before (or of) a command that change what runs: PATH, LD_PRELOAD, GIT_SSH_COMMAND, ..."""
    names = dict(cmd.assignments)
    if cmd.name == "export" or cmd.name in ("declare", "typeset", "local", "readonly"):
        for arg in cmd.args:
            if "=" in arg and not arg.startswith("-"):
                key, _, val = arg.partition("=")
                names[key] = val
    for name, value in names.items():
        role = environment.role(name)
        if role == "path":
            yield from _path_variable(cmd, name, value, scan)
        elif role == "exec":
            yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "env.code_variable", WARN, 55,
                       f"sets {name}, which makes programs run `{value.replace(DYN, '<dynamic>')}`", "T1574")
            yield from _nested(cmd, value, scan, policy, f"{name}=")
        elif role == "load":
            yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "env.load_variable", WARN, 60,
                       f"sets {name}, which loads code into the programs that run", "T1574.006")


def _path_variable(cmd: SimpleCommand, name: str, value: str, scan: Scan) -> Iterator[Hit]:
    """`PATH=.:$PATH`, `PATH=/tmp/x:$PATH`: a name would run code from the workspace or a temp directory."""
    default = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for entry in value.replace(DYN, "").split(":"):
        if not entry or entry in default.split(":"):
            continue
        place = scan.frame.place(entry, cmd.cwd)
        yield _hit(cmd, Category.DEFENSE_EVASION, "env.path_hijack", WARN, 55,
                   f"puts {place.location.display()} on {name}, so command names may run code from there", "T1574.007")
        return


def _nested(cmd: SimpleCommand, text: str, scan: Scan, policy: Policy, who: str) -> Iterator[Hit]:
    """Judge a command string an option runs, as if it were typed; its findings point at `cmd`."""
    from commandrisk.rules import evaluate
    from commandrisk.walker import scan_source

    if not text.strip() or cmd.depth >= 4:
        return
    if DYN in text:
        yield _hit(cmd, Category.OBFUSCATION, "exec.dynamic_command", WARN, 55,
                   f"{who} a command only known at run time")
        return
    inner = scan_source(text, scan.frame, cmd.depth + 1)
    hits = [h for _, h in evaluate(inner)] + [h for _, h in judge(inner, policy)]
    for h in hits:
        if h.verdict != Verdict.ALLOW:
            yield replace(h, message=f"{who} `{text.strip()[:60]}`, which {h.message}", snippet=cmd.snippet,
                          span=cmd.span)


def _config_hits(cmd: SimpleCommand, inv: Invocation, value: Value, scan: Scan, policy: Policy) -> Iterator[Hit]:
    """`git -c core.editor=CMD`, `ssh -o ProxyCommand=CMD`: settings whose value is code."""
    key, sep, setting = value.text.partition("=")
    if not sep:
        later = [v for v in inv.values if v.index > value.index and v.role == "data" and v.option is None]
        setting = later[0].text if later else ""
    keys = [k for b in inv.chain for k in b.config_code_keys]
    if not any(fnmatch.fnmatch(key.lower(), k.lower()) for k in keys):
        return
    yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "exec.config_code", WARN, 60,
               f"{inv.name} setting {key} runs code (`{setting.replace(DYN, '<dynamic>')[:60]}`)")
    yield from _nested(cmd, setting.lstrip("!"), scan, policy, f"{inv.name} setting {key} runs")


def _module_hits(cmd: SimpleCommand, inv: Invocation, value: Value, scan: Scan, policy: Policy,
                 prepared: set[str]) -> Iterator[Hit]:
    """`python -m pip install x` is judged as `pip install x`; an uncatalogued module asks."""
    module = value.text
    rest = cmd.args[value.index + 1:]
    variant = replace(cmd, argv=[module, *rest], words=[None] * (len(rest) + 1))
    variant.name = module
    behaviour = next((b.modules[module] for b in reversed(inv.chain) if module in b.modules), None)
    if behaviour is not None:
        yield from _invocation(variant, Utility(names=[f"{inv.name} -m {module}"], **behaviour.model_dump()),
                               scan, policy, prepared)
        return
    utility = catalogue().get(module)
    if utility is None:
        yield _hit(cmd, Category.UNKNOWN_PROGRAM, "unknown.module", WARN, 45,
                   f"{inv.name} -m {module}: the module is not in the utility catalogue")
        return
    yield from _invocation(variant, utility, scan, policy, prepared)


def _push_target(cmd: SimpleCommand, inv: Invocation, value: Value, policy: Policy) -> Iterator[Hit]:
    """`git push URL` or to a remote the policy does not name asks."""
    first = next((v for v in inv.values if v.role in ("remote_path", "url")), None)
    if first is not value:
        return
    if value.text in policy.git_remotes:
        return
    yield _hit(cmd, Category.CREDENTIAL_ACCESS, "vcs.push_unknown_remote", WARN, 55,
               f"{inv.name} sends code to {value.text}, which is not a configured remote "
               f"(git_remotes: {', '.join(policy.git_remotes) or 'none'})", "T1567")


def _glob_variants(cmd: SimpleCommand, inv: Invocation, scan: Scan) -> Iterator[Hit]:
    """A glob operand is judged as the worst sensitive path it could match (`cat /e?c/pass*`)."""
    if not any(DYN in a or "*" in a or "?" in a or "[" in a for a in cmd.argv[1:]):
        return
    for i, word in enumerate(cmd.argv[1:], start=1):
        if not any(c in GLOB_CHARS for c in word):
            source = cmd.words[i] if i < len(cmd.words) else None
            if source is None or not source.dynamic:
                continue
        quoted = cmd.words[i].quoted if i < len(cmd.words) and cmd.words[i] is not None else False
        if quoted and DYN not in word:
            continue
        for candidate in worst_matches(word.replace(DYN, "*"), scan.frame, cmd.cwd)[:MAX_VARIANTS]:
            argv = list(cmd.argv)
            argv[i] = candidate
            variant = replace(cmd, argv=argv, words=[None] * len(argv))
            variant.name = cmd.name
            hits = list(_as_worst(cmd, _rule_hits(variant, scan), f"{word.replace(DYN, '<dynamic>')} "
                                                                   f"can match {candidate}"))
            if hits:
                yield from hits
                return
