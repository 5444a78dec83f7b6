"""Turn hits into a verdict, a 0-100 risk score and a one-line explanation."""

from __future__ import annotations

from commandrisk.hits import DYNAMIC_MARK, Hit
from commandrisk.paths import DYN
from commandrisk.models import TECHNIQUES, Verdict

BANDS = {Verdict.ALLOW: (0, 29), Verdict.WARN: (30, 69), Verdict.BLOCK: (70, 100)}


def verdict_of(hits: list[Hit]) -> Verdict:
    """The most severe verdict among the hits (allow when none)."""
    worst = Verdict.ALLOW
    for h in hits:
        if h.verdict.severity > worst.severity:
            worst = h.verdict
    return worst


def risk_of(hits: list[Hit], verdict: Verdict) -> int:
    """Risk of the worst finding, nudged up by the others, kept inside the verdict's band."""
    low, high = BANDS[verdict]
    if not hits:
        return 0
    top = max((h.risk for h in hits if h.verdict == verdict), default=low)
    extra = sum(1 for h in hits if h.verdict != Verdict.ALLOW) - 1
    return max(low, min(high, top + min(10, 2 * max(extra, 0))))


def ordered(hits: list[Hit]) -> list[Hit]:
    """Most severe and risky first; duplicates (same rule and snippet) removed."""
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for h in sorted(hits, key=lambda h: (-h.verdict.severity, -h.risk)):
        key = (h.rule_id, h.snippet, h.message)
        if key not in seen:
            seen.add(key)
            unique.append(h)
    return unique


def explanation(hits: list[Hit], verdict: Verdict, commands: int) -> str:
    """One line: the verdict, the main reason and where."""
    if not hits or verdict == Verdict.ALLOW:
        noun = "command" if commands == 1 else "commands"
        if hits:
            return f"allow: policy allows {hits[0].message} ({hits[0].category.value})"
        return f"allow: no risky action found in {commands} {noun}"
    top = hits[0]
    snippet = " ".join(top.snippet.replace(DYN, DYNAMIC_MARK).split())
    if len(snippet) > 60:
        snippet = snippet[:57] + "..."
    more = sum(1 for h in hits[1:] if h.verdict != Verdict.ALLOW)
    tail = f" (+{more} more)" if more else ""
    technique = top.technique or TECHNIQUES[top.category]
    message = top.message.replace(DYN, DYNAMIC_MARK)
    return f"{verdict.value}: {message} [{top.category.value}, {technique}] in `{snippet}`{tail}"
