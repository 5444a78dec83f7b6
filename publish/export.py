"""Run a trained adapter where people run models: a GGUF LoRA for llama.cpp, an Ollama Modelfile, a vLLM command.

The GGUF files are written by llama.cpp's own converters (`convert_hf_to_gguf.py`, `convert_lora_to_gguf.py`
and their `gguf-py`), kept by `scripts/build_llama_cpp.sh` next to the llama.cpp build under the venv.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.atomic import write_json_atomic, write_text_atomic
from common.prompt import SYSTEM_PROMPT, chat_template
from common.provenance import sha256_file

ADAPTER_OUTTYPES = ("f16", "bf16", "q8_0")
BASE_OUTTYPES = ("f32", "f16", "bf16", "q8_0")
EXPORT_DIR = "export"
EXPORT_MANIFEST = "export.json"
MODELFILE = "Modelfile"
VLLM_SCRIPT = "serve_vllm.sh"
VLLM_CHAT_TEMPLATE = "chat_template.jinja"
OLLAMA_LIBRARY_BASE = "qwen2.5-coder:7b-instruct"
CONVERTERS_ENV = "SECURECLI_LLAMA_CPP_CONVERTERS"
CONVERTERS_STAMP = ".llama-cpp.stamp"
IM_START, IM_END, END_OF_TEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
STOP_TOKENS = (IM_END, END_OF_TEXT)
# The chat format we train with (axolotl's qwen_25 with an explicit system message), as a Go template:
# every message is `<|im_start|>ROLE\nCONTENT<|im_end|>\n`, then the generation prompt `<|im_start|>assistant\n`.
OLLAMA_TEMPLATE = (
    "{{ range .Messages }}" + IM_START + "{{ .Role }}\n{{ .Content }}" + IM_END + "\n{{ end }}"
    + '{{ "' + IM_START + 'assistant\\n" }}'
)
# PEFT options that convert_lora_to_gguf.py cannot represent (it writes one alpha and plain A/B pairs).
UNSUPPORTED_LORA_OPTIONS = {
    "use_rslora": "rank-stabilized scaling (alpha/sqrt(r))",
    "use_dora": "DoRA magnitude vectors",
    "rank_pattern": "per-module ranks",
    "alpha_pattern": "per-module alphas",
    "modules_to_save": "fully trained modules",
    "trainable_token_indices": "trained token embeddings",
    "lora_bias": "LoRA bias terms",
}


class ExportError(RuntimeError):
    """The adapter cannot be exported as asked."""


@dataclass(frozen=True)
class BaseGGUF:
    """The base model a GGUF LoRA is applied to: its name, where it lives, and its sha256 when it is a file."""

    name: str
    path: Path | None
    sha256: str | None
    source: str

    def describe(self) -> dict[str, Any]:
        """Return the manifest's record of the base."""
        return {"name": self.name, "path": str(self.path) if self.path else None, "sha256": self.sha256,
                "source": self.source}


def converters_dir() -> Path:
    """Return the folder with llama.cpp's converters and gguf-py (SECURECLI_LLAMA_CPP_CONVERTERS, else the venv's)."""
    override = os.environ.get(CONVERTERS_ENV)
    if override:
        folder = Path(override)
    else:
        stamp = Path(sys.prefix) / CONVERTERS_STAMP
        if not stamp.is_file():
            raise ExportError(
                f"{stamp}: llama.cpp is not built in this environment; run `bash scripts/build_llama_cpp.sh` "
                f"(make setup does), or set {CONVERTERS_ENV} to a folder holding convert_lora_to_gguf.py"
            )
        folder = Path(stamp.read_text(encoding="utf-8").strip()) / "convert"
    for name in ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "gguf-py"):
        if not (folder / name).exists():
            raise ExportError(f"{folder}: {name} is missing; rebuild with `bash scripts/build_llama_cpp.sh`")
    return folder


def llama_cpp_version() -> str | None:
    """Return the installed llama-cpp-python version, or None."""
    from importlib import metadata

    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        return None


def run_converter(script: str, arguments: list[str], log: Path) -> None:
    """Run one of llama.cpp's converters with this interpreter and its vendored gguf-py; keep its output in `log`."""
    folder = converters_dir()
    env = {key: value for key, value in os.environ.items() if key != "NO_LOCAL_GGUF"}
    env["HF_HUB_OFFLINE"] = env.get("HF_HUB_OFFLINE", "1")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ {shlex.join([script, *arguments])}\n")
        handle.flush()
        finished = subprocess.run(
            [sys.executable, str(folder / script), *arguments], stdout=handle, stderr=subprocess.STDOUT, env=env,
            check=False,
        )
    if finished.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
        raise ExportError(f"{script} failed with exit code {finished.returncode} (full log: {log}):\n{tail}")


