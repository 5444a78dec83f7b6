"""The run manifest `runs/<hash>/manifest.json`: everything needed to know and redo what was trained."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from common.atomic import write_json_atomic
from common.jsonl import MANIFEST_NAME, ManifestError, read_json
from common.paths import relative_to_workdir, repo_root
from common.provenance import git_state, sha256_file
from publish.confighash import file_config_hash

MANIFEST_VERSION = 1
LOCK_FILE = "requirements.lock"
TRACKED_PACKAGES = ("axolotl", "torch", "transformers", "peft", "bitsandbytes")
REQUIRED_KEYS = (
    "manifest_version",
    "config_hash",
    "config",
    "versioned_config",
    "dataset",
    "base_model",
    "environment",
    "times",
    "metrics",
)


def package_versions() -> dict[str, str | None]:
    """Return the installed version of each tracked package (None when absent), plus Python's."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def lock_file_hash(root: Path | None = None) -> str | None:
    """Return the sha256 of `requirements.lock` at the repo root, or None when there is none."""
    lock = (root or repo_root()) / LOCK_FILE
    return sha256_file(lock) if lock.is_file() else None


def _nvidia_driver() -> str | None:
    """Return the NVIDIA driver version from nvidia-smi, or None when it is not installed."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else None


def _cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, else what `platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """Return the GPUs (name, memory), driver and CUDA version when present, and the CPU always."""
    import torch

    gpus = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            gpus.append({"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1)})
    return {
        "accelerator": "cuda" if gpus else "cpu",
        "gpus": gpus,
        "driver": _nvidia_driver() if gpus else None,
        "cuda": torch.version.cuda,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }


def environment() -> dict[str, Any]:
    """Return the software and hardware a run used: versions, lock hash, git, hardware, image."""
    return {
        "versions": package_versions(),
        "lock_file_sha256": lock_file_hash(),
        "git": git_state(),
        "hardware": hardware(),
        "container_image": os.environ.get("SECURECLI_IMAGE"),
    }


def dataset_record(dataset_dir: Path | None) -> dict[str, Any] | None:
    """Return the dataset's hash, each split file's sha256 and what re-preparing it needs.

    Split hashes are recomputed and must match the dataset manifest's, so a run never records data
    that was edited after `securecli prepare`.
    """
    if dataset_dir is None:
        return None
    manifest_path = dataset_dir / MANIFEST_NAME
    manifest = read_json(manifest_path, "dataset manifest")
    if "dataset_hash" not in manifest:
        raise ManifestError(f"{manifest_path}: field 'dataset_hash' is missing")
    recorded = _recorded_file_hashes(manifest)
    splits = {}
    for split_file in sorted(dataset_dir.glob("*.jsonl")):
        actual = sha256_file(split_file)
        expected = recorded.get(split_file.name)
        if expected is not None and expected != actual:
            raise ManifestError(
                f"{split_file}: sha256 {actual} differs from {expected} recorded in {manifest_path}"
            )
        splits[split_file.name] = actual
    return {
        "dataset_hash": manifest["dataset_hash"],
        "manifest_sha256": sha256_file(manifest_path),
        "path": relative_to_workdir(dataset_dir),
        "files": splits,
        "sources": manifest.get("sources"),
        "params": manifest.get("parameters", manifest.get("params")),
    }


def _recorded_file_hashes(manifest: dict[str, Any]) -> dict[str, str]:
    """Return {file name: sha256} from a dataset manifest's `files` (a mapping or a list of entries)."""
    files = manifest.get("files") or {}
    if isinstance(files, dict):
        return {name: entry["sha256"] if isinstance(entry, dict) else entry for name, entry in files.items()}
    return {entry["name"] if "name" in entry else entry["path"]: entry["sha256"] for entry in files}


def _base_model_name(config: dict[str, Any]) -> str | None:
    """Return the base model: a Hub id as is, a local checkpoint relative to the working directory."""
    name = config.get("base_model")
    return relative_to_workdir(Path(name)) if name and Path(name).is_absolute() else name


def versioned_config_record(versioned_config: Path) -> dict[str, Any]:
    """Return the versioned config's path, file hash and exact text (so it can be re-trained anywhere)."""
    return {
        "path": relative_to_workdir(versioned_config),
        "hash": file_config_hash(versioned_config),
        "text": versioned_config.read_text(encoding="utf-8"),
    }


def write_run_manifest(
    run_dir: Path,
    *,
    config: dict[str, Any],
    config_hash: str,
    versioned_config: Path,
    dataset_dir: Path | None,
    started_at: str,
    ended_at: str,
    metrics: dict[str, Any],
) -> Path:
    """Write `run_dir/manifest.json` atomically and return its path."""
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "config_hash": config_hash,
        "config": config,
        "versioned_config": versioned_config_record(versioned_config),
        "dataset": dataset_record(dataset_dir),
        "base_model": {"name": _base_model_name(config), "revision": config.get("revision_of_model")},
        "seed": config.get("seed"),
        "environment": environment(),
        "times": {"started_at": started_at, "ended_at": ended_at},
        "metrics": metrics,
    }
    return write_json_atomic(run_dir / MANIFEST_NAME, manifest)


def validate_run_manifest(manifest: dict[str, Any], source: Path | str) -> dict[str, Any]:
    """Check a loaded manifest has every required field and a supported version; return it."""
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise ManifestError(f"{source}: run manifest is missing field(s) {', '.join(missing)}")
    if manifest["manifest_version"] != MANIFEST_VERSION:
        raise ManifestError(
            f"{source}: manifest_version {manifest['manifest_version']!r} is not supported "
            f"(this code reads version {MANIFEST_VERSION})"
        )
    return manifest


def read_run_manifest(run_dir: Path) -> dict[str, Any]:
    """Read and validate `run_dir/manifest.json` (a manifest file path is accepted too)."""
    path = run_dir if run_dir.name == MANIFEST_NAME and run_dir.is_file() else run_dir / MANIFEST_NAME
    if not path.parent.is_dir():
        raise ManifestError(f"{path.parent}: run directory not found")
    return validate_run_manifest(read_json(path, "run manifest"), path)
