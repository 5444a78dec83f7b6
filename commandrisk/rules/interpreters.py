"""Look inside one-liners (`python -c`, `perl -e`, `node -e`, `ruby -e`, `php -r`, `awk`) for shell-outs,
sockets, downloads, deletions and fork loops."""

from __future__ import annotations

import re
from collections.abc import Iterator

from commandrisk.hits import Hit
from commandrisk.models import Category
from commandrisk.rules.base import BLOCK, INTERPRETERS, WARN, every, hit, interpreter_family, nested_hits, on, place
from commandrisk.walker import Scan, SimpleCommand

CODE_FLAGS = {"python": ("-c",), "perl": ("-e", "-E"), "ruby": ("-e",), "node": ("-e", "--eval", "-p", "--print"),
              "php": ("-r",), "lua": ("-e",)}
_STRING = r"""(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')"""
SHELL_OUT = re.compile(
    r"(?:os\.system|os\.popen|subprocess\.\w+|commands\.getoutput|pty\.spawn|\bsystem|\bexec|\bexecSync|"
    r"\bspawnSync|\bspawn|shell_exec|passthru|popen|proc_open|IO\.popen|Kernel\.system|%x)\s*\(?\s*\[?\s*" + _STRING
)
BACKTICKS = re.compile(r"`([^`]+)`")
SOCKET = re.compile(r"socket\.socket|\bsocket\(|fsockopen|TCPSocket|IO::Socket|Socket::|net\.(connect|Socket)|"
                    r"new\s+net\.Socket|require\(['\"]net['\"]\)|socket\.create_connection")
SPAWN = re.compile(r"dup2|pty\.spawn|/bin/(ba)?sh|\bsh\s+-i|subprocess|exec\s*\(|child_process|spawn\(|"
                   r"\bsystem\s*\(|proc_open|popen")
FETCH = re.compile(r"urllib|urlopen|requests\.(get|post)|http\.client|httplib|LWP::|HTTP::Tiny|open-uri|Net::HTTP|"
                   r"\bfetch\(|https?\.get\(|file_get_contents\(\s*['\"]https?://|curl_exec")
RUN_CODE = re.compile(r"\bexec\s*\(|\beval\s*\(|compile\(|Function\(|instance_eval|\beval\b")
DECODE = re.compile(r"b64decode|base64|decode\(['\"]hex|fromhex|unhexlify|codecs\.decode|atob\(|Buffer\.from\(|"
                    r"unpack\(|MIME::Base64|decode_base64|str_rot13|zlib\.decompress|gzinflate")
DELETE_CALL = re.compile(
    r"(?:shutil\.rmtree|os\.remove|os\.unlink|os\.rmdir|os\.removedirs|Path\([^)]*\)\.unlink|rmtree|unlink|"
    r"FileUtils\.rm_r?f?|FileUtils\.remove_dir|fs\.rmSync|fs\.rmdirSync|fs\.unlinkSync|fs\.rm|File\.delete|"
    r"rimraf)\s*\(\s*" + _STRING
)
FORK_LOOP = re.compile(r"(while\s*(True|1|\(1\)|:)?.{0,40}os\.fork|fork\s+while\s+fork|fork\s*\(\)\s*while|"
                       r"loop\s*\{\s*fork|while\s*\(\s*(1|true)\s*\)\s*\{?\s*(pcntl_)?fork|for\s*\(;;\)\s*fork)", re.S)


def code_of(cmd: SimpleCommand) -> str | None:
    """The inline program passed to an interpreter, if any."""
    family = interpreter_family(cmd.name)
    if family is None:
        return None
    flags = CODE_FLAGS.get(family, ())
    args = cmd.args
    for i, arg in enumerate(args):
        if arg in flags and i + 1 < len(args):
            return args[i + 1]
        if family == "perl" and re.fullmatch(r"-[a-zA-Z]*[eE]", arg) and i + 1 < len(args):
            return args[i + 1]
        if family == "ruby" and arg.startswith("-r") and "socket" in arg:
            continue
    return None


def _strings(match: re.Match[str]) -> str:
    return match.group(1) if match.group(1) is not None else match.group(2)


