"""`securecli export RUN --to gguf|ollama|vllm`: run a trained adapter in llama.cpp, Ollama or vLLM."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from securecli.commands.publish import _fail, _say, run_directory

console = Console()


def _named_run(spec: str) -> tuple[str | None, str]:
    """Split `NAME=RUN` into its name and run (no name when there is no `=`)."""
    name, sep, run = spec.partition("=")
    return (name, run) if sep and name and "/" not in name else (None, spec)


def export(
    runs: Annotated[list[str], typer.Argument(help="run directory or config hash; NAME=RUN names it (vllm: several)")],
    to: Annotated[str, typer.Option("--to", help="gguf | ollama | vllm")],
    outtype: Annotated[str, typer.Option(help="GGUF LoRA type: f16, bf16 or q8_0")] = "f16",
    base_config: Annotated[
        Path | None, typer.Option(help="folder with the base model's config.json (default: the run's base)")
    ] = None,
    base_gguf: Annotated[Path | None, typer.Option(help="a local base GGUF the LoRA is applied to")] = None,
    convert_base: Annotated[
        bool, typer.Option("--convert-base", help="also convert the base checkpoint to GGUF (convert_hf_to_gguf.py)")
    ] = False,
    base_outtype: Annotated[str, typer.Option(help="with --convert-base: f32, f16, bf16 or q8_0")] = "f16",
    name: Annotated[str | None, typer.Option(help="ollama: the model name (default securecli-<hash>)")] = None,
    out: Annotated[Path | None, typer.Option(help="output folder (default: RUN/export)")] = None,
    try_request: Annotated[
        str | None, typer.Option("--try", help="with a local base GGUF: print llama.cpp's answer to this request")
    ] = None,
) -> None:
    """Export adapters: a GGUF LoRA (llama.cpp), an Ollama Modelfile, or a vLLM multi-LoRA serve command."""
    from publish.confighash import short_hash
    from publish.export import ExportError, ExportOptions, export_local, same_base, served_adapter, vllm_usage, write_vllm_script
    from publish.manifest import ManifestError, read_run_manifest

    try:
        named = [(label, run_directory(run)) for label, run in map(_named_run, runs)]
        manifests = [read_run_manifest(run_dir) for _, run_dir in named]
        labels = [label or f"securecli-{short_hash(m['config_hash'])}" for (label, _), m in zip(named, manifests)]
        folder = out or named[0][1] / "export"
        if to == "vllm":
            adapters = [served_adapter(label, run_dir / "adapter") for label, (_, run_dir) in zip(labels, named)]
            script, command = write_vllm_script(same_base([m["base_model"] for m in manifests]), adapters, folder)
            _say(f"vLLM serve command (also in {script}):\n  " + " \\\n    ".join(_wrapped(command)))
            _say("then pick an adapter by model name:\n  " + "\n  ".join(vllm_usage(adapters)))
            return
        if len(named) != 1:
            raise ExportError(f"--to {to} exports one run; got {len(named)} (several runs are for --to vllm)")
        if try_request is not None and base_gguf is None and not convert_base:
            raise ExportError("--try needs a local base GGUF: pass --base-gguf or --convert-base")
        options = ExportOptions(outtype=outtype, base_config=base_config, base_gguf=base_gguf,
                                convert_base=convert_base, base_outtype=base_outtype)
        with console.status(f"converting {named[0][1] / 'adapter'} with llama.cpp's converters"):
            exported = export_local(named[0][1] / "adapter", manifests[0]["base_model"], folder, to, options)
        _report(exported, to, name or labels[0])
        if try_request is not None:
            _try(exported, try_request)
    except (ExportError, ManifestError, ValueError, OSError) as error:
        raise _fail(error) from None


def _try(exported, request: str) -> None:
    """Print llama.cpp's greedy answer to one request with the exported base and LoRA."""
    from publish.export import llama_cpp_answer

    with console.status("decoding with llama.cpp"):
        answer = llama_cpp_answer(exported.base.path, exported.adapter_gguf, request)
    _say(f"llama.cpp (base + LoRA) answers {request!r}:\n  {answer!r}")


def _wrapped(command: list[str]) -> list[str]:
    """Group a command's words into one option (and its values) per line."""
    import shlex

    lines: list[list[str]] = [[]]
    for word in command:
        if word.startswith("--") and lines[-1]:
            lines.append([])
        lines[-1].append(word)
    return [shlex.join(words) for words in lines]


def _report(exported, to: str, name: str) -> None:
    """Print what was written and how to use it."""
    from publish.export import MODELFILE, ollama_commands

    base = exported.base
    _say(f"GGUF LoRA: {exported.adapter_gguf}")
    _say(f"fits base: {base.name} ({base.source}{', sha256 ' + base.sha256 if base.sha256 else ''})")
    _say(f"manifest:  {exported.manifest_path}")
    if base.path:
        _say(f"llama.cpp: llama-cli -m {base.path} --lora {exported.adapter_gguf}")
    if to == "ollama":
        _say(f"Modelfile: {exported.folder / MODELFILE}\nuse it with:\n  " + "\n  ".join(ollama_commands(name, exported.folder)))


def register(app: typer.Typer) -> None:
    """Add `export` to the CLI."""
    app.command()(export)
