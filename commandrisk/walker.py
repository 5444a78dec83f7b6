"""Walk a Bash syntax tree and list every simple command that would run, with its resolved words."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from commandrisk import static
from commandrisk.hits import Hit
from commandrisk.models import Category, Verdict
from commandrisk.paths import DYN, Frame, Location
from commandrisk.words import DEFAULT_VARIABLES, SPLIT, SUBSTITUTION_TYPES, Resolver, Word, expand_braces
from commandrisk.wrappers import Unwrapped, basename, unwrap

MAX_DEPTH = 6
MAX_COMMANDS = 1000
MAX_LOOP_ITEMS = 4
SYSTEM_BIN_DIRS = frozenset({"bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin"})
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "busybox"})
DYNAMIC_STAND_IN = "$__commandrisk_dynamic"
SAFE_EVAL_TOOLS = frozenset({"ssh-agent", "dircolors", "pyenv", "rbenv", "nodenv", "jenv", "goenv", "direnv",
                             "opam", "conda", "brew", "starship", "minikube", "docker-machine", "gpg-agent", "resize",
                             "tset", "thefuck", "keychain", "zoxide", "fnm", "mise", "rtx", "luarocks", "fasd",
                             "pip", "poetry", "pipenv", "gh", "kubectl", "helm", "npm", "ssh-add", "locale",
                             "aws", "gcloud", "perl", "lesspipe", "lesspipe.sh", "dbus-launch", "echo", "printf"})
"""Tools whose output is shell code meant for `eval "$(tool ...)"` (environment setup)."""
_LANGUAGE = Language(tree_sitter_bash.language())
_ASTRAL_LEAD = re.compile(rb"[\xf0-\xf7]")
_local = threading.local()
RISKY_TOKEN_RE = re.compile(
    r"\b(rm|dd|mkfs\w*|shred|wipefs|curl|wget|nc|ncat|socat|chmod|chown|sudo|eval|exec|base64|crontab|iptables|"
    r"kill|shutdown|reboot|history|passwd|shadow|sudoers|authorized_keys|python\d*|perl|ruby|node|php|bash|sh|zsh)\b"
    r"|/dev/(tcp|udp|sd|nvme)|>\s*/|:\(\)|\|\s*\w*sh\b"
)


def parser() -> Parser:
    """One tree-sitter parser per thread."""
    cached = getattr(_local, "parser", None)
    if cached is None:
        cached = _local.parser = Parser(_LANGUAGE)
    return cached


@dataclass
class Redirect:
    """One redirection: operator, fd, resolved target."""

    op: str
    target: str
    fd: str | None = None
    word: Word | None = None

    @property
    def writes(self) -> bool:
        """True for `>`, `>>`, `>|`, `&>`, `&>>`, `>&` to a file, `<>`."""
        return ">" in self.op and not self.target.isdigit() and self.target != "-"


@dataclass(eq=False)
class SimpleCommand:
    """One command that would run, after resolving words and peeling wrappers."""

    argv: list[str]
    words: list[Word | None]
    span: tuple[int, int]
    snippet: str
    cwd: Location | None
    origin: str = "direct"
    depth: int = 0
    wrappers: list[str] = field(default_factory=list)
    wrapper_argvs: list[list[str]] = field(default_factory=list)
    assignments: dict[str, str] = field(default_factory=dict)
    redirects: list[Redirect] = field(default_factory=list)
    stdin_text: str | None = None
    stdin_word: Word | None = None
    pipeline: list[list[SimpleCommand]] | None = None
    stage: int = 0
    function: str | None = None
    background: bool = False
    loop: str | None = None
    root_shell: bool = False
    nested: bool = False
    raw_name: Word | None = None
    xargs_slot: int | None = None
    walk: Any = None

    name: str = field(init=False, default="")

    def __post_init__(self) -> None:
        """Derive the command name without directory ('' for a bare assignment or redirection)."""
        self.name = basename(self.argv[0]) if self.argv else ""

    @property
    def args(self) -> list[str]:
        """Arguments after the name."""
        return self.argv[1:]

    def upstream(self) -> list[SimpleCommand]:
        """Commands in earlier pipeline stages (their output flows into this one)."""
        if not self.pipeline:
            return []
        return [c for stage in self.pipeline[: self.stage] for c in stage]

    def downstream(self) -> list[SimpleCommand]:
        """Commands in later pipeline stages."""
        if not self.pipeline:
            return []
        return [c for stage in self.pipeline[self.stage + 1:] for c in stage]

    def downstream_where(self, predicate: Callable[[SimpleCommand], bool]) -> list[SimpleCommand]:
        """Later-stage commands satisfying `predicate`; the pipeline is scanned once per predicate, so data-flow
        rules stay linear in the pipeline's length."""
        if not self.pipeline:
            return []
        cache = self.walk.sink.flow_cache if self.walk is not None else {}
        return [c for stage, c in _matching(cache, self.pipeline, predicate) if stage > self.stage]

    def word_commands(self) -> list[SimpleCommand]:
        """Commands run inside this command's substitutions (`$(...)`, `<(...)`, here-strings)."""
        words = [w for w in self.words if w] + [r.word for r in self.redirects if r.word]
        if self.stdin_word:
            words.append(self.stdin_word)
        return [c for w in words for c in w.commands]


