"""`securecli launch` (RunPod pod from runpod.yaml) and `securecli pipeline` (the container's default job)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from common.console import CliConsole

console = CliConsole()
err_console = CliConsole(stderr=True)


def launch(
    spec_path: Annotated[Path, typer.Argument(help="pod spec, e.g. runpod.yaml")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print what would be sent, secrets redacted")] = False,
    runpodctl: Annotated[bool, typer.Option("--runpodctl", help="print the equivalent runpodctl command")] = False,
    estimate: Annotated[
        Path | None, typer.Option("--estimate", help="prepared data report.json: print tokens, steps, time and cost")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="local axolotl config for --estimate (default: the spec's)")
    ] = None,
    api_url: Annotated[str, typer.Option("--api-url", help="RunPod API base URL")] = "",
) -> None:
    """Create a RunPod GPU pod from a pod spec (REST v2 `POST /v2/pods`), or show it with --dry-run."""
    from securecli import launch as pods

    try:
        spec = pods.load_spec(spec_path)
        if estimate is not None:
            _print_estimate(pods, spec, estimate, config)
        if runpodctl:
            console.print(pods.runpodctl_command(spec), soft_wrap=True, markup=False, highlight=False)
            return
        if dry_run:
            payload = pods.render_payload(spec, pods.placeholder_secrets(spec))
            _print_dry_run(pods, spec, payload, api_url or pods.RUNPOD_API_URL)
            return
        secrets = pods.secret_values(spec)
        payload = pods.render_payload(spec, secrets)
        api_key = os.environ.get(pods.API_KEY_ENV, "")
        if not api_key:
            raise pods.LaunchError(f"set {pods.API_KEY_ENV} in the environment to create a pod")
        pod = pods.create_pod(payload, api_key, secrets, base_url=api_url or pods.RUNPOD_API_URL)
    except pods.LaunchError as error:
        err_console.error(error)
        raise typer.Exit(2) from None
    console.print(f"created pod {pod.get('id', '?')} ({pod.get('status', 'unknown status')})", markup=False)


def _print_dry_run(pods, spec, payload: dict, api_url: str) -> None:
    """Print the request that would be sent, with secrets already redacted in `payload`."""
    console.print(f"POST {api_url.rstrip('/')}{pods.PODS_PATH}", markup=False)
    console.print(f"Authorization: Bearer {pods.REDACTED}  (from ${pods.API_KEY_ENV})", markup=False)
    console.print_json(json.dumps(payload))
    for secret in spec.secrets:
        state = "RunPod account secret" if secret.source == "runpod_secret" else (
            "set locally" if os.environ.get(secret.name) else "NOT SET locally")
        console.print(f"secret {secret.name}: {state}", markup=False)
    cost = pods.hourly_cost(spec)
    if cost is None:
        console.print("estimated cost: no price configured for this GPU type (runpod.yaml: estimate.prices_usd_per_gpu_hour)")
    else:
        console.print(f"estimated cost: ${cost:.2f}/hour ({spec.gpu.count} x {spec.gpu.type_id})", markup=False)


def _print_estimate(pods, spec, report: Path, config: Path | None) -> None:
    """Print the run estimate derived from the prepared data and the axolotl config."""
    from common.tiny import qwen_tokenizer_dir
    from publish.confighash import ConfigError, load_config

    config_path = config or pods.local_config_path(spec)
    try:
        config_dict = load_config(config_path)
    except ConfigError as error:
        raise pods.LaunchError(str(error)) from error
    lengths = pods.row_token_lengths(pods.train_file_for(report), qwen_tokenizer_dir())
    result = pods.estimate_run(lengths, config_dict, spec)
    console.print(f"estimate for {config_path} on {result.gpu_count} x {spec.gpu.type_id}:", markup=False)
    console.print_json(result.model_dump_json())


def pipeline(
    config: Annotated[Path, typer.Argument(help="versioned axolotl config")],
    repo: Annotated[str, typer.Option("--repo", envvar="SECURECLI_REPO_ID", help="Hub repo id ORG/NAME")],
    source: Annotated[list[str] | None, typer.Option("--source", help="prepare source spec (default: NL2SH-ALFA train + the HF dataset)")] = None,
    merged: Annotated[bool, typer.Option("--merged", help="also publish the merged model")] = False,
    dry_run_publish: Annotated[bool, typer.Option("--dry-run-publish", help="stage the upload without pushing")] = False,
) -> None:
    """Run prepare -> train -> eval -> publish for one config and Hub repo (the container's default job)."""
    from securecli import launch as pods

    try:
        pods.run_pipeline(config, repo, sources=source or None, merged=merged, dry_run_publish=dry_run_publish,
                          log=lambda message: console.print(message, markup=False))
    except pods.LaunchError as error:
        err_console.error(error)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """Add `launch` and `pipeline` to the CLI."""
    app.command("launch")(launch)
    app.command("pipeline")(pipeline)
