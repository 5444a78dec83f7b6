"""Judge inline programs by what they do: Python through `ast`, sed and awk scripts by their commands, and
other languages allowed only when every word is on the language's read-only list (`code_readonly.yaml`)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict

from commandrisk.catalogue import load_yaml
from commandrisk.hits import Hit
from commandrisk.models import TECHNIQUES, Category, Verdict
from commandrisk.paths import DYN
from commandrisk.walker import Scan, SimpleCommand

WARN, BLOCK = Verdict.WARN, Verdict.BLOCK
SHELL_LANGUAGES = frozenset({"sh", "bash", "zsh", "ksh", "csh", "tcsh", "fish", "shell"})
"""Shell code is walked as a nested script by the walker itself (`sh -c`, `eval`, heredocs)."""
LANGUAGE_ALIASES = {"python2": "python", "python3": "python", "nodejs": "node", "js": "node", "javascript": "node", "typescript": "node", "deno": "node",
                    "bun": "node", "gawk": "awk", "mawk": "awk", "nawk": "awk", "luajit": "lua"}


class ReadOnlyWords(BaseModel):
    """The data file's shape: per language, the words a provably read-only program may use, and per query
    language the statements that only read."""

    model_config = ConfigDict(extra="forbid")

    languages: dict[str, list[str]]
    statements: dict[str, list[str]]


@lru_cache(maxsize=1)
def _read_only_data() -> ReadOnlyWords:
    text = resources.files("commandrisk").joinpath("code_readonly.yaml").read_text(encoding="utf-8")
    return ReadOnlyWords.model_validate(load_yaml(text))


@lru_cache(maxsize=1)
def _read_only_words() -> dict[str, frozenset[str]]:
    return {lang: frozenset(words) for lang, words in _read_only_data().languages.items()}


@lru_cache(maxsize=1)
def _read_only_statements() -> dict[str, frozenset[str]]:
    return {lang: frozenset(w.lower() for w in words) for lang, words in _read_only_data().statements.items()}


def judge(text: str, language: str, cmd: SimpleCommand, scan: Scan) -> list[Hit]:
    """Findings for program `text` in `language`, pointed at `cmd`."""
    language = LANGUAGE_ALIASES.get(language, language)
    if language in SHELL_LANGUAGES:
        return []
    if DYN in text:
        return [_hit(cmd, Category.OBFUSCATION, "code.dynamic", WARN, 55,
                     f"runs {language} code that is only known at run time")]
    if language == "python":
        return list(_python(text, cmd, scan))
    if language == "sed":
        return list(_sed(text, cmd, scan))
    if language == "awk":
        return list(_awk(text, cmd, scan))
    if language in ("jq", "yq", "gojq", "jaq"):
        return list(_jq(text, cmd))
    if language in _read_only_statements():
        return list(_statements(text, language, cmd))
    return list(_read_only(text, language, cmd))


def _hit(cmd: SimpleCommand, category: Category, rule_id: str, verdict: Verdict, risk: int, message: str,
         technique: str | None = None) -> Hit:
    return Hit(category, rule_id, verdict, risk, message, cmd.snippet, cmd.span, technique or TECHNIQUES[category])


def _nested(text: str, cmd: SimpleCommand, scan: Scan, who: str) -> list[Hit]:
    """Judge a shell command that code runs; findings point at `cmd`."""
    from commandrisk.rules.base import nested_hits

    return [h for h in nested_hits(text, cmd, scan) if h.verdict != Verdict.ALLOW]


def _worst(hits: list[Hit], cmd: SimpleCommand, who: str) -> Iterator[Hit]:
    for h in hits:
        yield Hit(h.category, h.rule_id, h.verdict, h.risk, f"{who} runs a command that {h.message}", cmd.snippet,
                  cmd.span, h.technique)


SPAWN_CALLS = frozenset({"os.system", "os.popen", "subprocess.run", "subprocess.call", "subprocess.check_call",
                         "subprocess.check_output", "subprocess.Popen", "subprocess.getoutput",
                         "subprocess.getstatusoutput", "pty.spawn", "commands.getoutput", "os.execv", "os.execve",
                         "os.execl", "os.execlp", "os.execvp", "os.execvpe", "os.spawnl", "os.spawnv", "os.spawnlp",
                         "os.spawnvp", "os.posix_spawn", "os.posix_spawnp", "asyncio.create_subprocess_shell",
                         "asyncio.create_subprocess_exec"})
DELETE_CALLS = frozenset({"os.remove", "os.unlink", "os.rmdir", "os.removedirs", "shutil.rmtree", "os.truncate",
                          "pathlib.Path.unlink", "pathlib.Path.rmdir", "Path.unlink", "Path.rmdir"})
WRITE_CALLS = frozenset({"shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.copytree", "shutil.move",
                         "os.rename", "os.replace", "os.chmod", "os.chown", "os.symlink", "os.link", "os.mkdir",
                         "os.makedirs", "Path.write_text", "Path.write_bytes", "pathlib.Path.write_text",
                         "pathlib.Path.write_bytes", "Path.chmod", "Path.touch", "Path.mkdir", "Path.rename"})
NETWORK_MODULES = ("socket", "urllib", "requests", "http", "httpx", "ftplib", "smtplib", "telnetlib", "paramiko",
                   "aiohttp", "websocket", "xmlrpc", "ssl", "webbrowser", "dns")
DYNAMIC_CODE = frozenset({"eval", "exec", "compile", "__import__", "importlib.import_module", "getattr", "ctypes",
                          "marshal.loads", "pickle.loads", "os.fork", "os.kill", "signal.pthread_kill",
                          "sys.path.insert", "sys.path.append", "sys.path.extend", "site.addsitedir"})
DYNAMIC_MODULES = frozenset({"ctypes", "runpy", "importlib", "cffi", "marshal", "pickle", "code", "imp"})
"""Modules whose calls load or run code the text does not show (`ctypes.CDLL(...)`, `runpy.run_path`, `sys.path`)."""
DECODERS = ("base64", "codecs", "zlib", "binascii", "bytes.fromhex", "marshal")


class _Calls(ast.NodeVisitor):
    """Dotted names of every call and import in a Python program, with literal first arguments."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.calls: list[tuple[str, ast.Call]] = []
        self.imports: set[str] = set()
        self.loops_fork = False

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.imports.add(alias.name)
            self.aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        self.imports.add(module)
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"

    def visit_Call(self, node: ast.Call) -> None:
        name = self.dotted(node.func)
        if name:
            self.calls.append((name, node))
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:
        if any(isinstance(n, ast.Call) and self.dotted(n.func) == "os.fork" for n in ast.walk(node)):
            self.loops_fork = True
        self.generic_visit(node)

    visit_For = visit_While

    def dotted(self, node: ast.AST) -> str | None:
        """`os.path.join` for an attribute chain, with import aliases applied; `__import__('os').x` too."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else node.attr
        if isinstance(node, ast.Call):
            func = self.dotted(node.func)
            if func in ("__import__", "importlib.import_module") and node.args:
                return literal(node.args[0], self)
            if func and (func.endswith("Path") or func == "pathlib.Path"):
                return "Path"
        return None


def literal(node: ast.AST, calls: _Calls | None = None) -> str | None:
    """The string a node always evaluates to (constants, `os.path.expanduser('~/x')`, `+` and f-less joins)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = literal(node.left, calls), literal(node.right, calls)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.Call) and node.args and calls is not None:
        name = calls.dotted(node.func) or ""
        if name in ("os.path.expanduser", "os.path.abspath", "os.path.normpath", "str", "Path", "pathlib.Path",
                    "os.path.expandvars", "os.fspath"):
            return literal(node.args[0], calls)
        if name == "os.path.join":
            parts = [literal(a, calls) for a in node.args]
            return "/".join(p.rstrip("/") for p in parts) if all(p is not None for p in parts) else None
    if isinstance(node, ast.List | ast.Tuple):
        parts = [literal(e, calls) for e in node.elts]
        return " ".join(_quote(p) for p in parts) if all(p is not None for p in parts) else None
    return None