def _matching(cache: dict[tuple[int, int], Any], pipeline: list[list[SimpleCommand]],
              predicate: Callable[[SimpleCommand], bool]) -> list[tuple[int, SimpleCommand]]:
    """(stage, command) for every command of `pipeline` satisfying `predicate`, computed once per scan."""
    key = (id(pipeline), id(predicate))
    if key not in cache:
        cache[key] = (pipeline, [(i, c) for i, stage in enumerate(pipeline) for c in stage if predicate(c)])
    return cache[key][1]


@dataclass
class State:
    """What the walk knows at a point: working directory and literal variables."""

    cwd: Location | None
    variables: dict[str, str]
    function: str | None = None
    background: bool = False
    loop: str | None = None

    def copy(self) -> State:
        """Independent copy for a subshell or a substitution."""
        return State(self.cwd, dict(self.variables), self.function, self.background, self.loop)


class Walk:
    """Collects the simple commands of one script (and of scripts nested in it)."""

    def __init__(self, source: bytes, frame: Frame, sink: Scan, depth: int = 0, origin: str = "direct",
                 outer: tuple[tuple[int, int], str] | None = None):
        self.source = source
        self.frame = frame
        self.sink = sink
        self.depth = depth
        self.origin = origin
        self.outer = outer

    def run(self, state: State) -> None:
        """Parse and walk the whole source (characters beyond the BMP replaced first: they crash the scanner)."""
        if _ASTRAL_LEAD.search(self.source):
            text = self.source.decode("utf-8", "surrogateescape")
            self.source = "".join("\ufffd" if ord(c) > 0xFFFF else c for c in text).encode("utf-8", "surrogateescape")
        tree = parser().parse(self.source)
        root = tree.root_node
        if root.has_error:
            self.sink.parse_errors.append((self.source, self.outer))
        self.visit(root, state)

    def span_of(self, node: Node) -> tuple[tuple[int, int], str]:
        """Span in the original input and a snippet for messages."""
        text = node.text.decode("utf-8", "replace")
        if self.outer:
            return self.outer[0], text
        return (node.start_byte, node.end_byte), text

    def visit(self, node: Node, state: State) -> None:
        """Dispatch on node type; unknown node types are searched for commands and substitutions."""
        if len(self.sink.commands) >= MAX_COMMANDS:
            self.sink.truncated = True
            return
        kind = node.type
        if kind == "command":
            self.command(node, state, [])
        elif kind == "redirected_statement":
            self.redirected(node, state)
        elif kind == "pipeline":
            self.pipeline([c for c in node.named_children if c.type != "comment"], state)
        elif kind == "subshell":
            self.sequence(node, state.copy())
        elif kind == "function_definition":
            self.function(node, state)
        elif kind == "for_statement":
            self.for_loop(node, state)
        elif kind in ("while_statement", "c_style_for_statement"):
            self.loop(node, state)
        elif kind in ("variable_assignment", "variable_assignments", "declaration_command", "unset_command"):
            self.assignment(node, state)
        elif kind in SUBSTITUTION_TYPES:
            self.substitution(node, state)
        elif kind in ("comment", "heredoc_body", "heredoc_start", "heredoc_end", "raw_string", "ansi_c_string"):
            return
        elif kind == "ERROR" and node.children and node.children[0].type == "{" and self.brace_command(node, state):
            return
        elif node.child_count:
            self.sequence(node, state)

    def sequence(self, node: Node, state: State) -> None:
        """Visit children in order, noticing `&` (background) after a child."""
        children = node.children
        for i, child in enumerate(children):
            if not child.is_named:
                continue
            background = state.background or (i + 1 < len(children) and children[i + 1].type == "&")
            if background != state.background:
                inner = state.copy()
                inner.background = background
                self.visit(child, inner)
                state.cwd = inner.cwd if not background else state.cwd
            else:
                self.visit(child, state)

    def brace_command(self, node: Node, state: State) -> bool:
        """`{rm,-rf,/}`: brace expansion in command position, which tree-sitter reports as an error."""
        text = node.text.decode("utf-8", "replace")
        head, _, rest = text.partition(" ")
        expanded = expand_braces(head)
        if len(expanded) < 2:
            return False
        span, snippet = self.span_of(node)
        self.reparse(" ".join(expanded) + (" " + rest if rest else ""), state, span, snippet, self.origin)
        return True

    def for_loop(self, node: Node, state: State) -> None:
        """`for f in /home/*/.bashrc; do ... $f; done`: walk the body with the loop variable bound to each item."""
        resolver = self.resolver(state)
        name_node = node.child_by_field_name("variable")
        items: list[str] = []
        dynamic = False
        for child, field_name in _fields(node):
            if field_name == "value":
                word = resolver.word(child)
                self.walk_word_substitutions(word, state)
                dynamic = dynamic or word.dynamic
                items.extend(_split(word) if not word.quoted else [word.text])
        body = node.child_by_field_name("body")
        name = name_node.text.decode("utf-8", "replace") if name_node else None
        values = list(dict.fromkeys(items))
        if dynamic or not values or len(values) > MAX_LOOP_ITEMS:
            values = [None]
        for value in values:
            if name and value is None:
                state.variables.pop(name, None)
            elif name:
                state.variables[name] = value
            if body is not None:
                self.visit(body, state)

    def loop(self, node: Node, state: State) -> None:
        """`while COND; do ...; done` and `for ((;;))`: the body runs in a loop, endless when COND is constant."""
        inner = state.copy()
        inner.loop = "endless" if _endless(node) else "bounded"
        text = node.text.decode("utf-8", "replace")
        if inner.loop == "endless" and not re.search(r"\b(break|exit|return)\b", text):
            span, snippet = self.span_of(node)
            self.sink.notes.append(Hit(Category.DENIAL_OF_SERVICE, "dos.endless_loop", Verdict.WARN, 45,
                                       "loops forever: the condition never changes and nothing breaks out", snippet,
                                       span, "T1499"))
        self.sequence(node, inner)
        state.cwd = inner.cwd

    def function(self, node: Node, state: State) -> None:
        """Walk a function body; remember the function name for recursion checks."""
        name_node = node.child_by_field_name("name")
        inner = state.copy()
        inner.function = name_node.text.decode("utf-8", "replace") if name_node else None
        body = node.child_by_field_name("body")
        if body is not None:
            self.visit(body, inner)

    def substitution(self, node: Node, state: State) -> list[SimpleCommand]:
        """Walk the commands inside `$(...)`, backticks or `<(...)`."""
        before = len(self.sink.commands)
        inner = state.copy()
        inner.background = False
        for child in node.named_children:
            self.visit(child, inner)
        made = self.sink.commands[before:]
        for cmd in made:
            cmd.nested = True
        return made

    def resolver(self, state: State) -> Resolver:
        """Word resolver bound to the current variables."""
        return Resolver(state.variables, lambda node: self.evaluate(node, state))

    def evaluate(self, node: Node, state: State) -> static.Output | None:
        """Statically compute the output of `$(echo ...)`, `$(printf ...)`, `$(... | base64 -d)`."""
        body = [c for c in node.named_children if c.type != "comment"]
        if len(body) != 1 or node.type != "command_substitution":
            return None
        stages = [body[0]] if body[0].type == "command" else None
        if body[0].type == "pipeline":
            stages = body[0].named_children
        if not stages or any(s.type != "command" for s in stages):
            return None
        resolver = self.resolver(state)
        output: static.Output | None = None
        for stage in stages:
            argv: list[str] = []
            stdin = output
            for child, field_name in _fields(stage):
                if field_name in ("name", "argument"):
                    argv.extend(_split(resolver.word(child)))
                elif child.type == "herestring_redirect" and child.named_children:
                    stdin = static.Output(resolver.word(child.named_children[-1]).text + "\n", False)
            output = static.run(argv, stdin)
            if output is None:
                return None
        return output

    def assignment(self, node: Node, state: State) -> None:
        """Record literal variable values (`x=r; y=m; $x$y`) and note the assignment as a command."""
        resolver = self.resolver(state)
        argv: list[str] = []
        words: list[Word | None] = []
        assignments: dict[str, str] = {}
        nodes = [node] if node.type == "variable_assignment" else node.named_children
        if node.type in ("declaration_command", "unset_command"):
            argv.append(node.children[0].text.decode())
            words.append(None)
        for child in nodes:
            if child.type == "variable_assignment":
                name, word = self.assign(child, state, resolver)
                if name:
                    assignments[name] = word.text if word else ""
            elif child.type in ("word", "variable_name", "string", "raw_string", "concatenation"):
                word = resolver.word(child)
                self.walk_word_substitutions(word, state)
                argv.append(word.text)
                words.append(word)
        if node.type == "unset_command":
            for name in argv[1:]:
                state.variables.pop(name, None)
        span, snippet = self.span_of(node)
        self.add(SimpleCommand(argv, words, span, snippet, state.cwd, assignments=assignments), state)

    def assign(self, node: Node, state: State, resolver: Resolver) -> tuple[str | None, Word | None]:
        """Resolve one `name=value`, store it when literal, walk substitutions in the value."""
        name_node = node.child_by_field_name("name")
        value_node = node.child_by_field_name("value")
        name = name_node.text.decode("utf-8", "replace") if name_node else None
        word = resolver.word(value_node) if value_node is not None else Word("", node)
        self.walk_word_substitutions(word, state)
        if name:
            if word.dynamic:
                state.variables.pop(name, None)
            else:
                state.variables[name] = word.text.replace(SPLIT, " ")
        return name, word

    def walk_word_substitutions(self, word: Word, state: State) -> None:
        """Walk the substitutions inside a word and attach their commands to it."""
        for sub in word.substitutions:
            word.commands.extend(self.substitution(sub, state))

    def redirected(self, node: Node, state: State) -> None:
        """A statement with redirections; heredoc pipelines (`cat <<EOF | sh`) become real pipelines."""
        body = node.child_by_field_name("body")
        redirect_nodes = [c for c, f in _fields(node) if f == "redirect"]
        trailing: list[Node] = []
        for redirect in redirect_nodes:
            if redirect.type == "heredoc_redirect":
                trailing.extend(c for c in redirect.named_children if c.type not in _HEREDOC_PARTS)
        pipe_tail = [t for t in trailing if t.type == "pipeline"]
        if body is not None and body.type == "command" and pipe_tail:
            stages = [body] + [c for c in pipe_tail[0].named_children if c.type != "comment"]
            self.pipeline(stages, state, {id(body): redirect_nodes})
            trailing = [t for t in trailing if t is not pipe_tail[0]]
        elif body is not None and body.type == "command":
            self.command(body, state, redirect_nodes)
        else:
            if body is not None:
                self.visit(body, state)
            self.command(None, state, redirect_nodes, node)
        for extra in trailing:
            self.visit(extra, state)

    def pipeline(self, stage_nodes: list[Node], state: State, redirects: dict[int, list[Node]] | None = None) -> None:
        """Walk pipeline stages (each in a subshell) and link them for data-flow rules."""
        stages: list[list[SimpleCommand]] = []
        tops: list[list[SimpleCommand]] = []
        for stage_node in stage_nodes:
            before = len(self.sink.commands)
            inner = state.copy()
            if stage_node.type == "command":
                self.command(stage_node, inner, (redirects or {}).get(id(stage_node), []))
            else:
                self.visit(stage_node, inner)
            made = self.sink.commands[before:]
            stages.append(made)
            tops.append([c for c in made if c.walk is self and not c.nested and c.origin == self.origin])
        for i, stage in enumerate(stages):
            for cmd in stage:
                if cmd.pipeline is None:
                    cmd.pipeline, cmd.stage = stages, i
        self.link_xargs(stages)
        self.feed_shells(tops, state)

    def link_xargs(self, stages: list[list[SimpleCommand]]) -> None:
        """`find DIR ... | xargs rm`: items come from under DIR; `echo a b | xargs rm`: items are a and b."""
        for i in range(1, len(stages)):
            targets = [c for c in stages[i] if c.xargs_slot is not None and c.xargs_slot < len(c.argv)]
            if not targets:
                continue
            producers = [c for c in stages[i - 1] if not c.nested]
            items: list[str] = []
            if producers and producers[0].name == "find":
                items = [find_start(producers[0].args).rstrip("/") + "/" + DYN]
            elif len(producers) == 1:
                stdin = static.Output(producers[0].stdin_text, False) if producers[0].stdin_text is not None else None
                output = static.run(producers[0].argv, stdin)
                items = output.text.split()[:32] if output is not None else []
            for cmd in targets if items else []:
                slot = cmd.xargs_slot
                cmd.argv[slot: slot + 1] = items
                cmd.words[slot: slot + 1] = [None] * len(items)

    def feed_shells(self, tops: list[list[SimpleCommand]], state: State) -> None:
        """When static text is piped into a shell (`echo ... | base64 -d | sh`), walk that text as a script."""
        output: static.Output | None = None
        for stage in tops:
            if len(stage) != 1:
                return
            cmd = stage[0]
            if is_shell_reading_stdin(cmd) and output is not None:
                origin = "computed" if output.decoded else "inline"
                self.inline(output.text, state, cmd, origin)
                return
            stdin = static.Output(cmd.stdin_text, False) if cmd.stdin_text is not None else output
            output = static.run(cmd.argv, stdin)

    def command(self, node: Node | None, state: State, redirect_nodes: list[Node], span_node: Node | None = None) -> None:
        """Resolve one simple command, unwrap it, record it, and walk any script it runs."""
        if self.sink.truncated:
            return
        resolver = self.resolver(state)
        argv: list[str] = []
        words: list[Word | None] = []
        assignments: dict[str, str] = {}
        raw_name: Word | None = None
        stdin_text: str | None = None
        stdin_word: Word | None = None
        arg_nodes, glued = _merge_adjacent(_fields(node)) if node is not None else ([], {})
        arg_nodes += [(r, "redirect") for r in redirect_nodes]
        redirects: list[Redirect] = []
        for child, field_name in arg_nodes:
            if child.type == "variable_assignment":
                name, word = self.assign(child, state.copy(), resolver)
                if name:
                    assignments[name] = word.text if word else ""
            elif field_name in ("name", "argument"):
                word = resolver.word(child.named_children[0] if child.type == "command_name" else child)
                for extra in glued.get(id(child), ()):
                    word = _glue(word, resolver.word(extra), state)
                self.walk_word_substitutions(word, state)
                if field_name == "name":
                    raw_name = word
                pieces = _split(word)
                argv.extend(pieces)
                words.extend([word] * len(pieces))
            elif child.type == "herestring_redirect":
                target = child.named_children[-1] if child.named_children else None
                if target is not None:
                    stdin_word = resolver.word(target)
                    self.walk_word_substitutions(stdin_word, state)
                    stdin_text = stdin_word.text.replace(SPLIT, " ") + "\n"
            elif child.type == "heredoc_redirect":
                body = next((c for c in child.named_children if c.type == "heredoc_body"), None)
                stdin_text = body.text.decode("utf-8", "replace") if body is not None else ""
                for sub in child.named_children:
                    if sub.type not in _HEREDOC_PARTS and sub.type != "pipeline":
                        self.visit(sub, state)
            elif child.type == "file_redirect":
                redirects.append(self.redirect(child, state, resolver))
        if len(argv) > 1 or (argv and argv[0]):
            argv = _expand_command_braces(argv, words)
        unwrapped = unwrap(argv) if argv else Unwrapped(argv)
        effective = argv[unwrapped.index:] if unwrapped.index < len(argv) else []
        if unwrapped.argv is not argv:
            effective = unwrapped.argv[unwrapped.index:]
        span, snippet = self.span_of(node if node is not None else span_node)
        cmd = SimpleCommand(
            effective, words[unwrapped.index:] if unwrapped.argv is argv else [None] * len(effective),
            span, snippet, state.cwd, origin=self.origin, depth=self.depth, wrappers=unwrapped.wrappers,
            wrapper_argvs=unwrapped.layers, assignments=assignments, redirects=redirects, stdin_text=stdin_text, stdin_word=stdin_word,
            root_shell=unwrapped.root_shell, raw_name=raw_name,
        )
        if unwrapped.xargs_slot is not None:
            cmd.xargs_slot = unwrapped.xargs_slot - unwrapped.index
        self.add(cmd, state)
        self.track_cd(cmd, state)
        origin = "remote" if unwrapped.remote else self.origin
        for script in unwrapped.scripts:
            self.inline(script, state, cmd, origin)
        self.run_inline(cmd, state)

    def redirect(self, node: Node, state: State, resolver: Resolver) -> Redirect:
        """Resolve a file redirection and walk substitutions in its target."""
        op, fd, target = "", None, None
        for child, field_name in _fields(node):
            if field_name == "descriptor":
                fd = child.text.decode()
            elif field_name == "destination" and target is None:
                target = child
            elif not child.is_named:
                op = child.text.decode()
        word = resolver.word(target) if target is not None else None
        if word is not None:
            self.walk_word_substitutions(word, state)
        return Redirect(op, word.text.replace(SPLIT, " ") if word else "", fd, word)

    def add(self, cmd: SimpleCommand, state: State) -> None:
        """Record a command with the walk's context; past the cap, note the truncation instead."""
        if len(self.sink.commands) >= MAX_COMMANDS:
            self.sink.truncated = True
            return
        cmd.walk = self
        cmd.function = state.function
        cmd.background = state.background
        cmd.loop = state.loop
        self.sink.commands.append(cmd)

    def track_cd(self, cmd: SimpleCommand, state: State) -> None:
        """Follow `cd`/`pushd` so later relative paths resolve against the new directory."""
        if cmd.name not in ("cd", "pushd", "chdir"):
            return
        targets = [a for a in cmd.args if not a.startswith("-") or a == "-"]
        if not targets:
            state.cwd = Location("~")
        elif DYN in targets[0] or targets[0] == "-":
            state.cwd = None
        else:
            state.cwd = self.frame.locate(targets[0], state.cwd)

    def run_inline(self, cmd: SimpleCommand, state: State) -> None:
        """Walk the scripts a command runs: `sh -c`, `eval`, heredoc/here-string into a shell, `find -exec`."""
        name, args = cmd.name, cmd.args
        if name in SHELLS:
            script, computed = shell_script_argument(cmd)
            if script is not None:
                self.inline(script, state, cmd, "computed" if computed else self.origin_for(cmd))
            elif cmd.stdin_text is not None and is_shell_reading_stdin(cmd):
                computed = bool(cmd.stdin_word and cmd.stdin_word.computed)
                self.inline(cmd.stdin_text, state, cmd, "computed" if computed else self.origin_for(cmd))
        elif name == "eval" and args and not _evals_setup_output(cmd):
            computed = any(w is not None and w.computed for w in cmd.words[1:])
            self.inline(" ".join(a.replace(SPLIT, " ") for a in args), state, cmd,
                        "computed" if computed else self.origin_for(cmd))
        elif name == "find":
            for inner in find_exec_commands(args):
                self.inline_argv(inner, state, cmd)
        elif cmd.raw_name is not None and cmd.raw_name.computed and cmd.argv:
            cmd.origin = "computed"

    def origin_for(self, cmd: SimpleCommand) -> str:
        """Origin for text a command runs: inherits computed/remote from the parent."""
        return cmd.origin if cmd.origin in ("computed", "remote") else "inline"

    def inline(self, text: str, state: State, parent: SimpleCommand, origin: str) -> None:
        """Parse and walk script text found inside a command, to a bounded depth."""
        self.reparse(text, state, parent.span, parent.snippet, origin)

    def reparse(self, text: str, state: State, span: tuple[int, int], snippet: str, origin: str) -> None:
        """Walk `text` as a nested script whose findings point at `span` of the original input."""
        if self.depth + 1 > MAX_DEPTH:
            self.sink.too_deep.append((span, snippet))
            return
        source = text.replace(SPLIT, " ").replace(DYN, DYNAMIC_STAND_IN).encode("utf-8", "replace")
        walk = Walk(source, self.frame, self.sink, self.depth + 1, origin, (span, snippet))
        walk.run(state.copy())

    def inline_argv(self, argv: list[str], state: State, parent: SimpleCommand) -> None:
        """Record a command given as an argv (from `find -exec`)."""
        unwrapped = unwrap(argv)
        effective = unwrapped.argv[unwrapped.index:]
        cmd = SimpleCommand(effective, [None] * len(effective), parent.span, parent.snippet, state.cwd,
                            origin="exec" if parent.origin == "direct" else parent.origin, depth=self.depth,
                            wrappers=unwrapped.wrappers, wrapper_argvs=unwrapped.layers,
                            root_shell=unwrapped.root_shell)
        self.add(cmd, state)
        for script in unwrapped.scripts:
            self.inline(script, state, cmd, self.origin_for(cmd))
        self.run_inline(cmd, state)


