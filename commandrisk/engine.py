"""`assess`: normalize, parse once, run the destructive-case rules and the capability judge, apply the policy,
explain the verdict. Only what is understood is allowed; whatever cannot be analysed is blocked."""

from __future__ import annotations

import posixpath
import re

from commandrisk import capabilities, explain
from commandrisk.hits import Hit
from commandrisk.models import TECHNIQUES, Assessment, Category, Context, Verdict
from commandrisk.normalize import MAX_INPUT, Normalized, normalize
from commandrisk.paths import Frame
from commandrisk.policy import Policy, load_policy
from commandrisk.rules import evaluate
from commandrisk.walker import SYSTEM_BIN_DIRS, Scan, SimpleCommand, scan_source


def assess(command: str, context: Context | None = None, policy: Policy | None = None) -> Assessment:
    """Judge one shell command line (or script). Never raises for str input; fails closed (block)."""
    policy = policy or load_policy()
    try:
        return _assess(command, context or Context(), policy)
    except RecursionError:
        hit = Hit(Category.UNPARSED, "guard.too_deeply_nested", Verdict.BLOCK, 75,
                  "nested too deeply to analyse, so it is blocked (fail closed)", _preview(command))
    except Exception as exc:  # noqa: BLE001 - fail closed on any analysis bug
        hit = Hit(Category.UNPARSED, "guard.internal_error", Verdict.BLOCK, 75,
                  f"could not be analysed ({type(exc).__name__}), so it is blocked (fail closed)", _preview(command))
    return _result(command, [hit], 0)


def _preview(command: str) -> str:
    """A short, printable start of the input for messages."""
    return normalize(command[:80]).text


def frame_for(context: Context, policy: Policy) -> Frame:
    """Where relative paths start and what the workspace is, from the context and policy."""
    workspace = context.workspace_root
    if workspace is None and policy.workspace_root is not None and context.cwd:
        workspace = posixpath.normpath(posixpath.join(context.cwd, policy.workspace_root))
    elif workspace is None and policy.workspace_root and policy.workspace_root.startswith("/"):
        workspace = policy.workspace_root
    return Frame.build(context.cwd, workspace, context.home)


def _assess(command: str, context: Context, policy: Policy) -> Assessment:
    normalized = normalize(command)
    frame = frame_for(context, policy)
    scan = scan_source(normalized.text, frame)
    pairs = evaluate(scan) + capabilities.judge(scan, policy)
    hits = _apply_policy(pairs, scan, policy)
    hits.extend(_parse_failures(scan))
    if scan.parse_errors:
        hits.extend(_rescued_blocks(normalized.text, frame))
    hits.extend(_input_findings(normalized))
    return _result(command, hits, len([c for c in scan.commands if c.argv]))


def _input_findings(normalized: Normalized) -> list[Hit]:
    """What normalizing the input changed: NUL bytes (which Bash drops), invalid Unicode, the length cap."""
    hits = []
    preview = normalized.text[:80]
    if normalized.nul_bytes:
        hits.append(Hit(Category.OBFUSCATION, "input.nul_bytes", Verdict.WARN, 55,
                        f"contains {normalized.nul_bytes} NUL byte(s), which Bash drops; judged without them",
                        preview, None, "T1027"))
    if normalized.invalid_characters:
        hits.append(Hit(Category.UNPARSED, "input.invalid_unicode", Verdict.WARN, 45,
                        f"contains {normalized.invalid_characters} invalid character(s) (lone surrogates)", preview))
    if normalized.truncated:
        hits.append(Hit(Category.UNPARSED, "input.too_long", Verdict.BLOCK, 75,
                        f"longer than {MAX_INPUT} characters; blocked without full inspection (fail closed)",
                        preview))
    return hits


def _apply_policy(pairs: list[tuple[SimpleCommand | None, Hit]], scan: Scan, policy: Policy) -> list[Hit]:
    """Prefix rules (deny > ask > allow) per command, then per-category actions."""
    decisions: dict[int, tuple[str, str] | None] = {}
    hits: list[Hit] = []
    has_rules = bool(policy.rules.allow or policy.rules.ask or policy.rules.deny)
    for cmd in scan.commands if has_rules else ():
        if not cmd.argv:
            continue
        decision = policy.decide([_policy_name(cmd), *cmd.args], cmd.wrappers)
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


def _rescued_blocks(text: str, frame: Frame) -> list[Hit]:
    """Input that does not parse is also read piece by piece, split at `;`, `&&`, `||`, `|` and newlines, so a
    destructive command next to a syntax error (`[ -d / ] && rm -rf /`) is still blocked."""
    pieces = [p.strip() for p in re.split(r"&&|\|\||[;|\n]", text) if p.strip()]
    if len(pieces) < 2:
        return []
    found = []
    for piece in pieces[:64]:
        scan = scan_source(piece, frame)
        found.extend(h for _, h in evaluate(scan) if h.verdict == Verdict.BLOCK)
    return found


def _policy_name(cmd: SimpleCommand) -> str:
    """The name policy rules match: the utility's name, or the path as written for a program outside system dirs."""
    program = cmd.argv[0]
    if "/" not in program or posixpath.dirname(posixpath.normpath(program)).strip("/") in SYSTEM_BIN_DIRS:
        return cmd.name
    return program


def _parse_failures(scan: Scan) -> list[Hit]:
    """Fail closed: input that does not parse as shell is never allowed."""
    if not scan.parse_errors:
        return []
    source, outer = scan.parse_errors[0]
    fragment = source.decode("utf-8", "replace")
    span = outer[0] if outer else None
    return [Hit(Category.UNPARSED, "unparsed.syntax_error", Verdict.WARN, 45,
                "does not parse as valid shell, so what it runs is unknown", fragment[:80].strip(), span)]


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