def _quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'" if re.search(r"[^\w@%+=:,./~-]", word) else word


def _python(text: str, cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """Judge a Python program by its calls."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        yield _hit(cmd, Category.UNPARSED, "python.unparsed", WARN, 50, "python code that does not parse")
        return
    calls = _Calls()
    calls.visit(tree)
    names = [name for name, _ in calls.calls]
    network = any(n.split(".")[0] in NETWORK_MODULES for n in names) or any(
        m.split(".")[0] in NETWORK_MODULES for m in calls.imports)
    spawns = [(n, c) for n, c in calls.calls if n in SPAWN_CALLS]
    decodes = any(any(n.startswith(d) for d in DECODERS) for n in names)
    runs_data = [n for n in names if n in ("eval", "exec", "compile")]
    if calls.loops_fork:
        yield _hit(cmd, Category.DENIAL_OF_SERVICE, "dos.python_fork_loop", BLOCK, 100, "python code forks in a loop")
        return
    if network and (spawns or runs_data or "pty.spawn" in names or any("dup2" in n for n in names)):
        yield _hit(cmd, Category.REVERSE_SHELL, "revshell.python_network_exec", BLOCK, 95,
                   "python code connects to the network and runs commands or code", "T1059.006")
        return
    if runs_data and decodes:
        yield _hit(cmd, Category.OBFUSCATION, "obfuscation.python_decode_exec", BLOCK, 90,
                   "python code decodes text and runs it", "T1140")
        return
    for name, call in spawns:
        shown = literal(call.args[0], calls) if call.args else None
        if shown is None:
            yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "python.spawn", WARN, 55,
                       f"python code runs a command ({name}) that is only known at run time", "T1059.006")
            continue
        inner = _nested(shown, cmd, scan, "python")
        yield from _worst(inner, cmd, f"python code ({name})")
        if not inner:
            yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "python.spawn", WARN, 40,
                       f"python code runs `{shown[:60]}` ({name})", "T1059.006")
    for name, call in calls.calls:
        if name in DELETE_CALLS or name in WRITE_CALLS or (name in ("open", "io.open", "builtins.open")
                                                            and _opens_for_writing(call)):
            yield from _python_path(cmd, scan, name, call, calls, "delete" if name in DELETE_CALLS else "write")
        elif name in ("open", "io.open", "Path.read_text", "Path.read_bytes") and call.args:
            yield from _python_read(cmd, scan, call, calls, network)
    if runs_data:
        yield _hit(cmd, Category.OBFUSCATION, "python.dynamic_code", WARN, 55,
                   f"python code runs code built at run time ({runs_data[0]})", "T1027")
    dynamic = sorted({n for n in names if (n in DYNAMIC_CODE or n.split(".")[0] in DYNAMIC_MODULES)
                      and n not in ("eval", "exec", "compile")})
    dynamic += sorted(m for m in calls.imports if m.split(".")[0] in DYNAMIC_MODULES and m not in dynamic)
    if dynamic:
        yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "python.dynamic_call", WARN, 50,
                   f"python code uses {dynamic[0]}, whose effect cannot be read from the text", "T1059.006")
    if network:
        yield _hit(cmd, Category.CREDENTIAL_ACCESS, "python.network", WARN, 45,
                   "python code opens network connections", "T1071")


def _opens_for_writing(call: ast.Call) -> bool:
    """`open(p, 'w')`, `open(p, mode='a')`: any mode that writes."""
    mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
    text = literal(mode) if mode is not None else "r"
    return text is None or any(c in text for c in "wax+")


def _python_path(cmd: SimpleCommand, scan: Scan, name: str, call: ast.Call, calls: _Calls, role: str) -> Iterator[Hit]:
    """A file deleted or written by Python code, judged by where it is."""
    receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
    if name.startswith(("Path.", "pathlib.Path.")) and isinstance(receiver, ast.Call):
        target_node = receiver.args[0] if receiver.args else None
    elif name.startswith(("shutil.copy", "shutil.move", "os.rename", "os.replace", "os.symlink", "os.link")):
        target_node = call.args[-1] if len(call.args) > 1 else None
    else:
        target_node = call.args[0] if call.args else None
    target = literal(target_node, calls) if target_node is not None else None
    verb = "deletes" if role == "delete" else "writes"
    if target is None:
        yield _hit(cmd, Category.OUTSIDE_WORKSPACE, f"python.{role}_dynamic", WARN, 50,
                   f"python code {verb} a path only known at run time ({name})")
        return
    place = scan.frame.place(target, cmd.cwd)
    if place.critical or place.kind in ("system_deep", "home_top", "user_data") and target.startswith(("~", "/")):
        verdict = BLOCK if place.critical else WARN
        category = Category.DESTRUCTIVE_FS if role == "delete" else Category.SYSTEM_TAMPERING
        yield _hit(cmd, category if verdict == BLOCK else Category.OUTSIDE_WORKSPACE, f"python.{role}_{place.kind}",
                   verdict, 90 if verdict == BLOCK else 50, f"python code {verb} {place.describe()}")
    elif place.kind not in ("workspace", "scratch"):
        yield _hit(cmd, Category.OUTSIDE_WORKSPACE, f"python.{role}_outside", WARN, 50,
                   f"python code {verb} {place.describe()}, outside the workspace")


def _python_read(cmd: SimpleCommand, scan: Scan, call: ast.Call, calls: _Calls, network: bool) -> Iterator[Hit]:
    """A credential file read by Python code: warn, or block when the code also uses the network."""
    from commandrisk.rules.credentials import HASH_FILES, SECRET_FILES

    target = literal(call.args[0], calls) if call.args else None
    if target is None:
        return
    path = scan.frame.place(target, cmd.cwd).location.display()
    if HASH_FILES.search(path) or SECRET_FILES.search(path):
        verdict = BLOCK if network else WARN
        yield _hit(cmd, Category.CREDENTIAL_ACCESS, "python.reads_secret", verdict, 90 if network else 55,
                   f"python code reads {path}" + (" and uses the network" if network else ""), "T1552.001")


SED_COMMAND = re.compile(r"\s*(?:(?:\d+|\$|/(?:[^/\\]|\\.)*/)(?:\s*,\s*(?:\d+|\$|/(?:[^/\\]|\\.)*/))?\s*!?\s*)?(.)")


def _sed(text: str, cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """sed's `e` (run a command), `w`/`W` (write a file) and the `s///e` and `s///w FILE` flags."""
    for command, argument in _sed_commands(text):
        if command == "e":
            inner = _nested(argument, cmd, scan, "sed") if argument else []
            yield from _worst(inner, cmd, "sed")
            yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "sed.exec", WARN, 55,
                       "sed runs shell commands (its `e` command or the s///e flag)", "T1059.004")
        elif command in ("w", "W") and argument:
            place = scan.frame.place(argument, cmd.cwd)
            if place.kind not in ("workspace", "scratch"):
                yield _hit(cmd, Category.OUTSIDE_WORKSPACE, "sed.write", WARN, 50,
                           f"sed writes {place.describe()}, outside the workspace")


