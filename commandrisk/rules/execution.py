"""Remote code execution (downloads run by an interpreter) and obfuscated execution."""

from __future__ import annotations

from collections.abc import Iterator

from commandrisk.hits import Hit
from commandrisk.models import Category
from commandrisk.paths import DYN
from commandrisk.rules.base import (
    BLOCK,
    DOWNLOADERS,
    INTERPRETERS,
    WARN,
    downloads,
    every,
    hit,
    on,
    parse_args,
    whole,
)
from commandrisk.walker import RISKY_TOKEN_RE, SAFE_EVAL_TOOLS, SHELLS, Scan, SimpleCommand, is_shell_reading_stdin

RCE, OBF = Category.REMOTE_CODE_EXECUTION, Category.OBFUSCATION
EXECUTORS = SHELLS | INTERPRETERS | {"eval", "source", ".", "exec", "xargs"}
STDIN_DECODERS = frozenset({"base64", "base32", "xxd", "rev", "uudecode", "openssl", "basenc", "gunzip", "zcat",
                            "bunzip2", "xz", "unxz", "tr"})


def _runs_stdin(cmd: SimpleCommand) -> bool:
    """A shell or interpreter that executes what arrives on stdin."""
    if is_shell_reading_stdin(cmd):
        return True
    if cmd.name in INTERPRETERS:
        positional = [a for a in cmd.args if not a.startswith("-")]
        flags = [a for a in cmd.args if a.startswith("-")]
        code_flags = ("-c", "-e", "-E", "-r", "-m", "-p", "--eval", "--print", "-n", "-l", "-a", "-i")
        return (not positional or positional[0] == "-") and not any(f.startswith(code_flags) for f in flags)
    return False


@every
def piped_into_interpreter(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`curl URL | sh`, `wget -O- URL | sudo bash`, `curl URL | base64 -d | python`."""
    if not cmd.pipeline or not cmd.stage or not _runs_stdin(cmd):
        return
    upstream = cmd.upstream()
    if downloads(upstream):
        yield hit(cmd, RCE, "rce.download_piped_to_interpreter", BLOCK, 95,
                  f"pipes a download straight into {cmd.name}", "T1105")
    elif any(c.name in STDIN_DECODERS for c in upstream):
        yield hit(cmd, OBF, "obfuscation.decoded_piped_to_interpreter", BLOCK, 90,
                  f"decodes text and runs it with {cmd.name}", "T1140")


@every
def substituted_download(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`bash -c "$(curl ...)"`, `bash <(wget -O- ...)`, `eval "$(curl ...)"`, `python -c "$(curl ...)"`."""
    if cmd.name not in EXECUTORS:
        return
    inner = cmd.word_commands()
    if not inner:
        return
    if downloads(inner):
        yield hit(cmd, RCE, "rce.download_substituted_into_interpreter", BLOCK, 95,
                  f"runs downloaded text with {cmd.name}", "T1105")
    elif any(c.name in STDIN_DECODERS or (c.name == "printf" and any("\\" in a for a in c.args)) for c in inner):
        yield hit(cmd, OBF, "obfuscation.decoded_substituted", BLOCK, 90, f"runs decoded text with {cmd.name}", "T1140")


@every
def computed_execution(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """A command whose text was produced by decoding (`$(echo ... | base64 -d)` in command position)."""
    if cmd.origin == "computed":
        yield hit(cmd, OBF, "obfuscation.decoded_command", BLOCK, 85, "runs text that was decoded at run time", "T1027")


@every
def dynamic_code(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`eval "$x"`, `bash -c "$cmd"`, `$CMD -rf /`: code only known at run time."""
    if cmd.name == "eval":
        inner = cmd.word_commands()
        if inner and all(c.name in SAFE_EVAL_TOOLS for c in inner):
            return
        if any(DYN in a for a in cmd.args):
            yield hit(cmd, OBF, "obfuscation.eval_dynamic", WARN, 55, "evaluates text only known at run time", "T1027")
    elif cmd.name in SHELLS:
        args = cmd.args
        for i, arg in enumerate(args[:-1]):
            if arg.startswith("-") and "c" in arg[1:] and not arg.startswith("--") and args[i + 1].startswith(DYN):
                if not cmd.word_commands():
                    yield hit(cmd, OBF, "obfuscation.shell_dynamic", WARN, 50,
                              f"{cmd.name} -c runs text only known at run time", "T1027")
                break
    elif cmd.argv and cmd.argv[0].startswith(DYN) and not (cmd.raw_name and cmd.raw_name.commands):
        rest = " ".join(cmd.args)
        if RISKY_TOKEN_RE.search(rest) or any(a in ("/", "/*", "~") or a.startswith("/dev/") for a in cmd.args):
            yield hit(cmd, Category.UNPARSED, "unresolved.command_name", WARN, 45,
                      "the command name is only known at run time and its arguments look risky")


@whole
def downloaded_then_run(scan: Scan) -> Iterator[Hit]:
    """`curl -o x.sh URL && bash x.sh`, `wget URL -O /tmp/p; chmod +x /tmp/p; /tmp/p`."""
    fetched: dict[str, SimpleCommand] = {}
    for cmd in scan.commands:
        if cmd.name in DOWNLOADERS:
            for path in _download_targets(cmd):
                fetched[path] = cmd
            continue
        if not fetched:
            continue
        name = cmd.argv[0] if cmd.argv else ""
        script = None
        if cmd.name in SHELLS | INTERPRETERS | {"source", "."}:
            positional = [a for a in cmd.args if not a.startswith("-")]
            script = positional[0] if positional else None
        for candidate in (name, script):
            if candidate and _strip_dot(candidate) in fetched:
                yield hit(cmd, RCE, "rce.download_then_execute", BLOCK, 90,
                          f"runs {candidate}, which this command line just downloaded", "T1105")
                return


def _strip_dot(path: str) -> str:
    return path[2:] if path.startswith("./") else path


def _download_targets(cmd: SimpleCommand) -> list[str]:
    """Files a curl/wget invocation writes."""
    args = cmd.args
    targets: list[str] = []
    urls = [a for a in args if "://" in a]
    for i, arg in enumerate(args):
        if arg in ("-o", "--output", "-O", "--output-document") and i + 1 < len(args) and not (
            cmd.name == "curl" and arg == "-O"
        ):
            targets.append(_strip_dot(args[i + 1]))
        elif arg.startswith("--output-document=") or arg.startswith("--output="):
            targets.append(_strip_dot(arg.split("=", 1)[1]))
    if (cmd.name == "wget" and not targets) or (cmd.name == "curl" and ("-O" in args or "--remote-name" in args)):
        targets.extend(u.rstrip("/").rsplit("/", 1)[-1] for u in urls)
    for redirect in cmd.redirects:
        if redirect.writes:
            targets.append(_strip_dot(redirect.target))
    return [t for t in targets if t and t != "-"]


@on("pip", "pip3")
def insecure_package_url(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`pip install http://...`: code fetched over plain HTTP and executed by setup."""
    if "install" in cmd.args:
        parsed = parse_args(cmd.args)
        if any(p.startswith(("http://", "git+http://")) for p in parsed.positionals):
            yield hit(cmd, RCE, "rce.pip_insecure_url", WARN, 40, "installs a package over plain HTTP", "T1195")
