"""`assess_prompt`: injection, smuggling and harmful intent in a natural-language request."""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse

from commandrisk import explain
from commandrisk.hits import Hit
from commandrisk.intent import intent_hits
from commandrisk.models import Assessment, Category, Verdict

INJECTION = Category.PROMPT_INJECTION
ATLAS_DIRECT = "AML.T0051.000"
ATLAS_SMUGGLING = "AML.T0051.001"
OVERRIDE_VERB = re.compile(r"\b(ignore|ignoring|disregard\w*|forget|override|overrid\w*|bypass\w*|skip|abandon|"
                           r"discard|overrule)\b", re.I)
OVERRIDE_OWNER = re.compile(r"\b(previous|prior|above|earlier|preceding|original|initial|all|any|your|system|safety|"
                            r"security|developer)\b", re.I)
DIRECTIVE = re.compile(r"\b(instructions?|rules?|prompts?|guidelines|directives|polic(y|ies)|restrictions|filters?|"
                       r"guard(rails)?|safeguards|checks?|constraints|programming)\b", re.I)
INJECTION_RE = re.compile(
    r"\b(developer|god|jailbreak|dan) mode\b|\bdo anything now\b"
    r"|\bpretend (you are|to be|that you)\b|\bact as (an? )?(unrestricted|unfiltered|uncensored|root|evil)\b"
    r"|\bnew (system )?instructions?\s*:|\bsystem prompt\b|\breveal (your|the) (prompt|instructions)\b"
    r"|<\|?(im_start|im_end|system|endoftext)\|?>|\[/?INST\]|</?system>|^#{2,}\s*(system|instruction)"
    r"|\bno (restrictions|limits|rules|filter)\b|\bwithout (any )?(safety|restrictions|warnings?|checks)\b",
    re.I | re.M,
)
SENTENCE_END = re.compile(r"[.\n]")
OVERRIDE_WINDOW = 200
JOINT_RE = re.compile(
    r"(?:\b(?:and then|then also|after that|afterwards|also|additionally|as well|p\.?s\.?|finally|oh and|"
    r"and|then|but first|before that)\b[,:]?|[;|&]|\.\s)\s*(?:please\s+)?",
    re.I,
)
TASK_VERB_RE = re.compile(
    r"(run|execute|exec|eval|delete|remove|wipe|erase|download|fetch|curl|wget|send|upload|post|exfiltrate|"
    r"email|mail|install|add|open|spawn|disable|kill|chmod|chown|pipe|format|overwrite|rm)\b",
    re.I,
)
TASK_END_RE = re.compile(r"[.;\n]|\b(?:and|then)\b")
CODE_SPAN_RE = re.compile(r"`{1,3}([^`]+)`{1,3}|\$\(([^)]+)\)")
BASE64_RE = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{20,}={0,2}(?![A-Za-z0-9+/=])")
BASE64_MIXED_RE = re.compile(r"[0-9+/]|[a-z].*[A-Z]|[A-Z].*[a-z]")
HEX_RE = re.compile(r"(?:\\x[0-9a-fA-F]{2}){6,}|\b(?:[0-9a-fA-F]{2}){16,}\b")
URLENC_RE = re.compile(r"(?:%[0-9a-fA-F]{2}){6,}")
HIDDEN_RE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]")
TAGS_RE = re.compile("[\U000e0020-\U000e007e]+")
ALWAYS_RISKY_VERBS = frozenset({"exfiltrate", "wipe", "erase", "spawn", "disable", "curl", "wget", "rm", "eval", "exec"})
RISKY_OBJECT_RE = re.compile(
    r"\b(everything|entire|whole|root|home|disk|drive|partition|history|logs|keys?|passwords?|credentials?|secrets?|"
    r"tokens?|firewall|sudo|database|cron\w*|bashrc|authorized_keys|installer|payload|backdoor)\b|https?://"
    r"|(^|\s)[/~](\s|$|\*)",
    re.I,
)
RISKY_WORDS_RE = re.compile(r"\b(rm|curl|wget|nc|bash|sh|chmod|sudo|eval|exec|base64|python|perl|dd|mkfs)\b|/dev/|\|")


def assess_prompt(text: str) -> Assessment:
    """Flag instruction overrides, smuggled tasks, encoded or hidden payloads, and harmful intent in a request."""
    try:
        hits = _prompt_hits(text if isinstance(text, str) else str(text))
    except Exception as exc:  # noqa: BLE001 - fail closed
        hits = [Hit(INJECTION, "prompt.internal_error", Verdict.WARN, 50,
                    f"could not be analysed ({type(exc).__name__})", str(text)[:80])]
    hits = explain.ordered(hits)
    verdict = explain.verdict_of(hits)
    return Assessment(command=text if isinstance(text, str) else str(text), verdict=verdict,
                      risk=explain.risk_of(hits, verdict), findings=[h.finding() for h in hits],
                      explanation=explain.explanation(hits, verdict, 1).replace("in 1 command", "in the request"))


