"""`securecli reproduce HASH`: re-prepare the data, retrain, and report every difference from the record."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from common.jsonl import flatten_json
from common.paths import data_dir, repo_root, runs_dir
from common.provenance import sha256_file
from publish.confighash import file_config_hash, load_config, short_hash
from publish.manifest import MANIFEST_NAME, ManifestError, read_run_manifest

HASH_PREFIX = re.compile(r"^[0-9a-f]{6,64}$")
ENVIRONMENT_FIELDS = ("versions", "lock_file_sha256", "git", "hardware", "container_image")


class ReproduceError(RuntimeError):
    """The hash cannot be resolved, or the run cannot be redone as recorded."""


@dataclass(frozen=True)
class Tolerance:
    """A metric matches when |reproduced - recorded| <= abs + rel * |recorded|."""

    abs: float
    rel: float

    def allows(self, recorded: float, reproduced: float) -> bool:
        """Tell whether two values agree within this tolerance."""
        return abs(reproduced - recorded) <= self.abs + self.rel * abs(recorded)


# Same hardware and versions give identical numbers; other GPUs or kernels may move losses a little.
DEFAULT_TOLERANCE = Tolerance(abs=1e-4, rel=0.02)
EXACT_METRICS = frozenset({"global_step"})


@dataclass(frozen=True)
class Difference:
    """One compared field: recorded and reproduced values, and whether the difference is acceptable."""

    kind: str
    name: str
    recorded: Any
    reproduced: Any
    ok: bool
    note: str = ""


@dataclass
class ReproduceReport:
    """The outcome of a reproduction: what was redone and every field compared."""

    config_hash: str
    recorded_from: Path
    run_dir: Path | None = None
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when data, config and metrics all match within tolerance."""
        return all(difference.ok for difference in self.differences)

    @property
    def mismatches(self) -> list[Difference]:
        """Return the compared fields whose values differ (acceptable or not)."""
        return [d for d in self.differences if d.recorded != d.reproduced]


def _manifests_under(root: Path, pattern: str) -> list[Path]:
    """Return manifest files matching a glob under `root` (none when it does not exist)."""
    return sorted(root.glob(pattern)) if root.is_dir() else []


