"""Versioned Axolotl configs: validation against axolotl's own schema, the CPU stand-in and GPU smoke overlays."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

from common.paths import repo_root
from publish.confighash import ConfigError, load_config

TINY_MAX_STEPS = 20
# What the CPU stand-in changes, and nothing else: CUDA-only features off, wandb offline, and one packed
# bin per step (each bin is `sequence_len` tokens of logits over a 151,680-token vocabulary).
TINY_OVERLAY: dict[str, Any] = {
    "lora_qkv_kernel": False,
    "lora_o_kernel": False,
    "lora_mlp_kernel": False,
    "bf16": False,
    "fp16": False,
    "tf32": False,
    "attn_implementation": "sdpa",
    "wandb_mode": "offline",
    "micro_batch_size": 1,
    "gradient_accumulation_steps": 1,
    "eval_batch_size": 1,
}
# In-training eval is dropped: axolotl always evaluates at step 0, and bitsandbytes' CPU backend then
# repacks the 4-bit weights for inference on AVX512-BF16 CPUs, after which training steps fail.
# Multi-GPU sharding (DeepSpeed, FSDP) is dropped too: the stand-in is one CPU process.
TINY_DROPPED = ("revision_of_model", "test_datasets", "eval_steps", "eval_strategy", "deepspeed", "fsdp", "fsdp_config")
GPU_SMOKE_MAX_STEPS = 20


def versioned_configs() -> list[Path]:
    """Return every versioned config in the repo's `axolotl/` folder, sorted by name."""
    return sorted((repo_root() / "axolotl").glob("*.yml"))


def _schema_field_names(model: type) -> set[str]:
    """Return the field names and aliases a pydantic model accepts."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        if field.alias:
            names.add(field.alias)
    return names


def _unknown_key_errors(config: dict[str, Any], path: Path) -> list[str]:
    """List keys axolotl's schema does not define (axolotl itself ignores them silently)."""
    from axolotl.utils.schemas.config import AxolotlConfigWCapabilities
    from axolotl.utils.schemas.datasets import SFTDataset

    errors = []
    top_level = _schema_field_names(AxolotlConfigWCapabilities)
    errors += [_unknown(path, key, top_level) for key in config if key not in top_level]
    dataset_fields = _schema_field_names(SFTDataset)
    for section in ("datasets", "test_datasets"):
        for index, entry in enumerate(config.get(section) or []):
            if isinstance(entry, dict):
                bad = [key for key in entry if key not in dataset_fields]
                errors += [_unknown(path, f"{section}[{index}].{key}", dataset_fields, key) for key in bad]
    return errors


def _unknown(path: Path, where: str, known: set[str], key: str | None = None) -> str:
    """Format one unknown-key error with the closest known key as a hint."""
    close = difflib.get_close_matches(key or where, sorted(known), n=1)
    hint = f" (did you mean `{close[0]}`?)" if close else ""
    return f"{path}: unknown key `{where}`{hint}"


def _schema_errors(config: dict[str, Any], path: Path) -> list[str]:
    """Run axolotl's pydantic validation and return its messages, each naming the file and field."""
    from axolotl.utils.config import validate_config as axolotl_validate
    from axolotl.utils.dict import DictDefault
    from pydantic import ValidationError

    try:
        axolotl_validate(DictDefault(copy.deepcopy(config)))
    except ValidationError as error:
        return [
            f"{path}: {'.'.join(str(part) for part in item['loc']) or '<config>'}: {item['msg']}"
            for item in error.errors()
        ]
    except ValueError as error:
        return [f"{path}: {error}"]
    return []


def check_config(config: dict[str, Any], source: Path) -> None:
    """Check a config mapping against axolotl's schema; raise ConfigError naming `source` and each field."""
    errors = _unknown_key_errors(config, source) + _schema_errors(config, source)
    if errors:
        raise ConfigError("\n".join(errors))


def validate_config(path: Path) -> dict[str, Any]:
    """Load a config file and check it against axolotl's schema."""
    config = load_config(path)
    check_config(config, path)
    return config


def apply_tiny_overlay(config: dict[str, Any], tiny_model: Path, max_steps: int = TINY_MAX_STEPS) -> dict[str, Any]:
    """Return the config as the CPU stand-in runs it: tiny base, no CUDA-only features, few steps."""
    overlaid = {**copy.deepcopy(config), **TINY_OVERLAY}
    for key in TINY_DROPPED:
        overlaid.pop(key, None)
    overlaid["base_model"] = str(tiny_model)
    overlaid["max_steps"] = max_steps
    overlaid["save_steps"] = min(overlaid.get("save_steps") or max_steps, max_steps)
    return overlaid


def apply_gpu_smoke_overlay(
    config: dict[str, Any], tiny_model: Path, max_steps: int = GPU_SMOKE_MAX_STEPS
) -> dict[str, Any]:
    """Return the config as the GPU smoke run trains it: every GPU setting kept, only the base model swapped.

    bf16/tf32, the fused LoRA kernels, NF4 QLoRA, flash-attention, packing and any DeepSpeed/FSDP section stay.
    Besides the base (and its commit pin), only the run length changes: few steps, saving and evaluating at the
    last one, and wandb offline, so that the loss and the adapter come back without an account.
    """
    overlaid = copy.deepcopy(config)
    overlaid.pop("revision_of_model", None)
    overlaid["base_model"] = str(tiny_model)
    overlaid["max_steps"] = max_steps
    overlaid["save_steps"] = min(overlaid.get("save_steps") or max_steps, max_steps)
    if overlaid.get("eval_steps"):
        overlaid["eval_steps"] = min(overlaid["eval_steps"], max_steps)
    overlaid["wandb_mode"] = "offline"
    return overlaid