def read_adapter_config(adapter_dir: Path) -> dict[str, Any]:
    """Read a PEFT adapter's config and refuse what a GGUF LoRA cannot carry."""
    path = adapter_dir / "adapter_config.json"
    if not path.is_file():
        raise ExportError(f"{path}: not found; {adapter_dir} is not a PEFT adapter")
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        raise ExportError(f"{adapter_dir / 'adapter_model.safetensors'}: not found (a PEFT adapter in safetensors)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ExportError(f"{path}: line {error.lineno}: not valid JSON ({error.msg})") from None
    if config.get("peft_type") != "LORA":
        raise ExportError(f"{path}: peft_type is {config.get('peft_type')!r}; only LORA adapters export to GGUF")
    for field, meaning in UNSUPPORTED_LORA_OPTIONS.items():
        if config.get(field):
            raise ExportError(f"{path}: field {field!r} is set ({meaning}); a GGUF LoRA cannot carry it")
    return config


def base_config_dir(base: dict[str, Any], override: Path | None) -> Path:
    """Return a folder with the base model's config.json: `override`, a local base, or the Hub snapshot's."""
    if override is not None:
        if not (override / "config.json").is_file():
            raise ExportError(f"{override / 'config.json'}: not found; --base-config needs the base model's config")
        return override
    local = Path(str(base["name"])).expanduser()
    if (local / "config.json").is_file():
        return local
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(base["name"]), revision=base.get("revision"), allow_patterns=["config.json"]))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as error:
        raise ExportError(
            f"the base model's config.json ({base['name']}@{base.get('revision')}) is not available: {error}; "
            "pass --base-config DIR"
        ) from None


def convert_adapter(adapter_dir: Path, base_config: Path, target: Path, outtype: str = "f16") -> Path:
    """Write the PEFT adapter as a GGUF LoRA with llama.cpp's convert_lora_to_gguf.py."""
    if outtype not in ADAPTER_OUTTYPES:
        raise ExportError(f"--outtype {outtype!r}: expected one of {', '.join(ADAPTER_OUTTYPES)}")
    read_adapter_config(adapter_dir)
    staging = target.with_name(f".{target.name}.partial")
    run_converter(
        "convert_lora_to_gguf.py",
        ["--base", str(base_config), "--outtype", outtype, "--outfile", str(staging), str(adapter_dir)],
        target.parent / "convert.log",
    )
    os.replace(staging, target)
    return target


def convert_base(model_dir: Path, target: Path, outtype: str = "f16") -> Path:
    """Write a Hugging Face checkpoint as a GGUF model with llama.cpp's convert_hf_to_gguf.py."""
    if outtype not in BASE_OUTTYPES:
        raise ExportError(f"--base-outtype {outtype!r}: expected one of {', '.join(BASE_OUTTYPES)}")
    if not (model_dir / "config.json").is_file():
        raise ExportError(f"{model_dir / 'config.json'}: not found; --convert-base needs a local checkpoint")
    staging = target.with_name(f".{target.name}.partial")
    run_converter(
        "convert_hf_to_gguf.py", [str(model_dir), "--outtype", outtype, "--outfile", str(staging)],
        target.parent / "convert.log",
    )
    os.replace(staging, target)
    return target


def gguf_fields(path: Path) -> dict[str, Any]:
    """Return a GGUF file's scalar and string metadata, read with llama.cpp's gguf-py."""
    folder = str(converters_dir() / "gguf-py")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    from gguf import GGUFReader

    reader = GGUFReader(path)
    fields: dict[str, Any] = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or len(field.data) != 1:
            continue
        value = field.contents()
        fields[name] = value
    return fields


def modelfile_text(base: str, adapter: str) -> str:
    """Return an Ollama Modelfile: the base, the GGUF LoRA, our system prompt, chat template, stops, greedy."""
    for name, text in (("system prompt", SYSTEM_PROMPT), ("template", OLLAMA_TEMPLATE)):
        if '"""' in text:
            raise ExportError(f"the {name} contains a triple quote, which a Modelfile string cannot hold")
    lines = [
        f"FROM {base}",
        f"ADAPTER {adapter}",
        f'SYSTEM """{SYSTEM_PROMPT}"""',
        f'TEMPLATE """{OLLAMA_TEMPLATE}"""',
        *[f'PARAMETER stop "{token}"' for token in STOP_TOKENS],
        "PARAMETER temperature 0",
    ]
    return "\n".join(lines) + "\n"


def _relative(path: Path, folder: Path) -> str:
    """Return `path` as `./NAME` when it is inside `folder`, else absolute."""
    resolved, root = path.resolve(), folder.resolve()
    return f"./{resolved.relative_to(root).as_posix()}" if resolved.is_relative_to(root) else str(resolved)


