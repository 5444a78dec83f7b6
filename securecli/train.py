"""`securecli train`: resolve a versioned config, run the real `axolotl preprocess` + `axolotl train`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import yaml

from common.atomic import point_symlink, write_text_atomic
from common.paths import data_dir, relative_to_workdir, runs_dir, workdir
from publish.confighash import ConfigError, config_hash, short_hash
from securecli.configs import apply_gpu_smoke_overlay, apply_tiny_overlay, check_config, validate_config

DATA_SECTIONS = ("datasets", "test_datasets")
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "offline",
    "AXOLOTL_DO_NOT_TRACK": "1",
}
# The signal that a config wants more than one GPU: one of these keys set (not null) at the top level. Such a
# config trains under `axolotl train --launcher accelerate` on every visible GPU (CUDA_VISIBLE_DEVICES limits
# them); any other config is pinned to one process, so its global batch stays the one it was written for.
MULTI_GPU_KEYS = ("deepspeed", "fsdp", "fsdp_config")
GPU_SMOKE_MODULES = ("flash_attn", "bitsandbytes")


class TrainingError(RuntimeError):
    """An axolotl subprocess failed; the message points at its log."""


class GpuRequired(TrainingError):
    """The GPU smoke run was asked for on a machine without what it needs (a bf16 CUDA GPU, flash-attn)."""


@dataclass(frozen=True)
class RunResult:
    """Where a finished run lives and what it reached."""

    run_dir: Path
    adapter_dir: Path
    config_hash: str
    metrics: dict[str, Any]


def default_dataset_dir() -> Path:
    """Return the newest prepared dataset (`data/prepared/latest`), resolved to its hash directory."""
    return (data_dir() / "prepared" / "latest").resolve()


def check_dataset_dir(dataset_dir: Path, config: dict[str, Any]) -> None:
    """Fail early when the prepared data is missing or longer than the config's `sequence_len`."""
    if not (dataset_dir / "manifest.json").is_file():
        raise ConfigError(f"{dataset_dir}: not a prepared dataset (no manifest.json); run `securecli prepare` first")
    for section in DATA_SECTIONS:
        for entry in config.get(section) or []:
            name = Path(entry["path"]).name
            if not (dataset_dir / name).is_file():
                raise ConfigError(f"{dataset_dir / name}: prepared split not found; run `securecli prepare` first")
    report = dataset_dir / "report.json"
    if report.is_file():
        needed = json.loads(report.read_text()).get("recommended_sequence_len")
        if needed and needed > config.get("sequence_len", 0):
            raise ConfigError(
                f"{report}: recommended_sequence_len {needed} exceeds the config's sequence_len "
                f"{config.get('sequence_len')}; examples would be truncated"
            )


