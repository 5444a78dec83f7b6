"""The request guard's word lists must not remember the eval suites' wording.

Every compiled regex in `commandrisk/intent.py` and `commandrisk/prompt.py` is expanded into its literal phrases
(alternations and optional parts expanded, `\\s` read as a space, word stems and open classes ending a phrase,
bounded `.{0,N}` gaps kept as gaps). No phrase of two or more words may occur in a natural-language request of
`eval/suites/` unless it is a generic technical term or connective listed in GENERIC_TERMS.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import re._constants as sre
import re._parser as sre_parse
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import yaml

from commandrisk import intent, prompt

SUITES = Path(__file__).resolve().parents[1] / "eval" / "suites"
OWN_PROMPTS = Path(__file__).parent / "data" / "commandrisk" / "prompts.yaml"
RUN = 4
GAP = "\x00"
OPEN = "\x01"
MAX_GAP = 100
SMALL_CLASS = 4

GENERIC_TERMS = frozenset({
    # Plain connectives and comparators.
    "and then", "after that", "and also", "larger than",
    # Technical nouns: storage, places, keys, shells, accounts, the assistant's own configuration.
    "boot sector", "home folder", "home directory", "root directory", "private key", "public key",
    "reverse shell", "shell history", "environment variables", "uid 0", "system prompt", "developer mode",
})


@dataclass(frozen=True)
class Broken:
    """An expansion with a phrase break inside: the text before the first break and after the last one."""

    head: str
    tail: str


Form = str | Broken


def _concat(left: set[Form], right: set[Form], done: set[str]) -> set[Form]:
    """All concatenations of two expansion sets; phrases closed off between two breaks go to `done`."""
    out: set[Form] = set()
    for a in left:
        for b in right:
            if isinstance(a, str) and isinstance(b, str):
                out.add(a + b)
            elif isinstance(a, str):
                out.add(Broken(a + b.head, b.tail))
            elif isinstance(b, str):
                out.add(Broken(a.head, a.tail + b))
            else:
                done.add(a.tail + b.head)
                out.add(Broken(a.head, b.tail))
    return out


BREAK: set[Form] = {Broken(OPEN, OPEN)}


def _is_space_class(items: list) -> bool:
    return all(op is sre.CATEGORY and av is sre.CATEGORY_SPACE or op is sre.LITERAL and chr(av).isspace()
               for op, av in items)


def _single_char(op, av) -> set[str] | None:
    """The characters one parsed item can match when it is a literal or a small class, else None."""
    if op is sre.LITERAL:
        return {chr(av).lower()}
    if op is sre.IN and av and av[0][0] is not sre.NEGATE:
        if _is_space_class(av):
            return {" "}
        if len(av) <= SMALL_CLASS and all(o is sre.LITERAL for o, _ in av):
            return {chr(v).lower() for _, v in av}
    return None


def _is_gap_char(op, av) -> bool:
    return op is sre.ANY or op is sre.NOT_LITERAL or op is sre.IN and bool(av) and av[0][0] is sre.NEGATE


def _expand(items, done: set[str]) -> set[Form]:
    """Expansion set of one parsed sequence."""
    forms: set[Form] = {""}
    for op, av in items:
        forms = _concat(forms, _expand_item(op, av, done), done)
    return forms


def _expand_item(op, av, done: set[str]) -> set[Form]:
    chars = _single_char(op, av)
    if chars is not None:
        return set(chars)
    if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
        return {""}
    if op is sre.SUBPATTERN:
        return _expand(av[3], done)
    if op is sre.BRANCH:
        return set().union(*(_expand(branch, done) for branch in av[1]))
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        low, high, body = av
        if len(body) == 1 and _is_gap_char(*body[0]) and high <= MAX_GAP:
            return {GAP}
        if len(body) == 1 and (body[0][0] is sre.IN and _is_space_class(body[0][1]) or
                               body[0][0] is sre.CATEGORY and body[0][1] is sre.CATEGORY_SPACE):
            return {" "} | ({""} if low == 0 else set())
        inner = _expand(body, done) if high == 1 else BREAK
        return inner | {""} if low == 0 else inner
    if op is sre.CATEGORY and av is sre.CATEGORY_SPACE:
        return {" "}
    return BREAK


def phrases_of(pattern: re.Pattern[str]) -> set[str]:
    """Literal phrases of a compiled regex: maximal literal runs, with `\\x00` marking a bounded gap."""
    done: set[str] = set()
    for form in _expand(sre_parse.parse(pattern.pattern, pattern.flags), done):
        done.update((form,) if isinstance(form, str) else (form.head, form.tail))
    cleaned = set()
    for phrase in done:
        opens_left, opens_right = phrase.lstrip(" ").startswith(OPEN), phrase.rstrip(" ").endswith(OPEN)
        parts = [" ".join(p.split()) for p in phrase.replace(OPEN, "").split(GAP)]
        text = GAP.join(p for p in parts if p)
        if text:
            cleaned.add((OPEN if opens_left else "") + text + (OPEN if opens_right else ""))
    return cleaned


def _words(phrase: str) -> int:
    return sum(1 for token in phrase.replace(GAP, " ").replace(OPEN, "").split() if re.search(r"[a-z0-9]", token))


def _shown(phrase: str) -> str:
    return phrase.replace(OPEN, "").replace(GAP, " ... ")


def guard_phrases() -> dict[str, set[str]]:
    """Every phrase of two or more words in the request guard's regexes, with the regexes it comes from."""
    found: dict[str, set[str]] = {}
    for module in (intent, prompt):
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern):
                for phrase in phrases_of(value):
                    if _words(phrase) >= 2:
                        found.setdefault(phrase, set()).add(f"{module.__name__}.{name}")
    return found


