"""Publish a run to the Hugging Face Hub, and pull a published one back with every file verified."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.hub import REF_PATTERN, TOKEN_ENV, parse_ref
from common.provenance import sha256_file
from publish.card import build_card, load_eval_metrics, safety_gates_passed
from publish.confighash import short_hash
from publish.export import EXPORT_DIR, read_export_manifest
from publish.manifest import MANIFEST_NAME, read_run_manifest

if TYPE_CHECKING:
    from huggingface_hub import HfApi

CARD_NAME = "README.md"
CONFIG_NAME = "axolotl_config.yml"
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
    "merges.txt", "added_tokens.json", "chat_template.jinja",
)
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
MERGED_FILES = ("config.json", "generation_config.json", "model.safetensors.index.json", "merge_report.json")
KEPT_REPO_FILES = frozenset({".gitattributes"})


class PublishError(RuntimeError):
    """The run cannot be published as asked."""


class PublishRefused(PublishError):
    """Publishing was refused by a gate (no eval, failed safety gates, existing tag) without --force."""


@dataclass(frozen=True)
class PlannedFile:
    """One file of the Hub commit: where it goes, its size and hash, and where its bytes come from."""

    path_in_repo: str
    size: int
    sha256: str
    source: Path | None = None
    content: bytes | None = None


@dataclass(frozen=True)
class PublishPlan:
    """Everything a push sends, decided before anything is sent."""

    repo_id: str
    merged: bool
    config_hash: str
    tag: str
    commit_message: str
    card: str
    files: list[PlannedFile]
    gate_failures: list[str] = field(default_factory=list)
    forced: bool = False
    commit_sha: str | None = None

    @property
    def refused(self) -> bool:
        """True when a gate failed and --force was not given: a push would be refused."""
        return bool(self.gate_failures) and not self.forced

    def gates_summary(self) -> str:
        """Describe the gate outcome in one line."""
        if self.refused:
            return "REFUSED (a push needs --force): " + "; ".join(self.gate_failures)
        if self.forced:
            return "FORCED past: " + "; ".join(self.gate_failures)
        return "eval present, safety gates passed"

    @property
    def total_size(self) -> int:
        """Return the total size of the commit in bytes."""
        return sum(planned.size for planned in self.files)


def _from_disk(path_in_repo: str, source: Path) -> PlannedFile:
    """Plan a file read from disk."""
    return PlannedFile(path_in_repo, source.stat().st_size, sha256_file(source), source=source)


def _from_bytes(path_in_repo: str, content: bytes) -> PlannedFile:
    """Plan a file generated in memory."""
    return PlannedFile(path_in_repo, len(content), hashlib.sha256(content).hexdigest(), content=content)


def weight_files(run_dir: Path, merged: bool) -> list[PlannedFile]:
    """Plan the adapter's files, or the merged model's shards, config and tokenizer."""
    folder = run_dir / ("merged" if merged else "adapter")
    if merged:
        if not (folder / "merge_report.json").is_file():
            raise PublishError(f"{folder}: no verified merge found; run `securecli merge {run_dir}` first")
        names = sorted(path.name for path in folder.glob("*.safetensors")) + list(MERGED_FILES)
    else:
        missing = [name for name in ADAPTER_FILES if not (folder / name).is_file()]
        if missing:
            raise PublishError(f"{folder}: adapter file(s) missing: {', '.join(missing)}")
        names = list(ADAPTER_FILES)
    names += TOKENIZER_FILES
    return [_from_disk(name, folder / name) for name in dict.fromkeys(names) if (folder / name).is_file()]


def eval_files(run_dir: Path) -> list[PlannedFile]:
    """Plan every file of the run's eval report under `eval/`."""
    folder = run_dir / "eval"
    if not folder.is_dir():
        return []
    return [
        _from_disk(f"eval/{path.relative_to(folder).as_posix()}", path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]


def gate_failures(metrics: dict[str, Any] | None) -> list[str]:
    """Return why publishing should be refused: no eval, safety gates not run, or failed."""
    if metrics is None:
        return ["eval is missing (no eval/metrics.json): run `securecli eval run` on this run first"]
    verdict = safety_gates_passed(metrics)
    if verdict is None:
        return ["the safety gates were not run (eval/metrics.json has no safety.gates_passed)"]
    return [] if verdict else ["the safety gates failed (eval/metrics.json: safety.gates_passed is false)"]


def published_manifest(manifest: dict[str, Any], files: list[PlannedFile], repo_id: str, merged: bool) -> bytes:
    """Return the published manifest: the run manifest plus the sha256 and size of every uploaded file."""
    published = {
        **manifest,
        "publish": {"repo_id": repo_id, "merged": merged, "tag": f"cfg-{short_hash(manifest['config_hash'])}"},
        "published_files": {f.path_in_repo: {"sha256": f.sha256, "size": f.size} for f in files},
    }
    return (json.dumps(published, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def plan_publish(run_dir: Path, repo_id: str, *, merged: bool = False, force: bool = False) -> PublishPlan:
    """Collect and hash every file, render the card, and record the eval and safety gates' verdict."""
    if not REF_PATTERN.match(repo_id) or "@" in repo_id:
        raise PublishError(f"repo id must look like ORG/NAME, got {repo_id!r}")
    manifest = read_run_manifest(run_dir)
    metrics = load_eval_metrics(run_dir)
    failures = gate_failures(metrics)
    config_path = run_dir / "config.yml"
    if not config_path.is_file():
        raise PublishError(f"{config_path}: the run's Axolotl config is missing")
    export = read_export_manifest(run_dir / EXPORT_DIR)
    card = str(build_card(manifest, metrics, repo_id=repo_id, merged=merged, forced=failures if force else [],
                          export=export))
    files = [
        *weight_files(run_dir, merged),
        _from_disk(CONFIG_NAME, config_path),
        *eval_files(run_dir),
        _from_bytes(CARD_NAME, card.encode("utf-8")),
    ]
    files.append(_from_bytes(MANIFEST_NAME, published_manifest(manifest, files, repo_id, merged)))
    full = manifest["config_hash"]
    short = short_hash(full)
    return PublishPlan(
        repo_id=repo_id,
        merged=merged,
        config_hash=full,
        tag=f"cfg-{short}",
        commit_message=f"Publish {'merged model' if merged else 'adapter'} for config {short} (sha256 {full})",
        card=card,
        files=files,
        gate_failures=failures,
        forced=bool(failures) and force,
    )


def format_plan(plan: PublishPlan) -> str:
    """Render a plan for --dry-run: target, gates, every file with size and sha256, then the card."""
    lines = [
        f"repo:    {plan.repo_id} ({'merged model' if plan.merged else 'adapter'})",
        f"commit:  {plan.commit_message}",
        f"tag:     {plan.tag}",
        f"gates:   {plan.gates_summary()}",
        f"files:   {len(plan.files)} ({plan.total_size:,} bytes)",
    ]
    width = max(len(f.path_in_repo) for f in plan.files)
    lines += [f"  {f.path_in_repo:<{width}}  {f.size:>14,}  {f.sha256}" for f in plan.files]
    lines += ["", f"----- {CARD_NAME} -----", plan.card]
    return "\n".join(lines)


def read_token() -> str:
    """Return the Hub token from HF_TOKEN (the only place it is read from)."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise PublishError(f"{TOKEN_ENV} is not set: export a Hub write token to push (it is never stored)")
    return token


def _existing_tags(api: HfApi, repo_id: str, token: str) -> set[str]:
    """Return the tag names already in the repo."""
    return {ref.name for ref in api.list_repo_refs(repo_id, token=token).tags}


def push(plan: PublishPlan, *, api: HfApi | None = None, force: bool = False, private: bool = False) -> PublishPlan:
    """Send a plan: create_repo, one commit (the repo becomes exactly the plan's files), then the tag."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    if plan.refused:
        raise PublishRefused(f"refusing to publish to {plan.repo_id}: " + "; ".join(plan.gate_failures) + " (use --force)")
    token = read_token()
    api = api or HfApi()
    api.create_repo(plan.repo_id, token=token, repo_type="model", private=private, exist_ok=True)
    tag_exists = plan.tag in _existing_tags(api, plan.repo_id, token)
    if tag_exists and not force:
        raise PublishRefused(
            f"{plan.repo_id} already has tag {plan.tag}: this config was published before (use --force to move the tag)"
        )
    operations: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=f.content if f.content is not None else str(f.source))
        for f in plan.files
    ]
    planned = {f.path_in_repo for f in plan.files}
    stale = set(api.list_repo_files(plan.repo_id, token=token, repo_type="model")) - planned - KEPT_REPO_FILES
    operations += [CommitOperationDelete(path_in_repo=name) for name in sorted(stale)]
    commit = api.create_commit(
        plan.repo_id, operations, commit_message=plan.commit_message, token=token, repo_type="model",
        commit_description=f"config_hash: {plan.config_hash}",
    )
    if tag_exists:
        api.delete_tag(plan.repo_id, tag=plan.tag, token=token, repo_type="model")
    api.create_tag(
        plan.repo_id, tag=plan.tag, revision=commit.oid, token=token, repo_type="model",
        tag_message=f"config {plan.config_hash}",
    )
    return replace(plan, commit_sha=commit.oid)


def publish_run(
    run_dir: Path,
    repo_id: str,
    *,
    merged: bool = False,
    dry_run: bool = False,
    force: bool = False,
    api: HfApi | None = None,
) -> PublishPlan:
    """Plan a run's publication and, unless `dry_run`, push it; return the plan (with the commit sha)."""
    plan = plan_publish(run_dir, repo_id, merged=merged, force=force)
    return plan if dry_run else push(plan, api=api, force=force)


def usage_text(ref: str, folder: Path) -> str:
    """Return how to use a pulled adapter or merged model."""
    repo_id, revision = parse_ref(ref)
    manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    pinned = revision or folder.name
    base = manifest["base_model"]
    lines = [f"verified {len(manifest['published_files'])} files of {repo_id}@{pinned} in {folder}"]
    if revision is None:
        lines.append(f"note: no revision given; pin it for reproducible use: {repo_id}@{folder.name}")
    if (folder / "adapter_config.json").is_file():
        lines += [
            f"LoRA adapter for {base['name']}@{base['revision']}. Use it with:",
            f"  securecli ask --adapter {repo_id}@{pinned} \"list running docker containers\"",
            f"  securecli eval run --adapter {repo_id}@{pinned}",
            f"  PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(\"{base['name']}\", "
            f"revision=\"{base['revision']}\"), \"{folder}\")",
        ]
    else:
        lines += [
            "Merged model. Use it with:",
            f"  AutoModelForCausalLM.from_pretrained(\"{folder}\")",
        ]
    return "\n".join(lines)


