"""Guard policy: an action per category, allow/ask/deny prefix rules, and the workspace root."""

from __future__ import annotations

import fnmatch
import shlex
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from commandrisk.catalogue import Capability
from commandrisk.models import Category

Action = Literal["default", "allow", "warn", "block"]
Decision = Literal["allow", "ask", "deny"]


class PolicyError(ValueError):
    """A policy file that cannot be read or does not validate; names the file, line and field."""


class PrefixRules(BaseModel):
    """Command prefixes (shell words, `*` globs allowed per word); deny beats ask beats allow."""

    model_config = ConfigDict(extra="forbid")

    allow: list[str] = Field(default_factory=list)
    ask: list[str] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list)

    @field_validator("allow", "ask", "deny")
    @classmethod
    def _parseable(cls, rules: list[str]) -> list[str]:
        for rule in rules:
            try:
                words = shlex.split(rule)
            except ValueError as exc:
                raise ValueError(f"rule {rule!r} is not valid shell words: {exc}") from exc
            if not words:
                raise ValueError("empty rule")
        return rules


class Policy(BaseModel):
    """What the guard does with each category and which command prefixes are always allowed, asked or denied."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    workspace_root: str | None = Field(
        default=None, description="directory commands may modify; relative to the cwd; None = the cwd"
    )
    categories: dict[Category, Action] = Field(
        default_factory=dict, description="default = the rule's own verdict; allow/warn/block override it"
    )
    rules: PrefixRules = Field(default_factory=PrefixRules)
    capabilities: dict[Capability, Literal["allow", "warn", "block"]] = Field(
        default_factory=dict, description="verdict for running a program with this capability (missing = warn)"
    )
    workspace_programs: list[str] = Field(
        default_factory=list, description="globs of workspace paths that may run as programs (`./gradlew`)"
    )
    git_remotes: list[str] = Field(default_factory=list, description="remotes `git push` may reach without asking")
    _split_rules: dict[str, list[tuple[str, ...]]] | None = PrivateAttr(default=None)

    def action(self, category: Category) -> Action:
        """The configured action for a category."""
        return self.categories.get(category, "default")

    def capability_verdict(self, capability: Capability) -> str:
        """allow, warn or block for running a program with `capability`; unlisted capabilities ask."""
        return self.capabilities.get(capability, "warn")

    def allows_workspace_program(self, path: str) -> bool:
        """True when the workspace-relative `path` matches a `workspace_programs` glob."""
        path = path[2:] if path.startswith("./") else path
        return any(fnmatch.fnmatchcase(path, p[2:] if p.startswith("./") else p) for p in self.workspace_programs)

    def decide(self, argv: list[str], wrappers: list[str]) -> tuple[Decision, str] | None:
        """The strongest prefix rule matching a command (with its wrappers), or None."""
        if self._split_rules is None:
            self._split_rules = {
                name: [tuple(shlex.split(r)) for r in getattr(self.rules, name)] for name in ("deny", "ask", "allow")
            }
        for decision in ("deny", "ask", "allow"):
            for rule in self._split_rules[decision]:
                if _matches(rule, argv) or (decision == "deny" and len(rule) == 1 and rule[0] in wrappers):
                    return decision, " ".join(rule)
        return None


def _matches(rule: tuple[str, ...], argv: list[str]) -> bool:
    """Word-wise prefix match with globs."""
    if len(argv) < len(rule):
        return False
    return all(word == pattern or fnmatch.fnmatchcase(word, pattern) for word, pattern in zip(argv, rule))


def load_policy(path: str | Path | None = None) -> Policy:
    """Load and validate a policy YAML file; None loads the packaged default policy."""
    if path is None:
        return _default_policy()
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{source}: cannot read policy: {exc.strerror or exc}") from exc
    return parse_policy(text, str(source))


def parse_policy(text: str, name: str = "<policy>", base: Policy | None = None) -> Policy:
    """Validate policy YAML text and lay it over `base` (default: the packaged policy): `categories` and
    `capabilities` are merged key by key, every other field given replaces the base's. Errors name the file,
    line and field."""
    user = _validate(text, name)
    base = _default_policy() if base is None else base
    merged = base.model_dump()
    for field in user.model_fields_set:
        value = getattr(user, field)
        if field in ("categories", "capabilities"):
            merged[field] = {**merged[field], **value}
        else:
            merged[field] = value.model_dump() if isinstance(value, BaseModel) else value
    return Policy.model_validate(merged)


def _validate(text: str, name: str) -> Policy:
    """The policy text alone, validated."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise PolicyError(f"{name}{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(f"{name}:1: a policy must be a mapping, got {type(data).__name__}")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = [str(part) for part in error["loc"]]
        line = _line_of(text, location)
        raise PolicyError(f"{name}:{line}: field {'.'.join(location) or '<root>'}: {error['msg']}") from exc


def _line_of(text: str, location: list[str]) -> int:
    """1-based line of the YAML node at `location` (or of its nearest existing parent)."""
    node: Any = yaml.compose(text)
    line = node.start_mark.line + 1 if node is not None else 1
    for part in location:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if str(k.value) == part), None)
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            child = node.value[int(part)]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


@lru_cache(maxsize=1)
def _default_policy() -> Policy:
    """The policy shipped as package data."""
    text = resources.files("commandrisk").joinpath("default_policy.yaml").read_text(encoding="utf-8")
    return _validate(text, "commandrisk/default_policy.yaml")