@dataclass
class Scan:
    """Everything one assessment found while walking."""

    frame: Frame
    commands: list[SimpleCommand] = field(default_factory=list)
    parse_errors: list[tuple[bytes, Any]] = field(default_factory=list)
    too_deep: list[tuple[tuple[int, int], str]] = field(default_factory=list)
    truncated: bool = False
    notes: list[Hit] = field(default_factory=list)
    flow_cache: dict[tuple[int, int], Any] = field(default_factory=dict)


_HEREDOC_PARTS = frozenset({"heredoc_start", "heredoc_body", "heredoc_end", "heredoc_content"})


def scan_source(source: str, frame: Frame, depth: int = 0) -> Scan:
    """Walk `source` and every script nested in it."""
    result = Scan(frame)
    state = State(frame.cwd, dict(DEFAULT_VARIABLES))
    origin = "direct" if depth == 0 else "inline"
    Walk(source.encode("utf-8", "surrogateescape"), frame, result, depth, origin).run(state)
    if result.truncated:
        result.notes.append(Hit(Category.UNPARSED, "walk.too_many_commands", Verdict.BLOCK, 75,
                                f"more than {MAX_COMMANDS} commands; blocked without full inspection (fail closed)",
                                source[:80]))
    for span, snippet in result.too_deep[:1]:
        result.notes.append(Hit(Category.OBFUSCATION, "walk.nesting_too_deep", Verdict.BLOCK, 75,
                                f"scripts nested more than {MAX_DEPTH} levels deep; blocked without inspection "
                                "(fail closed)", snippet, span))
    return result


