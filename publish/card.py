"""The model card: Hub metadata and a body filled from the run manifest and the eval metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from common.prompt import SYSTEM_PROMPT
from publish.confighash import short_hash
from publish.manifest import read_json

EVAL_METRICS = Path("eval") / "metrics.json"
DEFAULT_LICENSE = "apache-2.0"
BASE_TAGS = ("securecli-tuner", "bash", "shell", "nl2bash", "code", "safety", "axolotl")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
EVAL_SECTIONS_SKIPPED = frozenset({"dataset", "safety", "run", "config_hash", "adapter", "comparison"})


def load_eval_metrics(run_dir: Path) -> dict[str, Any] | None:
    """Return `run_dir/eval/metrics.json`, or None when the run was not evaluated."""
    path = run_dir / EVAL_METRICS
    return read_json(path, "eval metrics") if path.is_file() else None


def safety_gates_passed(metrics: dict[str, Any] | None) -> bool | None:
    """Return the safety suite's verdict: True, False, or None when it was not run."""
    if not metrics or not isinstance(metrics.get("safety"), dict):
        return None
    passed = metrics["safety"].get("gates_passed")
    return passed if isinstance(passed, bool) else None


def _numeric_leaves(tree: Any, prefix: str = "") -> dict[str, int | float]:
    """Flatten nested mappings to {"a.b": number} for every int/float leaf (booleans excluded)."""
    if isinstance(tree, bool):
        return {}
    if isinstance(tree, int | float):
        return {prefix: tree} if prefix else {}
    if isinstance(tree, dict):
        leaves: dict[str, int | float] = {}
        for key in sorted(tree):
            leaves.update(_numeric_leaves(tree[key], f"{prefix}.{key}" if prefix else str(key)))
        return leaves
    return {}


def task_metrics(metrics: dict[str, Any]) -> dict[str, int | float]:
    """Return the headline task metrics: `metrics["metrics"]` if present, else every top-level number."""
    if isinstance(metrics.get("metrics"), dict):
        return _numeric_leaves(metrics["metrics"])
    return _numeric_leaves({k: v for k, v in metrics.items() if k not in EVAL_SECTIONS_SKIPPED})


SAFETY_RATE_GROUPS = ("category_pass_rates.", "guarded_category_pass_rates.", "over_refusal_rates.",
                      "guarded_over_refusal_rates.")


def safety_metrics(safety: dict[str, Any]) -> dict[str, int | float]:
    """Return the safety suite's pass and over-refusal rates, model alone and guarded, not thresholds or counts."""
    return {
        name: value
        for name, value in _numeric_leaves(safety).items()
        if ("." not in name and name.endswith("_pass_rate")) or name.startswith(SAFETY_RATE_GROUPS)
    }


def _safety_table(metrics: dict[str, Any] | None) -> str:
    """Render the safety figures side by side: the model alone (what the gates use) and with both guards."""
    from eval.safety import side_by_side

    safety = (metrics or {}).get("safety")
    if not isinstance(safety, dict) or not (rows := side_by_side(safety)):
        return ""
    lines = ["### Safety: the model alone and with both guards", "",
             "The gates use the model-alone figures; the guards are a second line.", "",
             "| figure | model alone | model + both guards |", "|---|---|---|"]
    lines += [f"| {name} | {'n/a' if alone is None else f'`{alone}`'} | {'n/a' if guarded is None else f'`{guarded}`'} |"
              for name, alone, guarded in rows]
    return "\n\n" + "\n".join(lines)


def _eval_dataset(manifest: dict[str, Any], metrics: dict[str, Any]) -> tuple[str, str | None, str]:
    """Return the evaluated dataset's name, revision and split (defaults: our prepared test split)."""
    described = metrics.get("dataset") if isinstance(metrics.get("dataset"), dict) else {}
    recorded = manifest.get("dataset") or {}
    name = described.get("name") or "securecli-prepared"
    revision = described.get("revision") or described.get("dataset_hash") or recorded.get("dataset_hash")
    return str(name), revision, str(described.get("split") or "test")


def eval_results(manifest: dict[str, Any], metrics: dict[str, Any] | None) -> list[EvalResult]:
    """Return model-index results for the task metrics and the safety suite, carrying dataset revisions."""
    if not metrics:
        return []
    name, revision, split = _eval_dataset(manifest, metrics)
    results = [
        EvalResult(
            task_type="text-generation", task_name="Natural language to Bash",
            dataset_type=name, dataset_name=name, dataset_split=split, dataset_revision=revision,
            metric_type=metric, metric_name=metric, metric_value=value,
        )
        for metric, value in task_metrics(metrics).items()
    ]
    safety = metrics.get("safety") if isinstance(metrics.get("safety"), dict) else {}
    safety_revision = safety.get("suite_sha256") or safety.get("suite_revision")
    results += [
        EvalResult(
            task_type="text-generation", task_name="Refusal of unsafe requests",
            dataset_type="securecli-safety-suite", dataset_name="securecli-safety-suite",
            dataset_revision=safety_revision, metric_type=f"safety.{metric}", metric_name=f"safety.{metric}",
            metric_value=value,
        )
        for metric, value in safety_metrics(safety).items()
    ]
    return results


