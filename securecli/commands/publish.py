"""`securecli configs`, `merge`, `publish`, `pull` and `reproduce`: run identity and shipping."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from common.console import CliConsole

console = CliConsole()
err_console = CliConsole(stderr=True)


def _fail(error: Exception, code: int = 2) -> typer.Exit:
    """Print an error without a traceback and return the exit to raise."""
    err_console.error(error)
    return typer.Exit(code)


def _say(text: str) -> None:
    """Print plain text (no rich markup or highlighting)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def run_directory(run: str) -> Path:
    """Return a run directory from a path, a run name under runs/, or a unique config-hash prefix."""
    from common.paths import runs_dir

    path = Path(run).expanduser()
    if path.is_dir():
        return path
    matches = sorted(p for p in runs_dir().glob(f"{run}*") if (p / "manifest.json").is_file()) if run else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"run {run!r} is ambiguous: {', '.join(p.name for p in matches)}")
    raise ValueError(f"run {run!r} not found: give a run directory or a config hash under {runs_dir()}")


def configs() -> None:
    """List every versioned config in axolotl/ with its config hash."""
    from common.paths import repo_root
    from publish.confighash import ConfigError, file_config_hash, short_hash
    from securecli.configs import versioned_configs

    found = versioned_configs()
    if not found:
        raise _fail(FileNotFoundError(f"{repo_root() / 'axolotl'}: no versioned configs (*.yml)"))
    for path in found:
        try:
            full = file_config_hash(path)
        except ConfigError as error:
            raise _fail(error) from None
        _say(f"{short_hash(full)}  {path.relative_to(repo_root()).as_posix()}  (sha256 {full})")


def merge(
    run: Annotated[str, typer.Argument(help="run directory or config hash")],
    dtype: Annotated[str, typer.Option(help="merge precision: bfloat16 or float32 (never 4-bit)")] = "bfloat16",
    tolerance: Annotated[
        float | None, typer.Option(help="max abs logit difference allowed (default: by dtype)")
    ] = None,
) -> None:
    """Merge a run's LoRA adapter into its unquantized base and verify the logits."""
    from publish.merge import MergeError, merge_run

    try:
        run_dir = run_directory(run)
        with console.status(f"merging {run_dir / 'adapter'} in {dtype}"):
            result = merge_run(run_dir, dtype=dtype, tolerance=tolerance)
    except (MergeError, ValueError, OSError) as error:
        raise _fail(error) from None
    _say(f"merged model: {result.merged_dir}")
    _say(
        f"logit check on sample inputs: max abs diff {result.max_abs_diff:.3g} <= tolerance {result.tolerance:.3g} "
        f"(adapter's own effect on the logits: {result.adapter_effect:.3g})"
    )


def publish(
    run: Annotated[str, typer.Argument(help="run directory or config hash")],
    repo: Annotated[str, typer.Option("--repo", help="Hub repository ORG/NAME")],
    merged: Annotated[bool, typer.Option("--merged", help="publish the merged model instead of the adapter")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print every file with size and sha256, and the card")] = False,
    force: Annotated[bool, typer.Option("--force", help="publish even without eval or with failed safety gates")] = False,
) -> None:
    """Publish a run to the Hub: card, weights, config, manifest and eval report, tagged cfg-<hash>."""
    from huggingface_hub.errors import HfHubHTTPError

    from publish.hub import PublishError, format_plan, publish_run
    from publish.manifest import ManifestError

    try:
        run_dir = run_directory(run)
        with console.status("hashing files" if dry_run else f"pushing to {repo}"):
            plan = publish_run(run_dir, repo, merged=merged, dry_run=dry_run, force=force)
    except (PublishError, ManifestError, ValueError, OSError, HfHubHTTPError) as error:
        raise _fail(error) from None
    if plan.gate_failures:
        err_console.print(f"[yellow]warning:[/yellow] {plan.gates_summary()}", highlight=False, soft_wrap=True)
    if dry_run:
        _say(format_plan(plan))
        return
    _say(f"pushed {len(plan.files)} files to https://huggingface.co/{plan.repo_id} at {plan.commit_sha}")
    _say(f"tagged {plan.tag}; pull it with: securecli pull {plan.repo_id}@{plan.tag}")


def pull(
    ref: Annotated[str, typer.Argument(help="ORG/NAME[@REVISION]; pin a revision or a cfg-<hash> tag")],
    cache_dir: Annotated[Path | None, typer.Option(help="Hugging Face cache directory")] = None,
    export: Annotated[str | None, typer.Option("--export", help="then export it: gguf or ollama")] = None,
    out: Annotated[Path | None, typer.Option(help="with --export: output folder (default data/exports/...)")] = None,
    base_gguf: Annotated[Path | None, typer.Option(help="with --export: a local base GGUF to apply it to")] = None,
    outtype: Annotated[str, typer.Option(help="with --export: GGUF LoRA type f16, bf16 or q8_0")] = "f16",
) -> None:
    """Download a published adapter at a pinned revision and verify every file's sha256; optionally export it."""
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    from common.hub import VerificationError, parse_ref
    from common.hub import pull as pull_snapshot
    from common.jsonl import MANIFEST_NAME, ManifestError, read_json
    from common.paths import data_dir
    from publish.export import ExportError, ExportOptions, export_local, ollama_commands
    from publish.hub import usage_text

    try:
        with console.status(f"downloading {ref}"):
            folder = pull_snapshot(ref, cache_dir)
        _say(usage_text(ref, folder))
        if export is None:
            return
        repo_id, revision = parse_ref(ref)
        base = read_json(folder / MANIFEST_NAME, "published manifest")["base_model"]
        target = out or data_dir() / "exports" / f"{repo_id.replace('/', '--')}@{revision or folder.name}"
        with console.status(f"converting {repo_id} with llama.cpp's converters"):
            exported = export_local(folder, base, target, export, ExportOptions(outtype=outtype, base_gguf=base_gguf))
    except (VerificationError, ExportError, ManifestError, ValueError, OSError, HfHubHTTPError, LocalEntryNotFoundError) as error:
        raise _fail(error) from None
    _say(f"GGUF LoRA: {exported.adapter_gguf} (fits {exported.base.name})")
    if export == "ollama":
        name = repo_id.split("/")[-1].lower()
        _say(f"Modelfile: {target / 'Modelfile'}\nuse it with:\n  " + "\n  ".join(ollama_commands(name, target)))


def reproduce(
    ref: Annotated[str, typer.Argument(help="config hash (short or full), or a downloaded manifest.json")],
    rtol: Annotated[float, typer.Option(help="relative tolerance on final metrics")] = 0.02,
    atol: Annotated[float, typer.Option(help="absolute tolerance on final metrics")] = 1e-4,
) -> None:
    """Re-prepare the data, retrain the recorded config, and report every difference from the record."""
    from publish.manifest import ManifestError
    from securecli.reproduce import ReproduceError, Tolerance, format_report
    from securecli.reproduce import reproduce as redo
    from securecli.train import TrainingError

    try:
        with console.status(f"reproducing {ref}: re-preparing data, then training"):
            report = redo(ref, tolerance=Tolerance(abs=atol, rel=rtol))
    except (ReproduceError, ManifestError, TrainingError, ValueError, OSError) as error:
        raise _fail(error) from None
    _say(format_report(report))
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the run-identity and shipping verbs to the CLI."""
    app.command()(configs)
    app.command()(merge)
    app.command()(publish)
    app.command()(pull)
    app.command()(reproduce)