ENDLESS_CONDITIONS = frozenset({":", "true", "[ 1 ]", "((1))", "(( 1 ))", "[[ 1 ]]", "/bin/true", "test 1"})


def _endless(node: Node) -> bool:
    """A `while` whose condition is always true, an `until false`, or a `for ((;;))`."""
    text = node.text.decode("utf-8", "replace")
    if node.type == "c_style_for_statement":
        return text.replace(" ", "").startswith("for((;;")
    condition = node.child_by_field_name("condition")
    words = condition.text.decode("utf-8", "replace").strip().rstrip(";").strip() if condition is not None else ""
    keyword = node.children[0].type if node.children else "while"
    return words in ENDLESS_CONDITIONS if keyword == "while" else words in ("false", "/bin/false", "[ 0 = 1 ]")


def _merge_adjacent(
    fields: list[tuple[Node, str | None]],
) -> tuple[list[tuple[Node, str | None]], dict[int, list[Node]]]:
    """Arguments tree-sitter split but Bash sees as one word (`rm$IFS-rf$IFS/` parses as `...$` + `IFS/`)."""
    glued: dict[int, list[Node]] = {}
    merged: list[tuple[Node, str | None]] = []
    for child, field_name in fields:
        if merged and field_name == "argument" and merged[-1][1] in ("name", "argument"):
            head = merged[-1][0]
            last = glued.get(id(head), [head])[-1]
            if last.end_byte == child.start_byte:
                glued.setdefault(id(head), []).append(child)
                continue
        merged.append((child, field_name))
    return merged, glued