def hub_datasets(manifest: dict[str, Any]) -> list[str]:
    """Return the Hub dataset ids among the training sources (`hf:REPO[@REV]`)."""
    ids = []
    for source in _source_specs(manifest):
        if source.startswith("hf:"):
            ids.append(source[3:].split("#", 1)[0].split("@", 1)[0])
    return sorted(set(ids))


def _source_specs(manifest: dict[str, Any]) -> list[str]:
    """Return each training source as its spec string, whether recorded as strings or mappings."""
    sources = (manifest.get("dataset") or {}).get("sources") or []
    specs = []
    for source in sources:
        if isinstance(source, dict):
            spec = str(source.get("spec") or source.get("source") or source.get("name") or source)
            revision = source.get("revision")
            specs.append(f"{spec}@{revision}" if revision and "@" not in spec else spec)
        else:
            specs.append(str(source))
    return specs


def card_data(
    manifest: dict[str, Any], metrics: dict[str, Any] | None, *, repo_id: str, merged: bool, license: str
) -> ModelCardData:
    """Return the card's Hub metadata."""
    adapter_kind = str(manifest["config"].get("adapter") or "lora")
    return ModelCardData(
        base_model=manifest["base_model"]["name"],
        base_model_relation="finetune" if merged else "adapter",
        library_name="transformers" if merged else "peft",
        pipeline_tag="text-generation",
        datasets=hub_datasets(manifest) or None,
        license=license,
        language=["en"],
        tags=[*BASE_TAGS, adapter_kind, "merged" if merged else "lora"],
        model_name=repo_id,
        eval_results=eval_results(manifest, metrics) or None,
    )


def _table(rows: list[tuple[str, Any]], header: tuple[str, str]) -> str:
    """Render a two-column markdown table."""
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {key} | {'' if value is None else f'`{value}`'} |" for key, value in rows]
    return "\n".join(lines)


def _revision_arg(base: dict[str, Any]) -> str:
    """Return `, revision="..."` for a pinned base, or nothing."""
    return f', revision="{base["revision"]}"' if base.get("revision") else ""


def _is_hub_id(name: str) -> bool:
    """Tell whether a model name is a Hub repository id (ORG/NAME) rather than a local path."""
    return bool(HUB_ID.fullmatch(name)) and not Path(name).exists()


def _base_link(base: dict[str, Any]) -> str:
    """Describe the base model: a Hub link with its pinned revision, or a local checkpoint."""
    if not _is_hub_id(str(base["name"])):
        return f"the local checkpoint `{base['name']}`"
    return f"[`{base['name']}`](https://huggingface.co/{base['name']}) (revision `{base['revision']}`)"


def _usage(repo_id: str, revision: str, manifest: dict[str, Any], merged: bool) -> str:
    """Return the how-to-use section for an adapter or a merged model, pinned to the config tag."""
    base = manifest["base_model"]
    if merged:
        load = (
            f'model = AutoModelForCausalLM.from_pretrained("{repo_id}", revision="{revision}", dtype="auto")\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}", revision="{revision}")'
        )
        imports = "from transformers import AutoModelForCausalLM, AutoTokenizer"
    else:
        load = (
            f'base = AutoModelForCausalLM.from_pretrained("{base["name"]}"{_revision_arg(base)}, dtype="auto")\n'
            f'model = PeftModel.from_pretrained(base, "{repo_id}", revision="{revision}")\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}", revision="{revision}")'
        )
        imports = "from peft import PeftModel\nfrom transformers import AutoModelForCausalLM, AutoTokenizer"
    return (
        "```bash\n"
        f"securecli pull {repo_id}@{revision}      # download and verify every file's sha256\n"
        f'securecli ask --adapter {repo_id}@{revision} "list running docker containers"\n'
        "```\n\n```python\n"
        f"{imports}\n\n{load}\n"
        f"SYSTEM_PROMPT = {json.dumps(SYSTEM_PROMPT)}\n"
        'request = "list running docker containers"\n'
        'messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": request}]\n'
        "inputs = tokenizer.apply_chat_template(\n"
        "    messages, add_generation_prompt=True, return_tensors=\"pt\", return_dict=True\n)\n"
        "output = model.generate(**inputs, max_new_tokens=64, do_sample=False)\n"
        "print(tokenizer.decode(output[0, inputs[\"input_ids\"].shape[1]:], skip_special_tokens=True))\n"
        "```\n\nAlways run the output through the `commandrisk` guard before executing it."
    )


def _gates_line(metrics: dict[str, Any] | None) -> str:
    """Describe the eval state and the safety gates in one line."""
    if metrics is None:
        return "**Not evaluated.** This model was published with `--force` before any eval ran."
    verdict = safety_gates_passed(metrics)
    if verdict is None:
        return "**Safety gates: not run.**"
    if verdict:
        return "**Safety gates: passed.**"
    failures = metrics["safety"].get("gate_failures") or []
    return "**Safety gates: FAILED** (" + "; ".join(map(str, failures)) + "). Do not deploy this model."


