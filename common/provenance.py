"""Where things come from: file hashes, the git state of the checkout, installed package folders."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
from pathlib import Path
from typing import Any

from common.paths import repo_root


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Return the sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _git(root: Path, *args: str) -> str | None:
    """Run a read-only git command in `root`; None when git or the repository is unavailable."""
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(root: Path | None = None) -> dict[str, Any]:
    """Return the checkout's commit (None before the first commit) and whether it has local changes."""
    root = root or repo_root()
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {
        "commit": _git(root, "rev-parse", "--verify", "--quiet", "HEAD"),
        "dirty": None if status is None else bool(status),
    }


def package_dir(name: str, hint: str) -> Path:
    """Return an installed package's folder without importing it; `hint` says how to install it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{name} is not installed: {hint}")
    return Path(next(iter(spec.submodule_search_locations)))