def _glue(head: Word, tail: Word, state: State) -> Word:
    """Join two pieces of one word; a dangling `$` takes a variable name from the tail."""
    text = tail.text
    if head.text.endswith("$"):
        match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text)
        if match:
            value = state.variables.get(match.group(0))
            expanded = DYN if value is None else value.replace(" ", SPLIT)
            head.text, text = head.text[:-1] + expanded, text[match.end():]
    head.text += text
    head.substitutions.extend(tail.substitutions)
    head.computed = head.computed or tail.computed
    return head


def _fields(node: Node) -> list[tuple[Node, str | None]]:
    """Children with their field names."""
    return [(child, node.field_name_for_child(i)) for i, child in enumerate(node.children)]


def _split(word: Word) -> list[str]:
    """Split a resolved word on unquoted field separators."""
    if SPLIT not in word.text:
        return [word.text]
    return [piece for piece in word.text.split(SPLIT) if piece]


def _expand_command_braces(argv: list[str], words: list[Word | None]) -> list[str]:
    """Brace-expand unquoted words (`{rm,-rf,/}` in command position, `/{etc,usr}` as arguments)."""
    if not any("{" in a and "," in a for a in argv):
        return argv
    out: list[str] = []
    new_words: list[Word | None] = []
    for arg, word in zip(argv, words):
        expanded = [arg] if (word is not None and word.quoted) else expand_braces(arg)
        out.extend(expanded)
        new_words.extend([word] * len(expanded))
    words[:] = new_words
    return out


