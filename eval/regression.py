"""General-capability regression with lm-evaluation-harness (`lm_eval.simple_evaluate`, `hf` model).

`tasks` is a comma-separated list of lm-eval task names: an MMLU subset on a GPU box, or the local
`securecli_shell_mc` task shipped in `eval/suites/` (20 shell-knowledge questions) offline.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any

from common.atomic import write_json_atomic

LOCAL_TASK = "securecli_shell_mc"
DEFAULT_BOOTSTRAP_ITERS = 1000


def suites_dir() -> Path:
    """Return the directory of task YAMLs lm-eval should include (`eval/suites`)."""
    return Path(str(resources.files("eval") / "suites"))


def parse_tasks(tasks: str) -> list[str]:
    """Split a comma-separated task list, rejecting an empty one."""
    names = [name.strip() for name in tasks.split(",") if name.strip()]
    if not names:
        raise ValueError(f"no lm-eval task names in {tasks!r}")
    return names


def model_arguments(model: str, adapter: str | None, dtype: str) -> dict[str, str]:
    """Return lm-eval `hf` model arguments; an adapter (path or ORG/NAME@REV) becomes `peft=` a local path."""
    arguments = {"pretrained": model, "dtype": dtype}
    if adapter:
        from common.hub import resolve_adapter

        arguments["peft"] = str(resolve_adapter(adapter))
    return arguments


def task_manager(task_names: list[str]) -> Any:
    """Index only `eval/suites` when it holds every requested task (fast), else lm-eval's built-ins too."""
    from lm_eval.tasks import TaskManager

    local = TaskManager(include_path=str(suites_dir()), include_defaults=False)
    if set(task_names) <= set(local.all_tasks):
        return local
    return TaskManager(include_path=str(suites_dir()))


def _finite(value: Any) -> Any:
    """Make a metric JSON-safe: NaN/inf (e.g. a stderr of one sample) become None."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def summarize(results: dict[str, Any], task_names: list[str]) -> dict[str, dict[str, Any]]:
    """Keep each task's numeric metrics, named without lm-eval's ',none' filter suffix, plus its sample count."""
    summary = {}
    for name, metrics in sorted(results["results"].items()):
        row = {key.split(",")[0]: _finite(value) for key, value in metrics.items()
               if isinstance(value, int | float) and not isinstance(value, bool)}
        counts = results.get("n-samples", {}).get(name, {})
        row["samples"] = counts.get("effective", counts.get("original"))
        summary[name] = row
    missing = [name for name in task_names if name not in summary]
    if missing:
        raise RuntimeError(f"lm-eval returned no results for: {', '.join(missing)}")
    return summary


def evaluate_regression(
    model: str,
    adapter: str | None,
    tasks: str,
    limit: int | None,
    out_dir: Path,
    batch_size: int = 8,
    device: str | None = None,
    num_fewshot: int | None = None,
) -> dict[str, Any]:
    """Run lm-eval on `tasks` for the base model (plus adapter); write `regression.json` and return its summary."""
    import lm_eval
    import torch

    task_names = parse_tasks(tasks)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    arguments = model_arguments(model, adapter, "bfloat16" if device.startswith("cuda") else "float32")
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args=arguments,
        tasks=task_names,
        num_fewshot=num_fewshot,
        batch_size=batch_size,
        device=device,
        limit=limit,
        task_manager=task_manager(task_names),
        log_samples=False,
        bootstrap_iters=DEFAULT_BOOTSTRAP_ITERS,
    )
    if results is None:
        raise RuntimeError("lm-eval returned no results (non-zero rank in a distributed run)")
    summary = {
        "model": model,
        "adapter": adapter,
        "tasks": task_names,
        "limit": limit,
        "num_fewshot": num_fewshot,
        "lm_eval_version": lm_eval.__version__,
        "results": summarize(results, task_names),
    }
    details = {key: results.get(key) for key in ("versions", "n-shot", "n-samples", "higher_is_better")}
    write_json_atomic(Path(out_dir) / "regression.json", {**summary, "lm_eval": details})
    return summary
