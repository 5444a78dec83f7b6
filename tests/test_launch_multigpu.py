"""The multi-GPU config is the single-GPU run plus DeepSpeed ZeRO-2, and axolotl's schema accepts it."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SINGLE = ROOT / "axolotl" / "qwen25-coder-7b-qlora.yml"
MULTI = ROOT / "axolotl" / "qwen25-coder-7b-qlora-multigpu.yml"
RUN_NAMING_KEYS = {"dataset_prepared_path", "output_dir", "wandb_name"}
MULTI_GPU_KEYS = {"deepspeed", "ddp_find_unused_parameters", "gradient_accumulation_steps"}


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_only_the_multi_gpu_keys_differ() -> None:
    single, multi = _load(SINGLE), _load(MULTI)
    changed = {key for key in single.keys() | multi.keys() if single.get(key) != multi.get(key)}
    assert changed == RUN_NAMING_KEYS | MULTI_GPU_KEYS


def test_global_batch_on_two_gpus_equals_the_single_gpu_run() -> None:
    single, multi = _load(SINGLE), _load(MULTI)
    per_step = lambda cfg, gpus: cfg["micro_batch_size"] * cfg["gradient_accumulation_steps"] * gpus  # noqa: E731
    assert per_step(multi, 2) == per_step(single, 1)


def test_deepspeed_config_is_zero2_with_auto_batch_sizes() -> None:
    ds = _load(MULTI)["deepspeed"]
    assert ds["zero_optimization"]["stage"] == 2
    assert ds["train_micro_batch_size_per_gpu"] == ds["gradient_accumulation_steps"] == "auto"


def test_axolotl_schema_accepts_the_multi_gpu_config(monkeypatch) -> None:
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault

    from securecli.configs import validate_config as validate_versioned

    monkeypatch.chdir(ROOT)
    validate_versioned(MULTI)
    validated = validate_config(
        DictDefault(_load(MULTI)),
        capabilities={"bf16": True, "n_gpu": 2, "compute_capability": "sm_80"},
        env_capabilities={"torch_version": "2.13.0"},
    )
    assert validated.deepspeed["zero_optimization"]["stage"] == 2 and validated.adapter == "qlora"