def _evals_setup_output(cmd: SimpleCommand) -> bool:
    """`eval "$(ssh-agent -s)"`: every word is the output of an environment-setup tool."""
    inner = cmd.word_commands()
    return bool(inner) and all(c.name in SAFE_EVAL_TOOLS for c in inner) and all(
        a.replace(DYN, "").strip() == "" for a in cmd.args)


def shell_script_argument(cmd: SimpleCommand) -> tuple[str | None, bool]:
    """The script a shell runs from `-c TEXT` (or combined flags like `-xc`); and whether it was computed."""
    for i, arg in enumerate(cmd.args):
        if arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]:
            if i + 1 < len(cmd.args):
                word = cmd.words[i + 2] if i + 2 < len(cmd.words) else None
                return cmd.args[i + 1], bool(word and word.computed)
            return None, False
        if not arg.startswith("-") and not arg.startswith("+"):
            return None, False
    return None, False


def is_shell_reading_stdin(cmd: SimpleCommand) -> bool:
    """A shell (or `source /dev/stdin`) that takes its script from standard input."""
    if cmd.name in ("source", "."):
        return bool(cmd.args) and cmd.args[0] in ("/dev/stdin", "-", "/proc/self/fd/0")
    if cmd.name not in SHELLS or cmd.name == "busybox":
        return False
    positional = [a for a in cmd.args if not a.startswith("-") and not a.startswith("+")]
    return not positional or positional[0] in ("-", "/dev/stdin") or "-s" in cmd.args


