"""`assess`: parse a command, run the rules, apply the policy, explain the verdict."""

from __future__ import annotations

import posixpath

from commandrisk import explain
from commandrisk.hits import Hit
from commandrisk.models import TECHNIQUES, Assessment, Category, Context, Verdict
from commandrisk.paths import Frame
from commandrisk.policy import Policy, load_policy
from commandrisk.rules import evaluate
from commandrisk.walker import RISKY_TOKEN_RE, Scan, SimpleCommand, scan_source

MAX_INPUT = 200_000


def assess(command: str, context: Context | None = None, policy: Policy | None = None) -> Assessment:
    """Judge one shell command line (or script). Never raises for str input."""
    policy = policy or load_policy()
    try:
        return _assess(command, context or Context(), policy)
    except RecursionError:
        hit = Hit(Category.UNPARSED, "guard.too_deeply_nested", Verdict.WARN, 60,
                  "nested too deeply to analyse", command[:80])
    except Exception as exc:  # noqa: BLE001 - fail closed on any analysis bug
        hit = Hit(Category.UNPARSED, "guard.internal_error", Verdict.WARN, 60,
                  f"could not be analysed ({type(exc).__name__})", command[:80])
    return _result(command, [hit], 0)


def frame_for(context: Context, policy: Policy) -> Frame:
    """Where relative paths start and what the workspace is, from the context and policy."""
    workspace = context.workspace_root
    if workspace is None and policy.workspace_root is not None and context.cwd:
        workspace = posixpath.normpath(posixpath.join(context.cwd, policy.workspace_root))
    elif workspace is None and policy.workspace_root and policy.workspace_root.startswith("/"):
        workspace = policy.workspace_root
    return Frame.build(context.cwd, workspace, context.home)


def _assess(command: str, context: Context, policy: Policy) -> Assessment:
    text = command if len(command) <= MAX_INPUT else command[:MAX_INPUT]
    frame = frame_for(context, policy)
    scan = scan_source(text, frame)
    pairs = evaluate(scan)
    hits = _apply_policy(pairs, scan, policy)
    hits.extend(_parse_failures(scan, text, hits))
    if len(command) > MAX_INPUT:
        hits.append(Hit(Category.UNPARSED, "guard.input_truncated", Verdict.WARN, 40,
                        f"only the first {MAX_INPUT} characters were inspected", command[:80]))
    return _result(command, hits, len([c for c in scan.commands if c.argv]))


def _apply_policy(pairs: list[tuple[SimpleCommand | None, Hit]], scan: Scan, policy: Policy) -> list[Hit]:
    """Prefix rules (deny > ask > allow) per command, then per-category actions."""
    decisions: dict[int, tuple[str, str] | None] = {}
    hits: list[Hit] = []
    has_rules = bool(policy.rules.allow or policy.rules.ask or policy.rules.deny)
    for cmd in scan.commands if has_rules else ():
        if not cmd.argv:
            continue
        decision = policy.decide([cmd.name, *cmd.args], cmd.wrappers)
        decisions[id(cmd)] = decision
        if decision and decision[0] == "deny":
            hits.append(Hit(Category.POLICY, "policy.deny", Verdict.BLOCK, 90,
                            f"matches deny rule '{decision[1]}'", cmd.snippet, cmd.span, TECHNIQUES[Category.POLICY]))
        elif decision and decision[0] == "ask":
            hits.append(Hit(Category.POLICY, "policy.ask", Verdict.WARN, 40,
                            f"matches ask rule '{decision[1]}'", cmd.snippet, cmd.span, TECHNIQUES[Category.POLICY]))
    for cmd, hit in pairs:
        decision = decisions.get(id(cmd)) if cmd is not None else None
        if decision and decision[0] == "allow":
            continue
        action = policy.action(hit.category)
        if action != "default":
            verdict = Verdict(action)
            if verdict != hit.verdict:
                low, high = explain.BANDS[verdict]
                hit = hit.with_verdict(verdict, max(low, min(high, hit.risk)))
        hits.append(hit)
    return hits


def _parse_failures(scan: Scan, text: str, hits: list[Hit]) -> list[Hit]:
    """Fail closed: input that did not parse cleanly and carries a risky token is at least warn."""
    if not scan.parse_errors or any(h.verdict != Verdict.ALLOW for h in hits):
        return []
    source, outer = scan.parse_errors[0]
    fragment = source.decode("utf-8", "replace")
    if not RISKY_TOKEN_RE.search(fragment):
        return []
    span = outer[0] if outer else None
    return [Hit(Category.UNPARSED, "unparsed.risky_token", Verdict.WARN, 45,
                "does not parse as valid shell and contains risky words", fragment[:80].strip(), span)]


def _result(command: str, hits: list[Hit], commands: int) -> Assessment:
    """Build the public Assessment."""
    hits = explain.ordered(hits)
    verdict = explain.verdict_of(hits)
    return Assessment(
        command=command,
        verdict=verdict,
        risk=explain.risk_of(hits, verdict),
        findings=[h.finding() for h in hits],
        explanation=explain.explanation(hits, verdict, commands),
    )