def ollama_commands(name: str, folder: Path) -> list[str]:
    """Return the two commands that register the Modelfile with Ollama and ask it through our CLI."""
    return [
        f"ollama create {name} -f {shlex.quote(str(folder / MODELFILE))}",
        f'securecli ask --backend openai --base-url http://localhost:11434/v1 --model {name} '
        '"list running docker containers"',
    ]


def _base_record(base_gguf: Path | None, converted_from: Path | None) -> BaseGGUF:
    """Describe the base the LoRA is applied to: a local GGUF (hashed) or the Ollama library model."""
    if base_gguf is None:
        return BaseGGUF(OLLAMA_LIBRARY_BASE, None, None, "ollama library (Q4_K_M; Ollama resolves and verifies it)")
    source = f"converted from {converted_from} with convert_hf_to_gguf.py" if converted_from else "local file"
    return BaseGGUF(base_gguf.name, base_gguf.resolve(), sha256_file(base_gguf), source)


@dataclass(frozen=True)
class GGUFExport:
    """What `export_gguf` wrote: the GGUF LoRA, the base it fits, and the export manifest."""

    folder: Path
    adapter_gguf: Path
    base: BaseGGUF
    manifest_path: Path


def export_gguf(
    adapter_dir: Path,
    base: dict[str, Any],
    folder: Path,
    *,
    outtype: str = "f16",
    base_config: Path | None = None,
    base_gguf: Path | None = None,
    convert_base_model: bool = False,
    base_outtype: str = "f16",
) -> GGUFExport:
    """Convert an adapter to a GGUF LoRA (and optionally its base to GGUF) and write the export manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    config_dir = base_config_dir(base, base_config)
    converted_from = None
    if convert_base_model:
        if base_gguf is not None:
            raise ExportError("give either --base-gguf or --convert-base, not both")
        converted_from = config_dir
        base_gguf = convert_base(config_dir, folder / f"base-{base_outtype}.gguf", base_outtype)
    elif base_gguf is not None and not base_gguf.is_file():
        raise ExportError(f"{base_gguf}: --base-gguf is not a file")
    adapter_gguf = convert_adapter(adapter_dir, config_dir, folder / f"adapter-{outtype}.gguf", outtype)
    fields = gguf_fields(adapter_gguf)
    base_record = _base_record(base_gguf, converted_from)
    manifest = {
        "adapter": {"source": str(adapter_dir.resolve()),
                    "adapter_model.safetensors": sha256_file(adapter_dir / "adapter_model.safetensors")},
        "adapter_gguf": {"path": adapter_gguf.name, "sha256": sha256_file(adapter_gguf), "outtype": outtype,
                         "general.type": fields.get("general.type"), "adapter.type": fields.get("adapter.type"),
                         "adapter.lora.alpha": fields.get("adapter.lora.alpha"),
                         "general.architecture": fields.get("general.architecture")},
        "base_model": {"name": base.get("name"), "revision": base.get("revision"), "config": str(config_dir)},
        "base_gguf": base_record.describe(),
        "llama_cpp_python": llama_cpp_version(),
        "converters": {name: sha256_file(converters_dir() / name)
                       for name in ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py")},
    }
    manifest_path = folder / EXPORT_MANIFEST
    write_json_atomic(manifest_path, manifest)
    return GGUFExport(folder, adapter_gguf, base_record, manifest_path)


def write_modelfile(exported: GGUFExport) -> Path:
    """Write the Ollama Modelfile next to the GGUF LoRA and record it in the export manifest."""
    base = _relative(exported.base.path, exported.folder) if exported.base.path else exported.base.name
    path = exported.folder / MODELFILE
    write_text_atomic(path, modelfile_text(base, _relative(exported.adapter_gguf, exported.folder)))
    manifest = json.loads(exported.manifest_path.read_text(encoding="utf-8"))
    manifest["ollama"] = {"modelfile": MODELFILE, "sha256": sha256_file(path)}
    write_json_atomic(exported.manifest_path, manifest)
    return path


@dataclass(frozen=True)
class ServedAdapter:
    """One adapter served by vLLM under a model name."""

    name: str
    adapter_dir: Path
    rank: int


def vllm_command(base: dict[str, Any], adapters: list[ServedAdapter], chat_template_path: Path) -> list[str]:
    """Return `vllm serve` for one base with several LoRA adapters, each selected by its model name."""
    if not adapters:
        raise ExportError("vllm: give at least one run")
    names = [adapter.name for adapter in adapters]
    if len(set(names)) != len(names):
        raise ExportError(f"vllm: adapter names must be unique, got {', '.join(names)}")
    command = ["vllm", "serve", str(base["name"])]
    if base.get("revision"):
        command += ["--revision", str(base["revision"])]
    rank = max(adapter.rank for adapter in adapters)
    command += [
        "--enable-lora", "--max-loras", str(len(adapters)), "--max-lora-rank", str(_vllm_rank(rank)),
        "--chat-template", str(chat_template_path),
        "--lora-modules", *[f"{adapter.name}={adapter.adapter_dir.resolve()}" for adapter in adapters],
    ]
    return command


def _vllm_rank(rank: int) -> int:
    """Round a LoRA rank up to one vLLM accepts for --max-lora-rank."""
    for allowed in (8, 16, 32, 64, 128, 256, 320, 512):
        if rank <= allowed:
            return allowed
    raise ExportError(f"LoRA rank {rank} is above vLLM's largest --max-lora-rank (512)")


def write_vllm_script(base: dict[str, Any], adapters: list[ServedAdapter], folder: Path) -> tuple[Path, list[str]]:
    """Write the training chat template and a `serve_vllm.sh` that serves the base with every adapter."""
    folder.mkdir(parents=True, exist_ok=True)
    template_path = folder / VLLM_CHAT_TEMPLATE
    write_text_atomic(template_path, chat_template())
    command = vllm_command(base, adapters, template_path.resolve())
    script = folder / VLLM_SCRIPT
    write_text_atomic(script, "#!/usr/bin/env bash\n# Serve one base with its LoRA adapters; pick one by --model NAME.\n"
                      f"set -euo pipefail\nexec {shlex.join(command)} \"$@\"\n")
    script.chmod(0o755)
    return script, command


def vllm_usage(adapters: list[ServedAdapter]) -> list[str]:
    """Return one `securecli ask` line per served adapter."""
    return [
        f'securecli ask --backend openai --base-url http://localhost:8000/v1 --model {adapter.name} '
        '"list running docker containers"'
        for adapter in adapters
    ]


@dataclass(frozen=True)
class ExportOptions:
    """How to convert: the adapter's GGUF type and which base the LoRA is applied to."""

    outtype: str = "f16"
    base_config: Path | None = None
    base_gguf: Path | None = None
    convert_base: bool = False
    base_outtype: str = "f16"