def find_start(args: list[str]) -> str:
    """The first start directory of a `find` command (default `.`)."""
    for arg in args:
        if arg.startswith("-") or arg in ("(", "!"):
            break
        if arg not in ("-H", "-L", "-P"):
            return arg
    return "."


FIND_FILTERS = frozenset(
    "-name -iname -path -ipath -regex -iregex -type -mtime -mmin -atime -amin -ctime -cmin -size -user -group "
    "-newer -empty -perm -links -inum -samefile -wholename -iwholename -lname -ilname -nouser -nogroup "
    "-newermt -used -fstype".split()
)


def find_exec_commands(args: list[str]) -> list[list[str]]:
    """Commands run by `find -exec/-execdir/-ok/-okdir ... ;|+`, with `{}` replaced by what find yields."""
    start = find_start(args)
    filtered = any(a in FIND_FILTERS for a in args)
    names = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-name", "-iname")]
    found = start.rstrip("/") + "/" + DYN if filtered else start
    if len(names) == 1 and "/" not in names[0]:
        found = start.rstrip("/") + "/" + DYN + "/" + names[0]
    commands: list[list[str]] = []
    i = 0
    while i < len(args):
        if args[i] in ("-exec", "-execdir", "-ok", "-okdir"):
            j = i + 1
            inner: list[str] = []
            while j < len(args) and args[j] not in (";", "+"):
                inner.append(args[j].replace("{}", found))
                j += 1
            if inner:
                commands.append(inner)
            i = j
        i += 1
    return commands