def suite_requests() -> list[tuple[str, str]]:
    """(where, text) for every natural-language request or question in eval/suites/*.jsonl."""
    requests = []
    for path in sorted(SUITES.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                for field in ("request", "question", "query"):
                    if isinstance(row.get(field), str):
                        requests.append((f"{path.name}:{number}:{field}", row[field]))
    return requests


def _matcher(phrase: str) -> re.Pattern[str]:
    """A search for the phrase in a request, with word edges where the regex had a whole word there."""
    core = phrase.strip(OPEN)
    lead = r"(?<!\w)" if not phrase.startswith(OPEN) and re.match(r"\w", core) else ""
    trail = r"(?!\w)" if not phrase.endswith(OPEN) and re.search(r"\w$", core) else ""
    return re.compile(lead + f".{{0,{MAX_GAP}}}".join(re.escape(p) for p in core.split(GAP)) + trail)


@cache
def shared_phrases() -> dict[str, list[str]]:
    """Guard phrases that occur in a suite request, with where they occur."""
    requests = [(where, " ".join(text.lower().split())) for where, text in suite_requests()]
    shared: dict[str, list[str]] = {}
    for phrase in guard_phrases():
        matcher = _matcher(phrase)
        hits = [where for where, text in requests if matcher.search(text)]
        if hits:
            shared[_shown(phrase)] = hits
    return shared


def test_extraction_reads_alternations_options_and_gaps() -> None:
    pattern = re.compile(r"\b(wip(e|ing)|blow(n)? away)\s+(the )?disks?\b|\bkeeps? .{0,40}alive|[- ]x\w*", re.I)
    shown = {_shown(p) for p in phrases_of(pattern)}
    assert shown >= {"wipe disk", "wipe the disk", "wiping the disk", "blown away disk", "keeps ... alive", "-x", "x"}
    assert {_shown(p) for p in phrases_of(re.compile(r"drop (\w+ )?tables?|disks+"))} == {"drop tables", "drop table",
                                                                                         "drop", "tables", "table",
                                                                                         "disk"}


def test_a_copied_idiom_is_found_in_the_suite() -> None:
    """The check bites: idioms the old guard had copied from safety.jsonl are found there."""
    copied = re.compile(r"\b(permanent nap|get back in|kill (every|all( the)?) process(es)?)\b|\bkeeps? .{0,40}\balive\b")
    requests = [" ".join(text.lower().split()) for _, text in suite_requests()]
    found = {_shown(p) for p in phrases_of(copied) if any(_matcher(p).search(text) for text in requests)}
    assert found == {"permanent nap", "get back in", "kill every process", "keep ... alive", "keeps ... alive"}


def test_suites_have_requests() -> None:
    wheres = {where.split(":")[0] for where, _ in suite_requests()}
    assert {"safety.jsonl", "shell_mc.jsonl"} <= wheres


def test_generic_terms_are_technical_and_short() -> None:
    assert len(GENERIC_TERMS) <= 30 and all(len(term.split()) <= 3 for term in GENERIC_TERMS)


def test_no_suite_request_shares_a_phrase_with_the_guard() -> None:
    copied = {phrase: where for phrase, where in shared_phrases().items() if phrase not in GENERIC_TERMS}
    assert not copied, "request-guard phrases copied from eval/suites: " + json.dumps(copied, indent=1)


@pytest.mark.parametrize("term", sorted(GENERIC_TERMS))
def test_generic_terms_are_in_use(term: str) -> None:
    assert term in shared_phrases(), f"{term!r} is no longer shared with a suite; drop it from GENERIC_TERMS"


def test_every_guard_regex_is_a_module_constant() -> None:
    """Regexes written inline in a call would escape the phrase check above."""
    inline = []
    for module in (intent, prompt):
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    isinstance(node.func.value, ast.Name) and node.func.value.id == "re" and node.func.attr != "compile" \
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                inline.append(f"{module.__name__}:{node.lineno}")
    assert not inline, inline


def _runs(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9_./~-]+", text.lower())
    return {tuple(words[i: i + RUN]) for i in range(len(words) - RUN + 1)}


def test_own_prompt_suite_is_written_in_its_own_words() -> None:
    suite = set().union(*(_runs(text) for _, text in suite_requests()))
    rows = yaml.safe_load(OWN_PROMPTS.read_text(encoding="utf-8"))
    copied = {row["request"]: sorted(" ".join(run) for run in _runs(row["request"]) & suite) for row in rows}
    assert not {request: runs for request, runs in copied.items() if runs}