def _comparison_section(metrics: dict[str, Any] | None) -> str:
    """Render the base-vs-adapter table beside the paper's published figures, when the eval made one."""
    if not metrics or not isinstance(metrics.get("comparison"), dict):
        return ""
    from eval.comparison import render_markdown

    return ("\n\n### Base vs adapter on the InterCode-ALFA tasks, beside the published figures\n\n"
            + render_markdown(metrics["comparison"]))


def _local_section(export: dict[str, Any]) -> str:
    """Describe the GGUF LoRA export: its file and sha256, and the base GGUF (name and sha256) it fits."""
    adapter, base = export["adapter_gguf"], export["base_gguf"]
    return "## Run it locally (llama.cpp, Ollama)\n\n" + _table(
        [
            ("GGUF LoRA", f"{adapter['path']} ({adapter['outtype']})"),
            ("GGUF LoRA sha256", adapter["sha256"]),
            ("fits base GGUF", base["name"]),
            ("base GGUF sha256", base["sha256"] or "not a local file: " + base["source"]),
            ("converted by", f"llama.cpp's convert_lora_to_gguf.py (llama-cpp-python {export['llama_cpp_python']})"),
        ],
        ("field", "value"),
    ) + "\n\nMake the same files with `securecli export RUN --to ollama` (or `securecli pull REPO@REV --export ollama`)."


def card_body(
    manifest: dict[str, Any], metrics: dict[str, Any] | None, *, repo_id: str, merged: bool, forced: list[str],
    export: dict[str, Any] | None = None,
) -> str:
    """Return the card's markdown body."""
    short = short_hash(manifest["config_hash"])
    base = manifest["base_model"]
    env = manifest["environment"]
    hardware = env["hardware"]
    dataset = manifest.get("dataset") or {}
    kind = "model merged from a LoRA adapter" if merged else "LoRA adapter"
    sections = [
        f"# {repo_id.split('/')[-1]}\n\n"
        f"A {kind} for {_base_link(base)} that turns a plain-language request into one safe Bash command, "
        f"or refuses a destructive one. Trained with SecureCLI-Tuner from config `{short}`.",
        "## System prompt\n\nTrained and evaluated with this exact system message; use it verbatim:\n\n"
        f"```text\n{SYSTEM_PROMPT}\n```",
        f"## Usage\n\n{_usage(repo_id, f'cfg-{short}', manifest, merged)}",
        "## Evaluation\n\n" + _gates_line(metrics) + (
            "\n\n" + _table(list(task_metrics(metrics).items()), ("metric", "value")) if metrics else ""
        ) + _comparison_section(metrics) + _safety_table(metrics),
        "## Training\n\n" + _table(
            [
                ("config hash", manifest["config_hash"]),
                ("versioned config", f"{manifest['versioned_config']['path']} ({manifest['versioned_config']['hash'][:12]})"),
                ("base model", f"{base['name']}@{base['revision']}" if base["revision"] else base["name"]),
                ("dataset hash", dataset.get("dataset_hash")),
                *[(f"sha256 {name}", digest) for name, digest in sorted((dataset.get("files") or {}).items())],
                ("sources", ", ".join(_source_specs(manifest)) or None),
                ("seed", manifest.get("seed")),
                ("started", manifest["times"]["started_at"]),
                ("ended", manifest["times"]["ended_at"]),
                *[(f"training {name}", value) for name, value in _numeric_leaves(manifest["metrics"]).items()],
            ],
            ("field", "value"),
        ),
        "## Environment\n\nOne set of versions, read from the run itself (`manifest.json`):\n\n" + _table(
            [
                *[(name, version) for name, version in env["versions"].items()],
                ("requirements.lock sha256", env["lock_file_sha256"]),
                ("git commit", env["git"]["commit"]),
                ("git dirty", env["git"]["dirty"]),
                ("accelerator", ", ".join(gpu["name"] for gpu in hardware["gpus"]) or f"CPU: {hardware['cpu']}"),
                ("driver", hardware["driver"]),
                ("CUDA", hardware["cuda"]),
                ("container image", env["container_image"]),
            ],
            ("component", "version"),
        ),
        f"## Reproduce\n\n```bash\nsecurecli reproduce {short}\n```\n\n"
        "This re-prepares the data (checking its hash), retrains, and reports every difference in metrics, "
        "versions and hardware.",
    ]
    if export and not merged:
        sections.insert(3, _local_section(export))
    if forced:
        sections.insert(1, "> **Published with `--force`** despite: " + "; ".join(forced) + ".")
    return "\n\n".join(sections) + "\n"


def build_card(
    manifest: dict[str, Any],
    metrics: dict[str, Any] | None,
    *,
    repo_id: str,
    merged: bool = False,
    license: str = DEFAULT_LICENSE,
    forced: list[str] | None = None,
    export: dict[str, Any] | None = None,
) -> ModelCard:
    """Return the model card (YAML metadata + markdown body) for a run; `export` is its `export/export.json`."""
    data = card_data(manifest, metrics, repo_id=repo_id, merged=merged, license=license)
    body = card_body(manifest, metrics, repo_id=repo_id, merged=merged, forced=forced or [], export=export)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
