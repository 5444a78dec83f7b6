"""The one default `Context`: where a command would run, for every caller (check, ask, prepare, eval)."""

from __future__ import annotations

import os
from pathlib import Path

from commandrisk.models import Context
from commandrisk.policy import Policy, load_policy


def default_context(policy: Policy | None = None, cwd: str | os.PathLike[str] | None = None) -> Context:
    """Context for commands run in `cwd` (default: the process's): its home, and the workspace root from the
    policy's `workspace_root`, else the enclosing git work tree, else `cwd` itself."""
    policy = policy or load_policy()
    here = Path(cwd) if cwd is not None else Path.cwd()
    here = here.resolve()
    if policy.workspace_root is not None:
        workspace = (here / policy.workspace_root).resolve()
    else:
        workspace = git_top_level(here) or here
    home = os.environ.get("HOME") or str(Path.home())
    return Context(cwd=str(here), workspace_root=str(workspace), home=home)


def git_top_level(start: Path) -> Path | None:
    """The nearest directory at or above `start` holding `.git` (a folder, or a worktree's file)."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None