def _hub_cache() -> Path:
    """Return the Hugging Face hub cache directory."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def candidate_manifests(runs_root: Path | None = None, hub_cache: Path | None = None) -> list[Path]:
    """Return local run manifests, then manifests of runs pulled into the Hub cache."""
    return [
        *_manifests_under(runs_root or runs_dir(), f"*/{MANIFEST_NAME}"),
        *_manifests_under(hub_cache or _hub_cache(), f"models--*/snapshots/*/{MANIFEST_NAME}"),
    ]


def _load_candidate(path: Path) -> dict[str, Any] | None:
    """Read a candidate manifest, skipping unreadable ones and files that are not run manifests."""
    try:
        return read_run_manifest(path)
    except ManifestError:
        return None


def resolve(ref: str, *, runs_root: Path | None = None, hub_cache: Path | None = None) -> tuple[dict[str, Any], Path]:
    """Resolve a manifest path, or a (short or full) config hash, to a recorded run manifest."""
    path = Path(ref).expanduser()
    if path.exists():
        return read_run_manifest(path), path if path.is_file() else path / MANIFEST_NAME
    prefix = ref.lower()
    if not HASH_PREFIX.match(prefix):
        raise ReproduceError(f"{ref!r} is neither a manifest path nor a config hash (6 to 64 hex characters)")
    matches: dict[str, tuple[dict[str, Any], Path]] = {}
    for manifest_path in candidate_manifests(runs_root, hub_cache):
        manifest = _load_candidate(manifest_path)
        if manifest and (
            manifest["config_hash"].startswith(prefix) or manifest["versioned_config"]["hash"].startswith(prefix)
        ):
            matches.setdefault(manifest["config_hash"], (manifest, manifest_path))
    if len(matches) > 1:
        listed = "\n  ".join(f"{short_hash(h)}  {p}" for h, (_, p) in sorted(matches.items()))
        raise ReproduceError(f"hash prefix {ref!r} is ambiguous; it matches:\n  {listed}")
    if matches:
        return next(iter(matches.values()))
    configs = [c for c in sorted((repo_root() / "axolotl").glob("*.yml")) if file_config_hash(c).startswith(prefix)]
    if configs:
        raise ReproduceError(
            f"{ref} is the versioned config {configs[0]}, but no recorded run of it was found under "
            f"{runs_root or runs_dir()} or in the Hub cache: train it (`securecli train {configs[0]}`) or "
            "pull a published run (`securecli pull ORG/NAME@cfg-<hash>`) first"
        )
    raise ReproduceError(f"no run manifest or versioned config has a hash starting with {ref!r}")


def _versioned_config_file(manifest: dict[str, Any], out_root: Path) -> Path:
    """Return the versioned config as recorded: the checked-in file if unchanged, else the recorded text."""
    record = manifest["versioned_config"]
    checked_in = Path(record["path"])
    candidates = [checked_in, repo_root() / checked_in] if not checked_in.is_absolute() else [checked_in]
    for candidate in candidates:
        if candidate.is_file() and file_config_hash(candidate) == record["hash"]:
            return candidate
    restored = out_root / Path(record["path"]).name
    restored.write_text(record["text"], encoding="utf-8")
    if file_config_hash(restored) != record["hash"]:
        raise ReproduceError(f"the recorded config text does not hash to the recorded {record['hash']}")
    return restored


def _prepare_sources(dataset: dict[str, Any]) -> list[str]:
    """Return the recorded sources as spec strings, with each Hub revision pinned."""
    specs = []
    for source in dataset.get("sources") or []:
        if isinstance(source, str):
            specs.append(source)
            continue
        spec, revision = source["spec"], source.get("revision")
        if source.get("kind") == "hf" and revision and "@" not in spec:
            repo, _, columns = spec.partition("#")
            spec = f"{repo}@{revision}" + (f"#{columns}" if columns else "")
        specs.append(spec)
    if not specs:
        raise ReproduceError("the run manifest records no dataset sources, so the data cannot be re-prepared")
    return specs


def reprepare(manifest: dict[str, Any], out_root: Path | None = None) -> tuple[Path, Difference]:
    """Re-run `prepare` with the recorded sources and params; return its directory and the hash comparison."""
    from preprocessing.params import PrepareParams
    from preprocessing.pipeline import prepare

    dataset = manifest.get("dataset")
    if not dataset:
        raise ReproduceError("the run manifest records no dataset, so the data cannot be re-prepared")
    params = PrepareParams.model_validate(dataset.get("params") or {})
    result = prepare(_prepare_sources(dataset), out_root or data_dir() / "prepared", params)
    same = result.dataset_hash == dataset["dataset_hash"]
    return Path(result.out_dir), Difference("dataset", "dataset_hash", dataset["dataset_hash"], result.dataset_hash, same)


def _training_overlay(manifest: dict[str, Any], versioned: dict[str, Any]) -> tuple[bool, int | None]:
    """Infer how the run was launched: with the tiny CPU stand-in or not, and any max_steps override."""
    config = manifest["config"]
    tiny = str(config.get("base_model")) != str(versioned.get("base_model"))
    max_steps = config.get("max_steps")
    return tiny, max_steps if (tiny or max_steps != versioned.get("max_steps")) else None


def compare_metrics(
    recorded: dict[str, Any], reproduced: dict[str, Any], tolerance: Tolerance = DEFAULT_TOLERANCE
) -> list[Difference]:
    """Compare every recorded metric; numbers within tolerance are ok, other values must be equal."""
    differences = []
    for name in sorted(set(recorded) | set(reproduced)):
        old, new = recorded.get(name), reproduced.get(name)
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (old, new))
        if numeric and name not in EXACT_METRICS:
            ok = tolerance.allows(float(old), float(new))
            note = f"tolerance {tolerance.abs:g} + {tolerance.rel:g} x |recorded|"
        else:
            ok, note = old == new, "must be equal"
        differences.append(Difference("metric", name, old, new, ok, note))
    return differences



def compare_environment(recorded: dict[str, Any], reproduced: dict[str, Any]) -> list[Difference]:
    """List every environment field (versions, lock, git, hardware, image); differences are reported, not fatal."""
    old = flatten_json({k: recorded["environment"].get(k) for k in ENVIRONMENT_FIELDS}, "environment")
    new = flatten_json({k: reproduced["environment"].get(k) for k in ENVIRONMENT_FIELDS}, "environment")
    return [
        Difference("environment", name, old.get(name), new.get(name), True, "informational")
        for name in sorted(set(old) | set(new))
    ]


def _adapter_hash(manifest: dict[str, Any], manifest_path: Path) -> str | None:
    """Return the recorded adapter's sha256: from the published file list, else the local run's file."""
    published = (manifest.get("published_files") or {}).get("adapter_model.safetensors")
    if published:
        return published["sha256"]
    local = manifest_path.parent / "adapter" / "adapter_model.safetensors"
    return sha256_file(local) if local.is_file() else None


def reproduce(
    ref: str,
    *,
    runs_root: Path | None = None,
    prepared_root: Path | None = None,
    hub_cache: Path | None = None,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> ReproduceReport:
    """Resolve `ref`, re-prepare and check the data, retrain into a fresh directory, and compare."""
    from securecli.train import train

    manifest, manifest_path = resolve(ref, runs_root=runs_root, hub_cache=hub_cache)
    report = ReproduceReport(manifest["config_hash"], manifest_path)
    dataset_dir, dataset_check = reprepare(manifest, prepared_root)
    report.differences.append(dataset_check)
    if not dataset_check.ok:
        return report
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_root = (runs_root or runs_dir()) / "reproductions" / f"{short_hash(manifest['config_hash'])}-{stamp}"
    out_root.mkdir(parents=True, exist_ok=True)
    config_file = _versioned_config_file(manifest, out_root)
    tiny, max_steps = _training_overlay(manifest, load_config(config_file))
    result = train(config_file, tiny=tiny, data_dir=dataset_dir, max_steps=max_steps, runs_root=out_root)
    report.run_dir = result.run_dir
    redone = read_run_manifest(result.run_dir)
    report.differences.append(
        Difference("config", "config_hash", manifest["config_hash"], result.config_hash,
                   manifest["config_hash"] == result.config_hash)
    )
    report.differences += compare_metrics(manifest["metrics"], redone["metrics"], tolerance)
    recorded_adapter = _adapter_hash(manifest, manifest_path)
    new_adapter = sha256_file(result.adapter_dir / "adapter_model.safetensors")
    report.differences.append(
        Difference("adapter", "adapter_model.safetensors sha256", recorded_adapter, new_adapter, True,
                   "byte-identical" if recorded_adapter == new_adapter else "bytes differ (metrics decide)")
    )
    report.differences += compare_environment(manifest, redone)
    return report


def format_report(report: ReproduceReport) -> str:
    """Render a report: the verdict, every difference, then the fields that matched."""
    lines = [
        f"config {report.config_hash} (recorded in {report.recorded_from})",
        f"reproduced run: {report.run_dir or 'not trained (data differs)'}",
        f"verdict: {'REPRODUCED within tolerance' if report.ok else 'NOT REPRODUCED'}",
        "",
        "differences:",
    ]
    mismatches = report.mismatches
    lines += [
        f"  [{'ok' if d.ok else 'FAIL'}] {d.kind}: {d.name}: recorded {d.recorded!r} -> reproduced {d.reproduced!r}"
        + (f" ({d.note})" if d.note else "")
        for d in mismatches
    ] or ["  none"]
    same = [d for d in report.differences if d not in mismatches]
    lines += ["", f"identical ({len(same)}):"] + [f"  {d.kind}: {d.name} = {d.recorded!r}" for d in same]
    return "\n".join(lines)
