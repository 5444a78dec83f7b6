"""Builders shared by the publish tests: a run with a real PEFT adapter, and a recording Hub API.

The recording API subclasses `HfApi`, checks every call binds to the real method's signature, and
materializes each commit as a Hugging Face cache (`models--ORG--NAME/{blobs,snapshots,refs}`), so
`snapshot_download` can read what was "pushed" offline.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationDelete, HfApi
from huggingface_hub.hf_api import CommitInfo, GitRefInfo, GitRefs, RepoUrl

from common.atomic import write_json_atomic
from common.paths import repo_root
from common.prompt import training_row
from publish.confighash import config_hash, load_config, short_hash
from publish.manifest import write_run_manifest

VERSIONED_CONFIG = repo_root() / "axolotl" / "qwen25-coder-7b-qlora.yml"
PAIRS = [
    ("list running docker containers", "docker ps"),
    ("show disk usage of the current directory", "du -sh ."),
    ("count lines in file.txt", "wc -l file.txt"),
    ("print the working directory", "pwd"),
    ("list all files including hidden ones", "ls -la"),
    ("show the last 20 lines of app.log", "tail -n 20 app.log"),
    ("find python files under src", "find src -name '*.py'"),
    ("show free memory in megabytes", "free -m"),
    ("wipe the disk", "# refused: destroys all data on the disk"),
    ("delete every file on the system", "# refused: deletes the whole filesystem"),
]


def write_dataset(folder: Path) -> Path:
    """Write a tiny prepared dataset (train/val chat JSONL + manifest.json) and return its folder."""
    folder.mkdir(parents=True, exist_ok=True)
    splits = {"train.jsonl": PAIRS * 4, "val.jsonl": PAIRS[:4]}
    files = {}
    for name, rows in splits.items():
        text = "".join(json.dumps(training_row(nl, cmd), sort_keys=True) + "\n" for nl, cmd in rows)
        (folder / name).write_text(text, encoding="utf-8")
        files[name] = {"sha256": hashlib.sha256(text.encode()).hexdigest()}
    dataset_hash = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    write_json_atomic(
        folder / "manifest.json",
        {"dataset_hash": dataset_hash, "files": files, "sources": [{"spec": "jsonl:pairs.jsonl", "kind": "jsonl"}],
         "parameters": {}},
    )
    return folder


def make_adapter(base: Path, target: Path, seed: int = 1) -> Path:
    """Save a LoRA adapter (q/k/v/o) on `base` whose B matrices are non-zero, plus the tokenizer."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    peft_model.save_pretrained(target)
    AutoTokenizer.from_pretrained(base).save_pretrained(target)
    return target


def make_run(root: Path, base: Path, *, metrics: dict[str, Any] | None = None) -> Path:
    """Build a run directory as `securecli train` lays it out, with a PEFT adapter instead of training."""
    dataset = write_dataset(root / "data" / "prepared" / "ds")
    config = load_config(VERSIONED_CONFIG)
    config.update(base_model=str(base), max_steps=2)
    config.pop("revision_of_model")
    full = config_hash(config)
    run_dir = root / "runs" / short_hash(full)
    make_adapter(base, run_dir / "adapter")
    (run_dir / "config.yml").write_text(json.dumps(config), encoding="utf-8")
    write_run_manifest(
        run_dir, config=config, config_hash=full, versioned_config=VERSIONED_CONFIG, dataset_dir=dataset,
        started_at="2025-01-01T00:00:00+00:00", ended_at="2025-01-01T00:01:00+00:00",
        metrics={"final_train_loss": 1.5, "final_eval_loss": 1.7, "global_step": 2},
    )
    if metrics is not None:
        write_json_atomic(run_dir / "eval" / "metrics.json", metrics)
        (run_dir / "eval" / "report.md").write_text("# eval report\n", encoding="utf-8")
    return run_dir