def _prompt_hits(text: str, depth: int = 0) -> list[Hit]:
    hits: list[Hit] = []
    override = _instruction_override(text)
    if override:
        hits.append(Hit(INJECTION, "prompt.instruction_override", Verdict.BLOCK, 90,
                        "tries to override the assistant's instructions", text[override[0]: override[1]], override,
                        ATLAS_DIRECT))
    hits.extend(_embedded_commands(text))
    hits.extend(intent_hits(text))
    match = _risky_second_task(text)
    if match and not any(h.rule_id.startswith("prompt.embedded") for h in hits):
        hits.append(Hit(INJECTION, "prompt.appended_task", Verdict.WARN, 45,
                        f"appends a second, risky task ('{match.group(1)}')", text[match.start(): match.end() + 40],
                        (match.start(), match.end()), ATLAS_DIRECT))
    hidden = HIDDEN_RE.findall(text)
    if hidden:
        tags = "".join(chr(ord(c) - 0xE0000) for m in TAGS_RE.findall(text) for c in m)
        inner = _prompt_hits(tags, depth + 1) if tags and depth < 2 else []
        verdict = Verdict.BLOCK if inner or tags else Verdict.WARN
        hits.append(Hit(INJECTION, "prompt.hidden_characters", verdict, 80 if inner or tags else 40,
                        f"contains {len(hidden)} invisible or bidi-control characters", repr("".join(hidden[:8])),
                        None, ATLAS_SMUGGLING))
    if depth < 2:
        hits.extend(_encoded_payloads(text, depth))
    return hits


def _instruction_override(text: str) -> tuple[int, int] | None:
    """Span of a takeover marker, or of "ignore ... previous/your/system ... instructions/rules" in one sentence."""
    marker = INJECTION_RE.search(text)
    if marker:
        return marker.span()
    for verb in OVERRIDE_VERB.finditer(text):
        end = SENTENCE_END.search(text, verb.end(), verb.end() + OVERRIDE_WINDOW)
        sentence = text[verb.end(): end.start() if end else verb.end() + OVERRIDE_WINDOW]
        owner = OVERRIDE_OWNER.search(sentence)
        if owner and len(sentence[: owner.start()].split()) <= 5:
            directive = DIRECTIVE.search(sentence, owner.end())
            if directive and len(sentence[owner.end(): directive.start()].split()) <= 4:
                return verb.start(), verb.end() + directive.end()
    return None


def _risky_second_task(text: str) -> re.Match[str] | None:
    """A second task joined to the first whose verb is risky in itself or acts on a risky object."""
    for joint in JOINT_RE.finditer(text):
        match = TASK_VERB_RE.match(text, joint.end())
        if joint.start() == 0 or not match:
            continue
        end = TASK_END_RE.search(text, match.end())
        tail = text[match.end(): end.start() if end else len(text)]
        if match.group(1).lower() in ALWAYS_RISKY_VERBS or RISKY_OBJECT_RE.search(tail):
            return match
    return None


def _embedded_commands(text: str) -> list[Hit]:
    """Shell commands quoted inside the request (`...`, $(...)) judged by the command guard."""
    from commandrisk.engine import assess

    hits = []
    for match in CODE_SPAN_RE.finditer(text):
        code = match.group(1) or match.group(2)
        result = assess(code)
        if result.verdict != Verdict.ALLOW:
            top = result.findings[0]
            hits.append(Hit(INJECTION, "prompt.embedded_command", result.verdict, result.risk,
                            f"embeds a command that {top.message}", code, match.span(), ATLAS_SMUGGLING))
    return hits


def _encoded_payloads(text: str, depth: int) -> list[Hit]:
    """Base64, hex and URL-encoded blobs; blocked when the decoded text is itself an attack."""
    hits = []
    for pattern, decoder, label in ((BASE64_RE, _b64, "base64"), (HEX_RE, _hex, "hex"),
                                    (URLENC_RE, urllib.parse.unquote, "URL-encoded")):
        for match in pattern.finditer(text):
            decoded = decoder(match.group(0))
            if not decoded or sum(c.isprintable() or c.isspace() for c in decoded) < 0.9 * len(decoded):
                continue
            inner = _prompt_hits(decoded, depth + 1)
            from commandrisk.engine import assess

            command = assess(decoded) if RISKY_WORDS_RE.search(decoded) else None
            dangerous = inner or (command is not None and command.verdict != Verdict.ALLOW)
            hits.append(Hit(INJECTION, "prompt.encoded_payload", Verdict.BLOCK if dangerous else Verdict.WARN,
                            90 if dangerous else 40,
                            f"hides {'an attack' if dangerous else 'text'} in a {label} blob: {decoded[:40]!r}",
                            match.group(0)[:60], match.span(), ATLAS_SMUGGLING))
            return hits
    return hits


def _b64(blob: str) -> str | None:
    if not BASE64_MIXED_RE.search(blob) or blob.isalpha() and blob.islower():
        return None
    try:
        return base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _hex(blob: str) -> str | None:
    try:
        return bytes.fromhex(blob.replace("\\x", "")).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