def _sed_commands(text: str) -> Iterator[tuple[str, str]]:
    """(command letter, argument) for each sed command; `s` yields its `e` and `w` flags as commands."""
    i = 0
    while i < len(text):
        match = SED_COMMAND.match(text, i)
        if not match:
            return
        letter, i = match.group(1), match.end()
        if letter in "{};\n":
            continue
        if letter in "sy" and i < len(text):
            delimiter = text[i]
            end, parts = i + 1, 0
            while end < len(text) and parts < 2:
                if text[end] == "\\":
                    end += 1
                elif text[end] == delimiter:
                    parts += 1
                end += 1
            flags = re.match(r"[^;\n}]*", text[end:]).group(0)
            i = end + len(flags)
            if "e" in flags.split("w", 1)[0]:
                yield "e", ""
            if "w" in flags:
                yield "w", flags.split("w", 1)[1].strip()
            continue
        argument = re.match(r"[^\n;}]*" if letter not in "wWrRe" else r"[^\n]*", text[i:]).group(0)
        i += len(argument)
        if letter in "aic" and argument.startswith("\\"):
            continue
        yield letter, argument.strip()


AWK_SYSTEM = re.compile(r"\bsystem\s*\(\s*\"((?:[^\"\\]|\\.)*)\"\s*\)|\bsystem\s*\(")
AWK_PIPE = re.compile(r"\|\s*&?\s*getline|\bprint[f]?\b[^;}]*\|\s*\"|\"[^\"]*\"\s*\|\s*getline")
AWK_WRITE = re.compile(r"\bprint[f]?\b[^;}]*?>>?\s*(\"([^\"]*)\"|[A-Za-z_]\w*)")


