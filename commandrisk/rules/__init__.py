"""All rules, grouped by category; `evaluate` runs them over a scan."""

from __future__ import annotations

from dataclasses import replace

from commandrisk.hits import Hit
from commandrisk.models import Category, Verdict
from commandrisk.paths import Frame
from commandrisk.rules import (  # noqa: F401  (importing registers the rules)
    credentials,
    execution,
    filesystem,
    infra,
    interpreters,
    network,
    permissions,
    system,
)
from commandrisk.rules.base import BY_NAME, EVERY, WHOLE
from commandrisk.walker import Scan, SimpleCommand, scan_source


def evaluate(scan: Scan) -> list[tuple[SimpleCommand | None, Hit]]:
    """Run every applicable rule on every command; escalate what was hidden in decoded text."""
    hits: list[tuple[SimpleCommand | None, Hit]] = [(None, note) for note in scan.notes]
    for cmd in scan.commands:
        found: list[Hit] = []
        for rule in BY_NAME.get(cmd.name, ()):
            found.extend(rule(cmd, scan))
        for layer in _wrapper_layers(cmd):
            for rule in BY_NAME.get(layer.name, ()):
                found.extend(rule(layer, scan))
        for rule in EVERY:
            found.extend(rule(cmd, scan))
        if cmd.origin == "computed":
            found = [_escalate(h) for h in found]
        hits.extend((cmd, h) for h in found)
    for rule in WHOLE:
        hits.extend((None, h) for h in rule(scan))
    return hits


def _wrapper_layers(cmd: SimpleCommand) -> list[SimpleCommand]:
    """Each wrapper around `cmd` (`nsenter -t 1 -m`, `chroot /mnt`) as a command of its own, with the wrapped
    command after its words, so the rules that know the wrapper by name still see it."""
    layers = []
    for words in cmd.wrapper_argvs:
        if words and words[0].rsplit("/", 1)[-1] in BY_NAME:
            argv = [*words, *cmd.argv]
            layers.append(replace(cmd, argv=argv, words=[None] * len(argv), wrappers=[], wrapper_argvs=[]))
    return layers


def evaluate_text(text: str, frame: Frame, depth: int) -> list[Hit]:
    """Scan and judge a script found inside data (a cron line, an rc-file line, a Python string): the rules'
    findings, and the capability judge's blocks (code run from a temp dir, a fetched-and-run payload)."""
    from commandrisk.capabilities import judge
    from commandrisk.policy import load_policy

    scan = scan_source(text, frame, depth)
    blocks = [h for _, h in judge(scan, load_policy()) if h.verdict == Verdict.BLOCK]
    return [h for _, h in evaluate(scan)] + blocks


def _escalate(hit: Hit) -> Hit:
    """A risky action hidden in decoded text is blocked."""
    if hit.verdict == Verdict.WARN and hit.category != Category.OBFUSCATION:
        return hit.with_verdict(Verdict.BLOCK, max(hit.risk, 75))
    return hit