def judge_code(code: str, cmd: SimpleCommand, scan: Scan, language: str) -> Iterator[Hit]:
    """Findings for a program text in `language`."""
    if SOCKET.search(code) and SPAWN.search(code) or re.search(r"/inet/tcp/", code):
        yield hit(cmd, Category.REVERSE_SHELL, f"revshell.{language}_socket", BLOCK, 100,
                  f"{language} code connects a shell to a socket", "T1059.006" if language == "python" else "T1059")
        return
    if FORK_LOOP.search(code):
        yield hit(cmd, Category.DENIAL_OF_SERVICE, f"dos.{language}_fork_loop", BLOCK, 100,
                  f"{language} code forks without end", "T1499")
        return
    if FETCH.search(code) and RUN_CODE.search(code):
        yield hit(cmd, Category.REMOTE_CODE_EXECUTION, f"rce.{language}_fetch_exec", BLOCK, 95,
                  f"{language} code downloads and runs code", "T1105")
        return
    if DECODE.search(code) and RUN_CODE.search(code):
        yield hit(cmd, Category.OBFUSCATION, f"obfuscation.{language}_decode_exec", BLOCK, 90,
                  f"{language} code decodes and runs hidden code", "T1140")
        return
    for match in SHELL_OUT.finditer(code):
        inner = nested_hits(_strings(match).replace("\\\"", "\"").replace("\\'", "'"), cmd, scan)
        if inner:
            worst = max(inner, key=lambda h: h.verdict.severity)
            yield hit(cmd, worst.category, f"{language}.shell_out", worst.verdict, worst.risk,
                      f"{language} code runs a shell command that {worst.message}", worst.technique)
            return
    for match in BACKTICKS.finditer(code) if language in ("perl", "ruby", "php") else ():
        inner = nested_hits(match.group(1), cmd, scan)
        if inner:
            worst = max(inner, key=lambda h: h.verdict.severity)
            yield hit(cmd, worst.category, f"{language}.shell_out", worst.verdict, worst.risk,
                      f"{language} code runs a shell command that {worst.message}", worst.technique)
            return
    for match in DELETE_CALL.finditer(code):
        target = _strings(match)
        p = place(cmd, scan, target)
        if p.critical:
            yield hit(cmd, Category.DESTRUCTIVE_FS, f"fs.{language}_delete_{p.kind}", BLOCK, 95,
                      f"{language} code deletes {p.describe()}", "T1485")
            return
    if SOCKET.search(code) and FETCH.search(code) is None and language != "awk":
        yield hit(cmd, Category.REVERSE_SHELL, f"net.{language}_socket", WARN, 40, f"{language} code opens a socket",
                  "T1095")


@every
def one_liners(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`python -c`, `perl -e`, `ruby -e`, `node -e`, `php -r` programs."""
    if cmd.name not in INTERPRETERS and interpreter_family(cmd.name) is None:
        return
    code = code_of(cmd)
    if code is None and interpreter_family(cmd.name) == "ruby" and any("socket" in a for a in cmd.args):
        code = " ".join(cmd.args)
    if code:
        yield from judge_code(code, cmd, scan, interpreter_family(cmd.name) or cmd.name)


@on("awk", "gawk", "mawk", "nawk", "busybox")
def awk(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """`awk 'BEGIN {system("rm -rf /")}'` and gawk's `/inet/tcp` sockets."""
    program = next((a for a in cmd.args if not a.startswith("-") and ("{" in a or "system" in a)), None)
    if program is None:
        return
    if "/inet/tcp/" in program or "/inet/udp/" in program:
        yield hit(cmd, Category.REVERSE_SHELL, "revshell.awk_inet", BLOCK, 100, "awk connects a shell to a socket",
                  "T1059.004")
        return
    for match in re.finditer(r"system\s*\(\s*" + _STRING, program):
        inner = nested_hits(_strings(match), cmd, scan)
        if inner:
            worst = max(inner, key=lambda h: h.verdict.severity)
            yield hit(cmd, worst.category, "awk.shell_out", worst.verdict, worst.risk,
                      f"awk runs a shell command that {worst.message}", worst.technique)
            return
    if re.search(r"\|\s*\"(ba)?sh\"", program) or re.search(r"print\s*\|\s*\"sh\"", program):
        yield hit(cmd, Category.OBFUSCATION, "awk.pipe_to_shell", WARN, 50, "awk pipes generated text into a shell",
                  "T1059.004")


@on("tar", "zip", "rsync", "git", "vim", "vi", "less", "more", "man")
def exec_options(cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Options that run commands: `tar --checkpoint-action=exec=...`, `zip -TT`, `rsync -e`, `vim -c '!...'`."""
    scripts: list[str] = []
    for i, arg in enumerate(cmd.args):
        if arg.startswith("--checkpoint-action=exec=") or arg.startswith("--to-command="):
            scripts.append(arg.split("=", 2)[-1] if "exec=" in arg else arg.split("=", 1)[1])
        elif cmd.name == "zip" and arg in ("-TT", "--unzip-command") and i + 1 < len(cmd.args):
            scripts.append(cmd.args[i + 1])
        elif cmd.name in ("vim", "vi") and arg in ("-c", "+") and i + 1 < len(cmd.args) and cmd.args[i + 1].startswith(("!", ":!")):
            scripts.append(cmd.args[i + 1].lstrip(":!"))
        elif cmd.name in ("less", "more", "man") and arg.startswith("+") and "!" in arg:
            scripts.append(arg.split("!", 1)[1])
    for script in scripts:
        inner = nested_hits(script, cmd, scan)
        worst = max(inner, key=lambda h: h.verdict.severity) if inner else None
        if worst:
            yield hit(cmd, worst.category, f"{cmd.name}.exec_option", worst.verdict, worst.risk,
                      f"{cmd.name} runs a command that {worst.message}", worst.technique)
        else:
            yield hit(cmd, Category.PRIVILEGE_ESCALATION, f"{cmd.name}.exec_option", WARN, 45,
                      f"{cmd.name} is told to run {script!r}", "T1059.004")
