"""Merge a run's LoRA adapter into its unquantized base, write safetensors shards, then prove the merge."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.atomic import staged_directory, write_json_atomic
from publish.confighash import load_config

MERGED_DIR = "merged"
ADAPTER_DIR = "adapter"
MERGE_REPORT = "merge_report.json"
MAX_SHARD_SIZE = "2GB"
SAMPLE_REQUESTS = (
    "list running docker containers",
    "find files larger than 100MB under /var/log",
    "show the last 20 lines of syslog and follow it",
    "wipe the disk",
)
# Tolerance on logits: atol + rtol * max|reference logit|. fp32 merges are exact up to summation
# order; bf16 rounds W + BA once more than the unmerged path does.
TOLERANCES = {"float32": (1e-4, 1e-4), "bfloat16": (1e-2, 5e-2)}


class MergeError(RuntimeError):
    """The merge could not be done, or its result does not match base + adapter."""


@dataclass(frozen=True)
class MergeResult:
    """Where the merged model went and how closely it reproduces base + adapter."""

    merged_dir: Path
    dtype: str
    base_model: str
    base_revision: str | None
    max_abs_diff: float
    tolerance: float
    adapter_effect: float

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready form (paths as strings)."""
        return {**asdict(self), "merged_dir": str(self.merged_dir)}


def base_of_run(run_dir: Path, adapter_dir: Path) -> tuple[str, str | None]:
    """Return the base model and its pinned revision: from the run's config, else adapter_config.json."""
    config_path = run_dir / "config.yml"
    if config_path.is_file():
        config = load_config(config_path)
        if config.get("base_model"):
            return str(config["base_model"]), config.get("revision_of_model")
    adapter_config = adapter_dir / "adapter_config.json"
    if not adapter_config.is_file():
        raise MergeError(f"{adapter_dir}: no adapter_config.json (is this a trained run's adapter?)")
    loaded = json.loads(adapter_config.read_text(encoding="utf-8"))
    return loaded["base_model_name_or_path"], loaded.get("revision")


def tolerance_for(dtype: str, reference_scale: float) -> float:
    """Return the allowed max abs logit difference for a merge in `dtype`."""
    atol, rtol = TOLERANCES[dtype]
    return atol + rtol * reference_scale


def check_logits(reference: list[Any], merged: list[Any], tolerance: float) -> float:
    """Return the max abs difference between two lists of logit tensors; raise beyond `tolerance`."""
    diffs = [float((ref.float() - new.float()).abs().max()) for ref, new in zip(reference, merged, strict=True)]
    worst = max(diffs)
    if not worst <= tolerance:
        raise MergeError(
            f"merged model logits differ from base+adapter by {worst:.3g} (max abs), above the tolerance "
            f"{tolerance:.3g}; per sample: {', '.join(f'{d:.3g}' for d in diffs)}"
        )
    return worst


def _sample_inputs(tokenizer: Any) -> list[Any]:
    """Tokenize the sample requests with the chat template the model was trained on."""
    from common.prompt import chat_messages

    encoded = []
    for request in SAMPLE_REQUESTS:
        ids = tokenizer.apply_chat_template(
            chat_messages(request), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        encoded.append(ids["input_ids"])
    return encoded


def _logits(model: Any, inputs: list[Any]) -> list[Any]:
    """Return the model's logits for each sample, on CPU."""
    import torch

    with torch.inference_mode():
        return [model(input_ids=ids.to(model.device)).logits.detach().cpu() for ids in inputs]


def _load_tokenizer(adapter_dir: Path, base_model: str, revision: str | None) -> Any:
    """Load the tokenizer saved with the adapter, else the base model's."""
    from transformers import AutoTokenizer

    if (adapter_dir / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(adapter_dir)
    return AutoTokenizer.from_pretrained(base_model, revision=revision)


def _load_base(base_model: str, revision: str | None, torch_dtype: Any) -> Any:
    """Load the base model unquantized in `torch_dtype`; refuse a pre-quantized checkpoint."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_model, revision=revision, dtype=torch_dtype)
    if getattr(model.config, "quantization_config", None):
        raise MergeError(f"{base_model}: checkpoint is quantized; merging needs unquantized bf16/fp32 weights")
    return model


def merge_run(run_dir: Path, *, dtype: str = "bfloat16", tolerance: float | None = None) -> MergeResult:
    """Merge `run_dir/adapter` into its base in `dtype`, write `run_dir/merged/`, and verify logits."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    if dtype not in TOLERANCES:
        raise MergeError(f"dtype must be one of {', '.join(TOLERANCES)} (never 4-bit), got {dtype!r}")
    adapter_dir = run_dir / ADAPTER_DIR
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        raise MergeError(f"{adapter_dir}: adapter_model.safetensors not found")
    base_model, revision = base_of_run(run_dir, adapter_dir)
    torch_dtype = getattr(torch, dtype)
    tokenizer = _load_tokenizer(adapter_dir, base_model, revision)
    inputs = _sample_inputs(tokenizer)

    model = PeftModel.from_pretrained(_load_base(base_model, revision, torch_dtype), adapter_dir)
    model.eval()
    reference = _logits(model, inputs)
    with model.disable_adapter():
        base_only = _logits(model, inputs)
    adapter_effect = max(float((r.float() - b.float()).abs().max()) for r, b in zip(reference, base_only))
    merged_model = model.merge_and_unload()

    target = run_dir / MERGED_DIR
    with staged_directory(target) as staging:
        merged_model.save_pretrained(staging, max_shard_size=MAX_SHARD_SIZE)
        tokenizer.save_pretrained(staging)
        del model, merged_model
        reloaded = AutoModelForCausalLM.from_pretrained(staging, dtype=torch_dtype)
        reloaded.eval()
        scale = max(float(r.float().abs().max()) for r in reference)
        allowed = tolerance if tolerance is not None else tolerance_for(dtype, scale)
        worst = check_logits(reference, _logits(reloaded, inputs), allowed)
        result = MergeResult(target, dtype, base_model, revision, worst, allowed, adapter_effect)
        write_json_atomic(staging / MERGE_REPORT, result.to_json())
    return result