def resolve_config(
    config_path: Path,
    *,
    dataset_dir: Path,
    max_steps: int | None = None,
    tiny_model: Path | None = None,
    gpu_smoke: bool = False,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the config exactly as it will be trained: real data paths, the CPU stand-in or GPU smoke overlay
    (when a tiny model is given), then explicit overrides."""
    config = validate_config(config_path)
    check_dataset_dir(dataset_dir, config)
    for section in DATA_SECTIONS:
        for entry in config.get(section) or []:
            entry["path"] = relative_to_workdir(dataset_dir / Path(entry["path"]).name)
    if tiny_model is not None:
        overlay = apply_gpu_smoke_overlay if gpu_smoke else apply_tiny_overlay
        config = overlay(config, tiny_model, **({"max_steps": max_steps} if max_steps else {}))
    elif max_steps:
        config["max_steps"] = max_steps
    if overrides:
        config = {**config, **overrides}
        check_config(config, config_path)
    return config


def parse_overrides(settings: list[str]) -> dict[str, Any]:
    """Parse `KEY=VALUE` strings, reading each value as YAML (`learning_rate=1e-3`, `bf16=false`)."""
    overrides: dict[str, Any] = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {setting!r}: expected KEY=VALUE")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def _subprocess_env(run_dir: Path, offline: bool) -> dict[str, str]:
    """Environment for axolotl: the venv's bin on PATH (its launcher execs `accelerate`), wandb under the run."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["WANDB_DIR"] = str(run_dir)
    if offline:
        for key, value in OFFLINE_ENV.items():
            env.setdefault(key, value)
    return env


ProgressCallback = Callable[[str, int, int], None]
TRAINER_BAR = re.compile(r"(?:^|\r)\s*\d+%\|[^|\r\n]*\|\s*(\d+)/(\d+) \[[^\]\r\n]*(?:it/s|s/it)")


def is_multi_gpu(config: dict[str, Any]) -> bool:
    """Return whether a config asks for more than one GPU (a DeepSpeed or FSDP section)."""
    return any(config.get(key) not in (None, "", [], {}) for key in MULTI_GPU_KEYS)


def axolotl_command(verb: str, config_file: Path, config: dict[str, Any]) -> list[str]:
    """Return the axolotl CLI call for a verb: `train` goes through axolotl's accelerate launcher, on every
    visible GPU for a multi-GPU config and on exactly one process otherwise."""
    command = [str(Path(sys.executable).parent / "axolotl"), verb, str(config_file)]
    if verb != "train":
        return command
    command += ["--launcher", "accelerate"]
    return command if is_multi_gpu(config) else [*command, "--", "--num_processes", "1"]


def check_gpu_smoke_host() -> None:
    """Refuse the GPU smoke run, saying why, unless a bf16-capable CUDA GPU and flash-attn/bitsandbytes are here."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise GpuRequired(
            f"--gpu-smoke needs a CUDA GPU, and torch {torch.__version__} sees none; "
            "use --tiny for the CPU stand-in"
        )
    if not torch.cuda.is_bf16_supported():
        raise GpuRequired(f"--gpu-smoke keeps bf16, which {torch.cuda.get_device_name(0)} does not support (needs sm_80+)")
    missing = [module for module in GPU_SMOKE_MODULES if importlib.util.find_spec(module) is None]
    if missing:
        raise GpuRequired(f"--gpu-smoke needs {', '.join(missing)} (the axolotl image has them)")


def _run_axolotl(
    verb: str, command: list[str], run_dir: Path, env: dict[str, str], on_progress: ProgressCallback | None
) -> None:
    """Run one axolotl CLI call, teeing its output to `<run_dir>/<verb>.log` and reporting trainer steps."""
    log_path = run_dir / f"{verb}.log"
    with log_path.open("wb") as log, subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=workdir()
    ) as process:
        assert process.stdout is not None
        for chunk in iter(lambda: process.stdout.read1(65536), b""):
            log.write(chunk)
            if on_progress:
                for done, total in TRAINER_BAR.findall(chunk.decode("utf-8", errors="replace")):
                    on_progress(verb, int(done), int(total))
    if process.returncode != 0:
        tail = "".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-25:])
        raise TrainingError(f"axolotl {verb} failed (exit {process.returncode}); full log: {log_path}\n{tail}")


def final_metrics(adapter_dir: Path) -> dict[str, Any]:
    """Read the last logged train and eval losses from the trainer state axolotl saved."""
    states = sorted(adapter_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    if not states:
        return {}
    state = json.loads(states[-1].read_text())
    history = state["log_history"]
    train_losses = [entry["loss"] for entry in history if "loss" in entry]
    eval_losses = [entry["eval_loss"] for entry in history if "eval_loss" in entry]
    metrics: dict[str, Any] = {"global_step": state.get("global_step", history[-1].get("step") if history else 0)}
    if train_losses:
        metrics |= {"first_train_loss": train_losses[0], "final_train_loss": train_losses[-1]}
    if eval_losses:
        metrics["final_eval_loss"] = eval_losses[-1]
    return metrics


def _now() -> str:
    """Return the current UTC time in ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def train(
    config_path: Path,
    *,
    tiny: bool = False,
    gpu_smoke: bool = False,
    data_dir: Path | None = None,
    max_steps: int | None = None,
    runs_root: Path | None = None,
    overrides: dict[str, Any] | None = None,
    on_progress: ProgressCallback | None = None,
) -> RunResult:
    """Train a versioned config (or its CPU stand-in, or its GPU smoke run) into `runs/<config-hash>/` and write
    its manifest."""
    from common.tiny import build_tiny_model
    from publish.manifest import write_run_manifest

    if tiny and gpu_smoke:
        raise ConfigError("--tiny and --gpu-smoke exclude each other: --tiny is the CPU stand-in")
    if gpu_smoke:
        check_gpu_smoke_host()
    dataset_dir = (data_dir or default_dataset_dir()).resolve()
    tiny_model = build_tiny_model() if tiny or gpu_smoke else None
    config = resolve_config(
        config_path, dataset_dir=dataset_dir, max_steps=max_steps, tiny_model=tiny_model, gpu_smoke=gpu_smoke,
        overrides=overrides,
    )
    full_hash = config_hash(config, workdir())
    run_dir = (runs_root or runs_dir()) / short_hash(full_hash)
    adapter_dir = run_dir / "adapter"
    config["output_dir"] = relative_to_workdir(adapter_dir)
    config["dataset_prepared_path"] = relative_to_workdir(run_dir / "prepared")
    config_file = write_text_atomic(run_dir / "config.yml", yaml.safe_dump(config, sort_keys=False))
    env = _subprocess_env(run_dir, offline=tiny or gpu_smoke)
    started_at = _now()
    for verb in ("preprocess", "train"):
        _run_axolotl(verb, axolotl_command(verb, config_file, config), run_dir, env, on_progress)
    metrics = final_metrics(adapter_dir)
    write_run_manifest(
        run_dir,
        config=config,
        config_hash=full_hash,
        versioned_config=config_path,
        dataset_dir=dataset_dir,
        started_at=started_at,
        ended_at=_now(),
        metrics=metrics,
    )
    point_symlink(run_dir.parent / "latest", run_dir.name)
    return RunResult(run_dir=run_dir, adapter_dir=adapter_dir, config_hash=full_hash, metrics=metrics)
