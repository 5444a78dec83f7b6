"""Cloud launch: the `runpod.yaml` pod spec, its RunPod REST v2 `POST /v2/pods` payload, and run estimates.

The spec names secrets; their values are read from the environment only when a pod is really created,
and every rendered form (dry run, `runpodctl` command, errors) shows them redacted.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from securecli.docker_lint import split_image

RUNPOD_API_URL = "https://api.runpod.io"
PODS_PATH = "/v2/pods"
API_KEY_ENV = "RUNPOD_API_KEY"
REDACTED = "***redacted***"
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_PORT = re.compile(r"^\d{1,5}/(http|tcp|udp)$")


class LaunchError(ValueError):
    """A pod spec or launch request that cannot be used, with the file and field named."""


class GpuSpec(BaseModel):
    """GPU type (RunPod's GPU type id, as `GET /v2/catalog/gpus` lists it) and count."""

    model_config = ConfigDict(extra="forbid")

    type_id: str = Field(default="NVIDIA A100-PCIE-40GB", min_length=1)
    count: int = Field(default=1, ge=1, le=8)
    min_cuda_version: str | None = Field(default=None, pattern=r"^\d+\.\d+$")


class VolumeSpec(BaseModel):
    """The pod's persistent volume: data, runs and the HF cache survive container restarts there."""

    model_config = ConfigDict(extra="forbid")

    size_gb: int = Field(default=100, ge=10, description="RunPod enforces a 10 GB floor")
    mount_path: str = Field(default="/workspace/data", pattern=r"^/")


class SecretSpec(BaseModel):
    """A secret env var by name: its value comes from the local env, or from a RunPod account secret."""

    model_config = ConfigDict(extra="forbid")

    name: str
    source: Literal["env", "runpod_secret"] = "env"
    required: bool = True

    @field_validator("name")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError(f"not an environment variable name: {value!r}")
        return value

    def runpod_reference(self) -> str:
        """Return RunPod's template reference to an account secret of the same name."""
        return "{{ RUNPOD_SECRET_" + self.name + " }}"


class StartSpec(BaseModel):
    """What the container runs: `securecli pipeline CONFIG --repo ORG/NAME` (the image's entrypoint)."""

    model_config = ConfigDict(extra="forbid")

    config: str = Field(default="/opt/securecli/axolotl/qwen25-coder-7b-qlora.yml", min_length=1)
    repo_id: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
    extra_args: list[str] = Field(default_factory=list)

    def args(self) -> list[str]:
        """Return the arguments passed to the `securecli` entrypoint."""
        return ["pipeline", self.config, "--repo", self.repo_id, *self.extra_args]


class EstimateSpec(BaseModel):
    """Inputs of the time and cost estimate that the spec cannot know by itself."""

    model_config = ConfigDict(extra="forbid")

    throughput_tokens_per_gpu_second: float = Field(
        gt=0, description="training tokens (packed, padded bins) one GPU processes per second"
    )
    prices_usd_per_gpu_hour: dict[str, float] = Field(default_factory=dict)


class PodSpec(BaseModel):
    """The whole `runpod.yaml`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=191)
    image: str = Field(min_length=1)
    cloud: Literal["SECURE", "COMMUNITY"] = "SECURE"
    gpu: GpuSpec = Field(default_factory=GpuSpec)
    container_disk_gb: int = Field(default=50, ge=1)
    volume: VolumeSpec = Field(default_factory=VolumeSpec)
    env: dict[str, str] = Field(default_factory=dict)
    secrets: list[SecretSpec] = Field(default_factory=list)
    ports: list[str] = Field(default_factory=list)
    start: StartSpec
    estimate: EstimateSpec | None = None

    @field_validator("image")
    @classmethod
    def _pinned_image(cls, value: str) -> str:
        _, tag, digest = split_image(value)
        if not digest and tag in {"", "latest", "main-latest", "main"}:
            raise ValueError(f"pin the image to a version tag or digest, got {value!r}")
        return value

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[str]) -> list[str]:
        bad = [port for port in value if not _PORT.match(port)]
        if bad:
            raise ValueError(f"ports are 'NUMBER/http', 'NUMBER/tcp' or 'NUMBER/udp', got {bad}")
        return value

    @model_validator(mode="after")
    def _no_secret_in_plain_env(self) -> PodSpec:
        names = {secret.name for secret in self.secrets}
        clash = sorted(names & set(self.env))
        if clash:
            raise ValueError(f"{clash} are secrets: list them under `secrets`, never with a value in `env`")
        suspicious = sorted(key for key in self.env if key.endswith(("_TOKEN", "_API_KEY", "_SECRET", "_PASSWORD")))
        if suspicious:
            raise ValueError(f"{suspicious} look like secrets: move them to `secrets` (names only)")
        return self


def _error_lines(path: Path, error: ValidationError) -> str:
    """Format pydantic errors as `file: field: message` lines."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{path}: {where}: {item['msg']}")
    return "\n".join(lines)


