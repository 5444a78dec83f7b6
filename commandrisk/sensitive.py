"""Worst-case reading of globs: the sensitive paths (from `sensitive_paths.yaml`) a pattern could name."""

from __future__ import annotations

import fnmatch
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict

from commandrisk.catalogue import load_yaml
from commandrisk.paths import Frame, Location


class SensitivePaths(BaseModel):
    """The data file's shape."""

    model_config = ConfigDict(extra="forbid")

    paths: list[str]


@lru_cache(maxsize=1)
def sensitive_paths() -> tuple[str, ...]:
    """The packaged list, validated once."""
    text = resources.files("commandrisk").joinpath("sensitive_paths.yaml").read_text(encoding="utf-8")
    return tuple(SensitivePaths.model_validate(load_yaml(text)).paths)


def worst_matches(pattern: str, frame: Frame, cwd: Location | None) -> list[str]:
    """Sensitive paths that `pattern` (a glob, resolved against `cwd`) could match, as words to substitute."""
    target = frame.locate(pattern, cwd)
    if target is None:
        return []
    return [word for word, candidate in _candidates(frame) if _glob_match(target, candidate)]


@lru_cache(maxsize=64)
def _candidates(frame: Frame) -> tuple[tuple[str, Location], ...]:
    """Each sensitive path as a word and as a location in `frame`."""
    found = []
    for path in sensitive_paths():
        candidate = frame.locate(path, None if path.startswith(("/", "~")) else frame.workspace)
        if candidate is not None:
            found.append((path if not path.startswith("./") else candidate.display(), candidate))
    return tuple(found)


def _glob_match(pattern: Location, path: Location) -> bool:
    """Segment-wise glob match, Bash style: `*` stays inside one segment and skips leading dots."""
    if pattern.anchor != path.anchor or pattern.up != path.up or len(pattern.parts) != len(path.parts):
        return False
    for glob, part in zip(pattern.parts, path.parts):
        if part.startswith(".") and not glob.startswith("."):
            return False
        if not fnmatch.fnmatchcase(part, glob):
            return False
    return any(any(c in "*?[" for c in glob) for glob in pattern.parts)
