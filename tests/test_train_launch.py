"""How `securecli train` launches axolotl (one process, or every GPU for a DeepSpeed/FSDP config) and the
GPU smoke overlay: every GPU setting of the versioned config kept, only the base model swapped."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import write_chat_dataset
from typer.testing import CliRunner

from common.paths import repo_root
from publish.confighash import ConfigError, config_hash, load_config
from securecli.configs import GPU_SMOKE_MAX_STEPS, apply_gpu_smoke_overlay, apply_tiny_overlay
from securecli.train import (
    GpuRequired,
    axolotl_command,
    check_gpu_smoke_host,
    is_multi_gpu,
    resolve_config,
    train,
)

SINGLE = repo_root() / "axolotl" / "qwen25-coder-7b-qlora.yml"
MULTI = repo_root() / "axolotl" / "qwen25-coder-7b-qlora-multigpu.yml"
AXOLOTL = str(Path(sys.executable).parent / "axolotl")
GPU_SETTINGS = {
    "adapter": "qlora", "load_in_4bit": True, "bf16": True, "tf32": True, "lora_qkv_kernel": True,
    "lora_o_kernel": True, "lora_mlp_kernel": True, "attn_implementation": "flash_attention_2",
    "sample_packing": True, "gradient_checkpointing": True,
}


def test_a_single_gpu_config_trains_in_exactly_one_process(tmp_path: Path) -> None:
    config_file = tmp_path / "config.yml"
    assert axolotl_command("train", config_file, load_config(SINGLE)) == [
        AXOLOTL, "train", str(config_file), "--launcher", "accelerate", "--", "--num_processes", "1",
    ]
    assert axolotl_command("preprocess", config_file, load_config(SINGLE)) == [AXOLOTL, "preprocess", str(config_file)]


def test_a_deepspeed_config_trains_on_every_visible_gpu_through_accelerate(tmp_path: Path) -> None:
    config_file = tmp_path / "config.yml"
    multi = load_config(MULTI)
    assert is_multi_gpu(multi) and not is_multi_gpu(load_config(SINGLE))
    assert axolotl_command("train", config_file, multi) == [AXOLOTL, "train", str(config_file), "--launcher", "accelerate"]
    assert axolotl_command("preprocess", config_file, multi) == [AXOLOTL, "preprocess", str(config_file)]


@pytest.mark.parametrize(
    ("extra", "multi"),
    [
        ({"fsdp_config": {"fsdp_version": 2}}, True),
        ({"fsdp": ["full_shard", "auto_wrap"]}, True),
        ({"deepspeed": "deepspeed_configs/zero2.json"}, True),
        ({"deepspeed": None, "fsdp_config": {}}, False),
    ],
)
def test_the_multi_gpu_signal_is_a_deepspeed_or_fsdp_section(extra: dict, multi: bool) -> None:
    assert is_multi_gpu({**load_config(SINGLE), **extra}) is multi


def test_axolotl_reads_the_launcher_and_its_arguments_from_the_command(tmp_path: Path) -> None:
    from axolotl.cli.main import cli

    config_file = tmp_path / "config.yml"
    config_file.write_text("base_model: x\n")
    single = axolotl_command("train", config_file, load_config(SINGLE))
    context = cli.commands["train"].make_context("train", single[2:])
    assert context.params["launcher"] == "accelerate" and context.args == ["--num_processes", "1"]
    multi = cli.commands["train"].make_context("train", axolotl_command("train", config_file, load_config(MULTI))[2:])
    assert multi.params["launcher"] == "accelerate" and multi.args == []


def test_the_cpu_stand_in_of_the_multi_gpu_config_is_one_process(tiny_model: Path) -> None:
    overlaid = apply_tiny_overlay(load_config(MULTI), tiny_model)
    assert "deepspeed" not in overlaid and not is_multi_gpu(overlaid)


@pytest.mark.parametrize("versioned", [SINGLE, MULTI])
def test_gpu_smoke_keeps_every_gpu_setting_and_swaps_only_the_base(versioned: Path, tiny_model: Path) -> None:
    config = load_config(versioned)
    smoke = apply_gpu_smoke_overlay(config, tiny_model)
    changed = {key for key in config.keys() | smoke.keys() if config.get(key) != smoke.get(key)}
    assert changed == {"base_model", "revision_of_model", "max_steps", "save_steps", "eval_steps", "wandb_mode"}
    assert smoke["base_model"] == str(tiny_model) and "revision_of_model" not in smoke
    assert {key: smoke[key] for key in GPU_SETTINGS} == GPU_SETTINGS
    assert smoke["bnb_config_kwargs"] == {"bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}
    assert smoke["max_steps"] == smoke["save_steps"] == smoke["eval_steps"] == GPU_SMOKE_MAX_STEPS
    assert smoke["test_datasets"] == config["test_datasets"] and smoke.get("deepspeed") == config.get("deepspeed")
    assert is_multi_gpu(smoke) is is_multi_gpu(config)


def test_gpu_smoke_config_passes_axolotl_validation_on_a_cuda_host(tiny_model: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault

    monkeypatch.setenv("SECURECLI_HOME", str(tmp_path))
    data = write_chat_dataset(tmp_path / "data" / "prepared" / "smoke")
    smoke = resolve_config(SINGLE, dataset_dir=data, tiny_model=tiny_model, gpu_smoke=True, max_steps=5)
    tiny = resolve_config(SINGLE, dataset_dir=data, tiny_model=tiny_model, max_steps=5)
    assert smoke["max_steps"] == 5 and smoke["datasets"][0]["path"] == "data/prepared/smoke/train.jsonl"
    assert config_hash(smoke, tmp_path) != config_hash(tiny, tmp_path)
    validated = validate_config(
        DictDefault(smoke),
        capabilities={"bf16": True, "n_gpu": 1, "compute_capability": "sm_90"},
        env_capabilities={"torch_version": "2.13.0"},
    )
    assert validated.bf16 is True and validated.lora_mlp_kernel is True
    assert validated.attn_implementation == "flash_attention_2" and validated.adapter == "qlora"


def test_gpu_smoke_refuses_without_a_cuda_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(GpuRequired, match="--gpu-smoke needs a CUDA GPU, and torch .* sees none"):
        check_gpu_smoke_host()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Tesla T4")
    with pytest.raises(GpuRequired, match="Tesla T4 does not support"):
        check_gpu_smoke_host()
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None if name == "flash_attn" else object())
    with pytest.raises(GpuRequired, match="needs flash_attn"):
        check_gpu_smoke_host()


def test_train_gpu_smoke_stops_before_any_work_without_a_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torch

    from securecli.cli import build_app

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("SECURECLI_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="exclude each other"):
        train(SINGLE, tiny=True, gpu_smoke=True)
    result = CliRunner().invoke(build_app(), ["train", str(SINGLE), "--gpu-smoke"])
    assert result.exit_code == 2 and "--gpu-smoke needs a CUDA GPU" in " ".join(result.output.split())
    assert not (tmp_path / "runs").exists()


def test_gpu_smoke_script_refuses_without_a_cuda_gpu() -> None:
    import os
    import subprocess

    script = repo_root() / "scripts" / "gpu_smoke.sh"
    shellcheck = Path(sys.executable).parent / "shellcheck"
    assert subprocess.run([str(shellcheck), str(script)], capture_output=True, text=True).stdout == ""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "sees no CUDA GPU" in result.stderr and "refused: this run needs a CUDA GPU" in result.stderr
    assert "prepare" not in result.stdout