def _awk(text: str, cmd: SimpleCommand, scan: Scan) -> Iterator[Hit]:
    """awk's `system()`, pipes to and from commands, and `print > file`."""
    for match in AWK_SYSTEM.finditer(text):
        if match.group(1) is not None:
            yield from _worst(_nested(match.group(1), cmd, scan, "awk"), cmd, "awk")
        yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "awk.system", WARN, 55, "awk runs shell commands (system())",
                   "T1059.004")
        break
    if AWK_PIPE.search(text):
        yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "awk.pipe", WARN, 55, "awk pipes text to or from a command",
                   "T1059.004")
    for match in AWK_WRITE.finditer(text):
        target = match.group(2)
        if target is None:
            yield _hit(cmd, Category.OUTSIDE_WORKSPACE, "awk.write_dynamic", WARN, 45,
                       "awk writes to a file named at run time")
            break
        place = scan.frame.place(target, cmd.cwd)
        if place.kind not in ("workspace", "scratch"):
            yield _hit(cmd, Category.OUTSIDE_WORKSPACE, "awk.write", WARN, 50,
                       f"awk writes {place.describe()}, outside the workspace")


JQ_ENVIRONMENT = re.compile(r"\$ENV\b|\benv\b|\$__loc__|\binput_filename\b")


