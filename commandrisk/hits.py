"""The internal record a rule emits; turned into a public `Finding` after the policy is applied."""

from __future__ import annotations

from dataclasses import dataclass, replace

from commandrisk.models import TECHNIQUES, Category, Finding, Verdict
from commandrisk.paths import DYN

DYNAMIC_MARK = "<dynamic>"


@dataclass(frozen=True)
class Hit:
    """One rule match: what, how bad, where."""

    category: Category
    rule_id: str
    verdict: Verdict
    risk: int
    message: str
    snippet: str
    span: tuple[int, int] | None = None
    technique: str | None = None

    def with_verdict(self, verdict: Verdict, risk: int | None = None) -> Hit:
        """Copy with another verdict (and risk)."""
        return replace(self, verdict=verdict, risk=self.risk if risk is None else risk)

    def finding(self) -> Finding:
        """Convert to the public model."""
        return Finding(
            category=self.category,
            technique=self.technique or TECHNIQUES[self.category],
            rule_id=self.rule_id,
            snippet=self.snippet[:200].replace(DYN, DYNAMIC_MARK),
            span=self.span,
            message=self.message.replace(DYN, DYNAMIC_MARK),
            verdict=self.verdict,
        )