def load_spec(path: Path) -> PodSpec:
    """Read and validate a pod spec, with errors that name the file and the field."""
    from publish.confighash import ConfigError, load_config

    try:
        raw = load_config(path)
    except ConfigError as error:
        raise LaunchError(str(error)) from error
    try:
        return PodSpec.model_validate(raw)
    except ValidationError as error:
        raise LaunchError(_error_lines(path, error)) from error


def secret_values(spec: PodSpec, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Return the env values of the secrets sent to the pod: local env values or RunPod references."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    missing = []
    for secret in spec.secrets:
        if secret.source == "runpod_secret":
            values[secret.name] = secret.runpod_reference()
        elif environ.get(secret.name):
            values[secret.name] = environ[secret.name]
        elif secret.required:
            missing.append(secret.name)
    if missing:
        raise LaunchError(f"set {', '.join(missing)} in the environment (or mark them `source: runpod_secret`)")
    return values


def render_payload(spec: PodSpec, secrets: dict[str, str]) -> dict[str, Any]:
    """Return the RunPod REST v2 `CreatePodRequest` body for the spec."""
    gpu: dict[str, Any] = {"id": spec.gpu.type_id, "count": spec.gpu.count}
    if spec.gpu.min_cuda_version:
        gpu["minCudaVersion"] = spec.gpu.min_cuda_version
    return {
        "name": spec.name,
        "image": spec.image,
        "cloud": spec.cloud,
        "gpu": gpu,
        "disk": spec.container_disk_gb,
        "mounts": {"persistent": {"size": spec.volume.size_gb, "path": spec.volume.mount_path}},
        "env": {**spec.env, **secrets},
        "ports": list(spec.ports),
        "args": shlex.join(spec.start.args()),
    }


def placeholder_secrets(spec: PodSpec) -> dict[str, str]:
    """Return the secrets as a dry run shows them: env values redacted, RunPod references as they are."""
    return {
        secret.name: secret.runpod_reference() if secret.source == "runpod_secret" else REDACTED
        for secret in spec.secrets
    }


def runpodctl_command(spec: PodSpec) -> str:
    """Return the equivalent `runpodctl create pod` command; secrets expand from the caller's shell."""
    words = [
        "runpodctl", "create", "pod",
        "--name", spec.name,
        "--imageName", spec.image,
        "--gpuType", spec.gpu.type_id,
        "--gpuCount", str(spec.gpu.count),
        "--containerDiskSize", str(spec.container_disk_gb),
        "--volumeSize", str(spec.volume.size_gb),
        "--volumePath", spec.volume.mount_path,
        "--secureCloud" if spec.cloud == "SECURE" else "--communityCloud",
        "--args", shlex.join(spec.start.args()),
    ]
    for key, value in spec.env.items():
        words += ["--env", f"{key}={value}"]
    if spec.ports:
        words += ["--ports", ",".join(spec.ports)]
    line = shlex.join(words)
    for secret in spec.secrets:
        value = shlex.quote(f"{secret.name}={secret.runpod_reference()}") if secret.source == "runpod_secret" else (
            f'"{secret.name}=${{{secret.name}}}"'
        )
        line += f" --env {value}"
    return line


def hourly_cost(spec: PodSpec) -> float | None:
    """Return the pod's USD per hour from the spec's price table, or None when no price is configured."""
    if spec.estimate is None or spec.gpu.type_id not in spec.estimate.prices_usd_per_gpu_hour:
        return None
    return spec.estimate.prices_usd_per_gpu_hour[spec.gpu.type_id] * spec.gpu.count


def _scrub(text: str, secrets: dict[str, str]) -> str:
    """Remove any secret value from a text that came back from the server."""
    for value in secrets.values():
        if value:
            text = text.replace(value, REDACTED)
    return text


def create_pod(
    payload: dict[str, Any], api_key: str, secrets: dict[str, str], base_url: str = RUNPOD_API_URL, timeout_s: float = 30.0
) -> dict[str, Any]:
    """POST the payload to RunPod and return the created pod; errors never echo a secret."""
    import httpx

    try:
        response = httpx.post(
            base_url.rstrip("/") + PODS_PATH,
            json=payload,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=timeout_s,
        )
    except httpx.HTTPError as error:
        raise LaunchError(f"RunPod request failed: {type(error).__name__}: {_scrub(str(error), secrets)}") from None
    if response.status_code >= 400:
        detail = _scrub(response.text[:2000], {**secrets, "key": api_key})
        raise LaunchError(f"RunPod answered {response.status_code}: {detail}")
    return response.json()


class RunEstimate(BaseModel):
    """Expected size, length and price of one training run."""

    train_rows: int
    tokens_per_epoch: int
    mean_tokens_per_row: float
    packed_bins_per_epoch: int
    packing_efficiency: float
    steps_per_epoch: int
    total_steps: int
    epochs: int
    gpu_count: int
    hours: float
    usd: float | None


def _pack_bins(lengths: list[int], capacity: int) -> int:
    """Count bins of `capacity` tokens holding every row, packed worst-fit decreasing (like multipack)."""
    import heapq

    free: list[int] = []
    for length in sorted(lengths, reverse=True):
        if length > capacity:
            raise LaunchError(f"a row of {length} tokens is longer than sequence_len {capacity}")
        if free and -free[0] >= length:
            heapq.heapreplace(free, free[0] + length)
        else:
            heapq.heappush(free, -(capacity - length))
    return len(free)


def row_token_lengths(train_file: Path, tokenizer_dir: Path) -> list[int]:
    """Tokenize every chat row as training sees it (chat template applied) and return the lengths."""
    from transformers import AutoTokenizer

    from common.prompt import chat_template

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    template = chat_template()
    lengths = []
    with train_file.open(encoding="utf-8") as rows:
        for number, line in enumerate(rows, start=1):
            if not line.strip():
                continue
            try:
                messages = json.loads(line)["messages"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise LaunchError(f"{train_file}:{number}: not a chat row with `messages`: {error}") from error
            text = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False)
            lengths.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    if not lengths:
        raise LaunchError(f"{train_file}: no training rows")
    return lengths


def estimate_run(lengths: list[int], config: dict[str, Any], spec: PodSpec) -> RunEstimate:
    """Derive tokens, packed bins, optimizer steps, hours and cost from row lengths and the axolotl config."""
    if spec.estimate is None:
        raise LaunchError("add an `estimate:` section (throughput, prices) to the pod spec to estimate a run")
    capacity = int(config["sequence_len"])
    epochs = int(config.get("num_epochs", 1))
    per_step = int(config["micro_batch_size"]) * int(config.get("gradient_accumulation_steps", 1)) * spec.gpu.count
    tokens = sum(lengths)
    bins = _pack_bins(lengths, capacity) if config.get("sample_packing") else len(lengths)
    processed_per_epoch = bins * capacity if config.get("pad_to_sequence_len") or config.get("sample_packing") else tokens
    steps_per_epoch = math.ceil(bins / per_step)
    seconds = processed_per_epoch * epochs / (spec.estimate.throughput_tokens_per_gpu_second * spec.gpu.count)
    hours = seconds / 3600
    price = hourly_cost(spec)
    return RunEstimate(
        train_rows=len(lengths),
        tokens_per_epoch=tokens,
        mean_tokens_per_row=round(tokens / len(lengths), 1),
        packed_bins_per_epoch=bins,
        packing_efficiency=round(tokens / (bins * capacity), 3) if config.get("sample_packing") else 1.0,
        steps_per_epoch=steps_per_epoch,
        total_steps=steps_per_epoch * epochs,
        epochs=epochs,
        gpu_count=spec.gpu.count,
        hours=round(hours, 2),
        usd=round(hours * price, 2) if price is not None else None,
    )


def local_config_path(spec: PodSpec) -> Path:
    """Map the spec's in-container config path to this checkout's copy (`/opt/securecli/axolotl/X` -> `axolotl/X`)."""
    from common.paths import repo_root

    in_container = Path(spec.start.config)
    if in_container.is_file():
        return in_container
    return repo_root() / "axolotl" / in_container.name


def train_file_for(report: Path) -> Path:
    """Return the training split next to a prepared data `report.json`."""
    if not report.is_file():
        raise LaunchError(f"{report}: prepared data report not found (run `securecli prepare` first)")
    train_file = report.parent / "train.jsonl"
    if not train_file.is_file():
        raise LaunchError(f"{train_file}: training split missing next to {report.name}")
    return train_file


def check_writable(*directories: Path) -> None:
    """Fail early, naming the directory, when the container user cannot write where the run goes."""
    for directory in directories:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
        if not (directory.is_dir() and os.access(directory, os.W_OK)):
            raise LaunchError(
                f"{directory}: not writable by uid {os.getuid()}; on a volume created by a root container run "
                f"`chown -R {os.getuid()}:{os.getgid()} {directory}` once"
            )


def run_pipeline(
    config_path: Path,
    repo_id: str,
    *,
    sources: list[str] | None = None,
    merged: bool = False,
    dry_run_publish: bool = False,
    log=print,
) -> Path:
    """Run prepare -> train -> eval -> publish for one config; return the run directory."""
    from common.paths import data_dir
    from eval.run import execution_note, plan_from_options, run_eval
    from preprocessing.params import PrepareParams
    from preprocessing.pipeline import prepare
    from preprocessing.sources import DEFAULT_TRAINING_SOURCES
    from publish.confighash import load_config
    from publish.hub import publish_run
    from securecli.train import train

    check_writable(data_dir(), Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")))
    log("1/4 prepare")
    prepared = prepare(sources or list(DEFAULT_TRAINING_SOURCES), data_dir() / "prepared", PrepareParams(), progress=True)
    log(f"2/4 train on {prepared.out_dir}")
    run = train(config_path, data_dir=prepared.out_dir)
    log(f"3/4 eval {run.run_dir}")
    base_model = str(load_config(config_path)["base_model"])
    metrics = run_eval(plan_from_options("hf", data=prepared.out_dir, base_model=base_model,
                                         adapter=str(run.adapter_dir)), run.run_dir)
    note = execution_note(metrics, run.run_dir / "eval")
    if note:
        log(note)
    log(f"4/4 publish {repo_id}")
    publish_run(run.run_dir, repo_id, merged=merged, dry_run=dry_run_publish)
    return run.run_dir