PASSING_EVAL = {
    "dataset": {"name": "securecli-prepared", "revision": "d" * 64, "split": "test"},
    "metrics": {"exact_match": 0.41, "execution_accuracy": 0.62},
    "safety": {
        "gates_passed": True, "suite_sha256": "e" * 64, "adversarial_pass_rate": 0.97, "benign_pass_rate": 0.95,
        "guarded_adversarial_pass_rate": 0.99, "guarded_benign_pass_rate": 0.93,
        "category_pass_rates": {"destructive": 1.0}, "guarded_category_pass_rates": {"destructive": 1.0},
        "over_refusal_rates": {"benign": 0.05, "near_miss": 0.1},
        "guarded_over_refusal_rates": {"benign": 0.07, "near_miss": 0.2},
        "gates": {"min_benign_pass_rate": 0.9}, "requests": 40,
    },
}


class RecordingHfApi(HfApi):
    """An `HfApi` that records calls (checked against the real signatures) and writes a local Hub cache."""

    def __init__(self, cache_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cache_dir = cache_dir
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.tags: dict[str, dict[str, str]] = {}

    def _record(self, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        bound = inspect.signature(getattr(HfApi, method)).bind(self, *args, **kwargs)
        arguments = {k: v for k, v in bound.arguments.items() if k != "self"}
        self.calls.append((method, arguments))
        return arguments

    def _storage(self, repo_id: str) -> Path:
        return self.cache_dir / f"models--{repo_id.replace('/', '--')}"

    def create_repo(self, *args: Any, **kwargs: Any) -> RepoUrl:
        arguments = self._record("create_repo", *args, **kwargs)
        (self._storage(arguments["repo_id"]) / "refs").mkdir(parents=True, exist_ok=True)
        return RepoUrl(f"https://huggingface.co/{arguments['repo_id']}")

    def list_repo_refs(self, *args: Any, **kwargs: Any) -> GitRefs:
        arguments = self._record("list_repo_refs", *args, **kwargs)
        tags = self.tags.get(arguments["repo_id"], {})
        return GitRefs(branches=[], converts=[], tags=[GitRefInfo(n, f"refs/tags/{n}", c) for n, c in tags.items()])

    def create_commit(self, *args: Any, **kwargs: Any) -> CommitInfo:
        arguments = self._record("create_commit", *args, **kwargs)
        storage = self._storage(arguments["repo_id"])
        main = storage / "refs" / "main"
        contents = self._snapshot_files(storage, main.read_text()) if main.is_file() else {}
        for operation in arguments["operations"]:
            if isinstance(operation, CommitOperationDelete):
                contents.pop(operation.path_in_repo)
                continue
            with operation.as_file() as handle:
                contents[operation.path_in_repo] = handle.read()
        tree = {k: hashlib.sha256(v).hexdigest() for k, v in sorted(contents.items())}
        parent = main.read_text() if main.is_file() else None
        oid = hashlib.sha1(json.dumps({"parent": parent, "tree": tree}).encode()).hexdigest()
        for path_in_repo, data in contents.items():
            blob = storage / "blobs" / hashlib.sha256(data).hexdigest()
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            link = storage / "snapshots" / oid / path_in_repo
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(Path(*[".."] * (len(Path(path_in_repo).parts) + 1), "blobs", blob.name))
        main.write_text(oid)
        return CommitInfo(
            commit_url=f"https://huggingface.co/{arguments['repo_id']}/commit/{oid}",
            commit_message=arguments["commit_message"], commit_description=arguments.get("commit_description") or "",
            oid=oid,
        )

    @staticmethod
    def _snapshot_files(storage: Path, oid: str) -> dict[str, bytes]:
        folder = storage / "snapshots" / oid
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    def list_repo_files(self, *args: Any, **kwargs: Any) -> list[str]:
        arguments = self._record("list_repo_files", *args, **kwargs)
        main = self._storage(arguments["repo_id"]) / "refs" / "main"
        return sorted(self._snapshot_files(main.parent.parent, main.read_text())) if main.is_file() else []

    def create_tag(self, *args: Any, **kwargs: Any) -> None:
        arguments = self._record("create_tag", *args, **kwargs)
        self.tags.setdefault(arguments["repo_id"], {})[arguments["tag"]] = arguments["revision"]
        (self._storage(arguments["repo_id"]) / "refs" / arguments["tag"]).write_text(arguments["revision"])

    def delete_tag(self, *args: Any, **kwargs: Any) -> None:
        arguments = self._record("delete_tag", *args, **kwargs)
        self.tags.get(arguments["repo_id"], {}).pop(arguments["tag"], None)
