"""Content-addressed, atomic output: `<out_root>/<dataset-hash>/` plus the `latest` symlink."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from common.atomic import point_symlink, staged_directory
from common.jsonl import json_bytes
from common.processes import owned_prefix, sweep_stale
from common.provenance import git_state

LATEST = "latest"
# Work folders inside out_root, each named after the pid that made it (see `sweep_stale`).
TEMP_PREFIXES = (".tmp-", ".trash-", f".{LATEST}-")





def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def dataset_hash(split_files: dict[str, bytes], params: dict[str, Any]) -> str:
    """Return the 16-hex content address of the split files plus the content-deciding parameters."""
    identity = {"files": {name: sha256_bytes(data) for name, data in sorted(split_files.items())}, "params": params}
    return sha256_bytes(json_bytes(identity))[:16]


def code_version() -> dict[str, Any]:
    """Return the package version and, when the checkout is a git repo, its commit and dirty flag."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("securecli-tuner")
    except PackageNotFoundError:
        package = None
    git = git_state()
    dirty = git["dirty"] if git["commit"] else None
    return {"package": "securecli-tuner", "version": package, "git_commit": git["commit"], "git_dirty": dirty}


def write_dataset(out_root: Path, name: str, files: dict[str, bytes]) -> Path:
    """Write files into `out_root/name` atomically (temp dir, then rename) and point `latest` at it.

    Temp folders that a killed earlier run left behind are removed first.
    """
    out_root.mkdir(parents=True, exist_ok=True)
    for prefix in TEMP_PREFIXES:
        sweep_stale(out_root, prefix)
    final = out_root / name
    if not _matches(final, files):
        with staged_directory(final, prefix=f"{owned_prefix('.tmp-')}{name}-") as tmp:
            for filename, data in files.items():
                with open(tmp / filename, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
    point_latest(out_root, name)
    return final


def _matches(folder: Path, files: dict[str, bytes]) -> bool:
    """Tell whether a folder already holds exactly these files (a re-run of the same inputs)."""
    if not folder.is_dir() or sorted(p.name for p in folder.iterdir()) != sorted(files):
        return False
    return all((folder / name).read_bytes() == data for name, data in files.items())


def point_latest(out_root: Path, name: str) -> None:
    """Atomically make the relative symlink `out_root/latest` point at `name`."""
    point_symlink(out_root / LATEST, name)