def export_local(adapter_dir: Path, base: dict[str, Any], folder: Path, to: str, options: ExportOptions) -> GGUFExport:
    """Export one adapter `--to gguf` (GGUF LoRA + manifest) or `--to ollama` (also the Modelfile)."""
    if to not in ("gguf", "ollama"):
        raise ExportError(f"--to {to!r}: one adapter exports to gguf or ollama (vllm serves the PEFT adapter)")
    exported = export_gguf(
        adapter_dir, base, folder, outtype=options.outtype, base_config=options.base_config,
        base_gguf=options.base_gguf, convert_base_model=options.convert_base, base_outtype=options.base_outtype,
    )
    if to == "ollama":
        write_modelfile(exported)
    return exported


def served_adapter(name: str, adapter_dir: Path) -> ServedAdapter:
    """Describe one adapter for vLLM from its PEFT config."""
    config = read_adapter_config(adapter_dir)
    return ServedAdapter(name=name, adapter_dir=adapter_dir, rank=int(config.get("r") or 8))


def same_base(bases: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the one base every adapter was trained on, or explain which differ."""
    seen = {(str(base.get("name")), base.get("revision")) for base in bases}
    if len(seen) != 1:
        listed = ", ".join(f"{name}@{revision}" for name, revision in sorted(seen, key=str))
        raise ExportError(f"vllm serves one base, but these runs were trained on different bases: {listed}")
    return bases[0]


def read_export_manifest(folder: Path) -> dict[str, Any] | None:
    """Return `folder/export.json` (a run's `export/`), or None when the run was not exported."""
    path = folder / EXPORT_MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def render_chat(messages: list[dict[str, str]]) -> str:
    """Render messages in the training chat format (axolotl's template, as apply_chat_template renders it)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return environment.from_string(chat_template()).render(messages=messages, add_generation_prompt=True)


def llama_cpp_answer(base_gguf: Path, lora_gguf: Path, request: str, max_tokens: int = 24) -> str:
    """Greedy-decode one answer with llama.cpp from a base GGUF plus a GGUF LoRA, in our chat format."""
    from llama_cpp import Llama

    from common.prompt import chat_messages

    llm = Llama(model_path=str(base_gguf), lora_path=str(lora_gguf), n_ctx=512, verbose=False)
    try:
        prompt = llm.tokenize(render_chat(chat_messages(request)).encode("utf-8"), add_bos=False, special=True)
        completion = llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, stop=list(STOP_TOKENS))
    finally:
        llm.close()
    return str(completion["choices"][0]["text"])