def _jq(text: str, cmd: SimpleCommand) -> Iterator[Hit]:
    """jq filters only transform their input; reading the environment (`env`, `$ENV`) can leak secrets."""
    if JQ_ENVIRONMENT.search(STRINGS.sub('""', text)):
        yield _hit(cmd, Category.CREDENTIAL_ACCESS, "jq.environment", WARN, 45,
                   "jq reads the environment (tokens, keys)", "T1552.001")


def _statements(text: str, language: str, cmd: SimpleCommand) -> Iterator[Hit]:
    """A query one-liner that only reads (SELECT, SHOW, GET, ...) passes; anything else asks."""
    allowed = _read_only_statements()[language]
    for statement in re.split(r";|\n", STRINGS.sub("''", text)):
        words = statement.split()
        if words and words[0].lower() not in allowed:
            yield _hit(cmd, Category.UNTRUSTED_EXECUTION, f"{language}.writes", WARN, 45,
                       f"runs the {language} statement {words[0].upper()}, which can change data", "T1565.001")
            return


WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STRINGS = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")
REGEXES = re.compile(r"\b(?:s|tr|y)/(?:[^/\\\n]|\\.)*/(?:[^/\\\n]|\\.)*/[a-z]*|\b(?:m|qr)?/(?:[^/\\\n]|\\.)+/[a-z]*"
                     r"|(?:(?<=[\s(!~,])|^)/(?:[^/\\\n]|\\.)+/[a-z]*")
LOCAL_JSON = re.compile(r"\brequire\(\s*['\"]\.{1,2}/[\w./-]+\.json['\"]\s*\)")
"""`require('./package.json')` only reads a JSON file of the project."""
SIGIL_VARIABLES = re.compile(r"[$@%][A-Za-z_]\w*|\$\d+|\$.")


def _read_only(text: str, language: str, cmd: SimpleCommand) -> Iterator[Hit]:
    """Allow a program only when every word in it is on the language's read-only list."""
    allowed = _read_only_words().get(language)
    if allowed is None:
        yield _hit(cmd, Category.UNTRUSTED_EXECUTION, "code.unknown_language", WARN, 50,
                   f"runs {language} code, which the guard cannot read")
        return
    if "`" in text or re.search(r"\bqx\b|\bs(.).*\1.*\1[a-z]*e", text) and language == "perl":
        yield _hit(cmd, Category.UNTRUSTED_EXECUTION, f"{language}.shell_out", WARN, 55,
                   f"{language} code runs shell commands", "T1059")
        return
    stripped = SIGIL_VARIABLES.sub(" ", REGEXES.sub(" ", STRINGS.sub('""', LOCAL_JSON.sub("x", text))))
    unknown = sorted({w for w in WORD.findall(stripped) if w not in allowed})
    if unknown:
        yield _hit(cmd, Category.UNTRUSTED_EXECUTION, f"{language}.not_read_only", WARN, 45,
                   f"{language} code uses {', '.join(unknown[:3])}, which the guard cannot prove read-only", "T1059")
