"""`prepare`: sources -> read -> schema -> normalize -> leak -> dedup -> danger -> shellcheck -> generate -> split
-> files.

The danger stage turns a blocked row into a refusal row; the generate step adds near-miss benign rows
and adversarial rows (`preprocessing.generate`), each checked like source rows and counted apart.
A run that keeps no row, or whose split with a non-zero ratio comes out empty, raises `EmptyResultError`
and writes nothing (`latest` stays where it was). A split row's `source` is the source's kind
(`jsonl`, `hf`, ...): file names and paths are recorded in the manifest but never enter the dataset hash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from common.jsonl import json_bytes, jsonl_bytes
from common.processes import stop_children_on_signals
from common.prompt import plain_text_row, training_row
from preprocessing import stages
from preprocessing.generate import adversarial_rows, bank_hashes, near_miss_rows
from preprocessing.leak import EXEMPT_SOURCES, LEAK_CODES, LeakSet, leak_filter, load_leak_set
from preprocessing.output import code_version, dataset_hash, sha256_bytes, write_dataset
from preprocessing.params import PrepareParams
from preprocessing.records import (
    ADVERSARIAL_IGNORE,
    ADVERSARIAL_REFUSAL,
    COMMAND,
    CONVERTED,
    REFUSAL,
    RawRow,
    Record,
    Reject,
    source_kind,
)
from preprocessing.shellcheck import check_commands, find_shellcheck
from preprocessing.sources import SourceData, SourceError, parse_spec, read_source
from preprocessing.split import SPLITS, assign_splits
from preprocessing.tokens import TokenCounter, length_stats, load_counter

STAGES = ("read", "schema", "normalize", "leak", "dedup", "danger", "shellcheck")


class EmptyResultError(ValueError):
    """The run kept no row, or a split came out empty; `report` holds the funnel that shows where rows went."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report
GENERATED = ("near_miss", "adversarial")


@dataclass
class PrepareResult:
    """What a run produced: the output dir (None on a dry run), the dataset hash and the report."""

    out_dir: Path | None
    dataset_hash: str
    report: dict[str, Any]
    splits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rejects: list[dict[str, Any]] = field(default_factory=list)


class _Funnel:
    """Counts rows in and out of each stage, per reason and per source."""

    def __init__(self) -> None:
        self.stages: list[dict[str, Any]] = []
        self.generated: list[dict[str, Any]] = []
        self.rejects: list[Reject] = []

    def record(self, stage: str, rows_in: int, rows_out: int, rejects: list[Reject]) -> None:
        self.stages.append(self._entry("stage", stage, rows_in, rows_out, rejects))
        self.rejects.extend(rejects)

    def record_generated(self, rows: str, rows_in: int, kept: list[Record], rejects: list[Reject]) -> None:
        entry = self._entry("rows", rows, rows_in, len(kept), rejects)
        entry["kinds"] = dict(sorted(Counter(r.kind for r in kept).items()))
        self.generated.append(entry)
        self.rejects.extend(rejects)

    @staticmethod
    def _entry(key: str, name: str, rows_in: int, rows_out: int, rejects: list[Reject]) -> dict[str, Any]:
        dropped = [r for r in rejects if r.outcome != CONVERTED]
        entry = {key: name, "in": rows_in, "out": rows_out, "dropped": len(dropped),
                 "reasons": dict(sorted(Counter(r.code for r in dropped).items()))}
        if converted := [r for r in rejects if r.outcome == CONVERTED]:
            entry["converted_to_refusal"] = len(converted)
            entry["converted_reasons"] = dict(sorted(Counter(r.code for r in converted).items()))
        return entry


class _Progress:
    """Rich progress bars when enabled, silence otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            from common.console import CliConsole

            self.bar = Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), transient=False, console=CliConsole(stderr=True))

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        if self.bar is None:
            yield lambda _step: None
            return
        task_id = self.bar.add_task(description, total=total)
        yield lambda step: self.bar.advance(task_id, step)
        self.bar.update(task_id, completed=total)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def prepare(
    sources: list[str], out_root: Path, params: PrepareParams, dry_run: bool = False, *, progress: bool = False
) -> PrepareResult:
    """Run every stage over the sources; unless `dry_run`, write the splits, rejects, report and manifest.

    SIGINT/SIGTERM/SIGHUP stop the shellcheck workers and remove temp folders before the run ends.
    """
    with stop_children_on_signals():
        return _prepare(sources, out_root, params, dry_run, progress)


def _prepare(sources: list[str], out_root: Path, params: PrepareParams, dry_run: bool, progress: bool) -> PrepareResult:
    if not sources:
        raise SourceError("no source given; pass at least one --source SPEC")
    specs = [parse_spec(spec) for spec in sources]
    labels = Counter(spec.label for spec in specs)
    if clashes := [label for label, count in labels.items() if count > 1]:
        raise SourceError(f"several sources share the label(s) {clashes}; give each source a distinct path")
    shellcheck_binary = find_shellcheck()
    leaks = load_leak_set()
    with ThreadPoolExecutor(max_workers=1) as loader, _Progress(progress) as bars:
        with bars.task("read sources", len(specs)) as step:
            data = []
            for spec in specs:
                data.append(read_source(spec))
                step(1)
        # Loaded only after the sources: `datasets` hashing inspects a half-imported transformers otherwise.
        counter_future = None if dry_run else loader.submit(load_counter, params.tokenizer_dir)
        funnel, kept = _run_stages([row for source in data for row in source.rows], params, bars, leaks)
        with bars.task("generate rows", len(GENERATED)) as step:
            generated = _generate(kept, params, funnel, step)
        splits, group_info = assign_splits(kept + generated, params.train_ratio, params.val_ratio)
        split_rows = {name: [_split_row(r) for r in rows] for name, rows in splits.items()}
        report = _report(data, funnel, splits, group_info, params)
        report["leak_check"] = {**leaks.identity(), "exempt_sources": sorted(EXEMPT_SOURCES),
                                "removed": sum(r.stage == "leak" for r in funnel.rejects)}
        _require_rows(data, funnel, splits, report, params)
        reject_rows = [r.to_json() for r in funnel.rejects]
        split_files = {f"{name}.jsonl": jsonl_bytes(rows) for name, rows in split_rows.items()}
        digest = dataset_hash(split_files, {**params.hashed_fields(), "generator_banks": bank_hashes()})
        if dry_run:
            return PrepareResult(None, digest, report, split_rows, reject_rows)
        report["tokens"] = _token_report(counter_future, split_rows, params, bars)
    files = {**split_files, "rejects.jsonl": jsonl_bytes(reject_rows), "report.json": json_bytes(report)}
    manifest = _manifest(data, files, digest, params, shellcheck_binary, report["tokens"].get("tokenizer"))
    manifest["leak_check"] = leaks.identity()
    files["manifest.json"] = json_bytes(manifest)
    out_dir = write_dataset(Path(out_root), digest, files)
    return PrepareResult(out_dir, digest, report, split_rows, reject_rows)


def _run_stages(
    rows: list[RawRow], params: PrepareParams, bars: _Progress, leaks: LeakSet
) -> tuple[_Funnel, list[Record]]:
    """Apply the row stages in order, recording the funnel."""
    funnel = _Funnel()
    readable, rejects = stages.read_rejects(rows)
    funnel.record("read", len(rows), len(readable), rejects)
    valid, rejects = stages.check_schema(readable, params)
    funnel.record("schema", len(readable), len(valid), rejects)
    records, rejects = stages.normalize(valid)
    funnel.record("normalize", len(valid), len(records), rejects)
    fresh, rejects = leak_filter(records, leaks)
    funnel.record("leak", len(records), len(fresh), rejects)
    unique, rejects = stages.dedup(fresh)
    funnel.record("dedup", len(fresh), len(unique), rejects)
    with bars.task("danger filter", len(unique)) as step:
        safe, rejects = stages.danger_filter(unique, step)
    funnel.record("danger", len(unique), len(safe), rejects)
    with bars.task("shellcheck", len({r.command for r in safe if r.kind != REFUSAL})) as step:
        checked, rejects = _shellcheck_stage(safe, params, step)
    funnel.record("shellcheck", len(safe), len(checked), rejects)
    return funnel, checked


def _require_rows(
    data: list[SourceData], funnel: _Funnel, splits: dict[str, list[Record]], report: dict[str, Any],
    params: PrepareParams,
) -> None:
    """Raise `EmptyResultError` when no row is kept, or when a split with a non-zero ratio is empty."""
    kept = sum(len(rows) for rows in splits.values())
    if not kept:
        raise EmptyResultError(_why_nothing_kept(data, funnel), report)
    ratios = {"train": params.train_ratio, "val": params.val_ratio, "test": params.test_ratio}
    for name in SPLITS:
        if ratios[name] > 0 and not splits[name]:
            raise EmptyResultError(
                f"split {name!r} came out empty: none of the {report['split_groups']['groups']} leak-free group(s) "
                f"of the {kept} kept rows hashed into it (--{name}-ratio {ratios[name]:g}); add rows, or set "
                f"--{name}-ratio 0 and raise another ratio", report)


def _why_nothing_kept(data: list[SourceData], funnel: _Funnel) -> str:
    """Name the stage that dropped the last rows and, per source, its mapping, main stage and first reason."""
    emptied = next(stage for stage in funnel.stages if stage["in"] and not stage["out"])
    reasons = ", ".join(f"{code} {count}" for code, count in emptied["reasons"].items())
    parts = [f"no row was kept: the {emptied['stage']} stage dropped the last {emptied['in']} ({reasons})"]
    for source in data:
        rejects = [r for r in funnel.rejects if r.source == source.spec.label]
        stage, count = Counter(r.stage for r in rejects).most_common(1)[0]
        first = next(r for r in rejects if r.stage == stage)
        mapping = ", ".join(f"{key}={name}" for key, name in source.spec.columns.items())
        parts.append(f"source {source.spec.spec!r}" + (f" (mapping {mapping})" if mapping else "")
                     + f": {stage} dropped {count} of {len(source.rows)} rows, first {first.location}: {first.reason}")
    return "; ".join(parts)


def _generate(kept: list[Record], params: PrepareParams, funnel: _Funnel, step: Callable[[int], None]) -> list[Record]:
    """Add near-miss rows (checked like source rows) and adversarial rows wrapping the kept benign requests."""
    benign = [r for r in kept if r.kind == COMMAND]
    candidates = near_miss_rows(round(params.near_miss_ratio * len(benign)), params.generator_seed)
    valid, rejects = _check_generated(candidates, kept, params)
    safe, danger_rejects = stages.danger_filter(valid)
    near_miss, shellcheck_rejects = _shellcheck_stage(safe, params, lambda _step: None)
    funnel.record_generated("near_miss", len(candidates), near_miss, rejects + danger_rejects + shellcheck_rejects)
    step(1)
    converted = sum(r.kind == REFUSAL for r in kept)
    wanted = adversarial_count(params.refusal_ratio, len(benign) + len(near_miss), converted)
    candidates = adversarial_rows(benign, wanted, params.generator_seed)
    adversarial, rejects = _check_generated(candidates, kept + near_miss, params)
    funnel.record_generated("adversarial", len(candidates), adversarial, rejects)
    step(1)
    return near_miss + adversarial


def adversarial_count(ratio: float, other_rows: int, converted: int) -> int:
    """Return how many adversarial rows to generate so they and the converted refusals make `ratio` of all rows."""
    return max(0, round(ratio * other_rows / (1 - ratio)) - converted)


def _check_generated(
    rows: list[RawRow], existing: list[Record], params: PrepareParams
) -> tuple[list[Record], list[Reject]]:
    """Run generated rows through the schema, normalization and dedup (also against the rows already kept)."""
    valid, rejects = stages.check_schema(rows, params)
    records, normalize_rejects = stages.normalize(valid)
    unique, dedup_rejects = stages.dedup(records)
    rejects += normalize_rejects + dedup_rejects
    seen = {stages.pair_key(r.nl, r.command): r for r in existing}
    guards = {r.id: r.guard for r in existing}
    kept = []
    for record in unique:
        if (first := seen.get(stages.pair_key(record.nl, record.command))) is not None:
            reason = f"same normalized pair as {first.id} ({first.source} {first.source_row})"
            rejects.append(Reject("dedup", "exact_duplicate", reason, record.source, record.source_row, record.nl,
                                  record.command))
        elif record.kind == ADVERSARIAL_IGNORE:
            kept.append(replace(record, guard=guards[str(record.origin)]))
        elif record.kind == ADVERSARIAL_REFUSAL:
            kept.append(replace(record, guard="none"))
        else:
            kept.append(record)
    return kept, rejects


def _shellcheck_stage(
    records: list[Record], params: PrepareParams, step: Callable[[int], None]
) -> tuple[list[Record], list[Reject]]:
    """Reject every row whose command has a shellcheck finding at the configured severity (refusals pass)."""
    refusals = [r for r in records if r.kind == REFUSAL]
    records = [r for r in records if r.kind != REFUSAL]
    findings = check_commands(
        [r.command for r in records],
        params.shellcheck_severity,
        timeout=params.shellcheck_timeout_s,
        batch_size=params.shellcheck_batch_size,
        workers=params.workers,
        on_batch=step,
    )
    kept, rejects = list(refusals), []
    for record, found in zip(records, findings):
        if not found:
            kept.append(record)
            continue
        reason = "; ".join(f.describe() for f in found)
        rejects.append(Reject("shellcheck", f"SC{found[0].code}", reason, record.source, record.source_row,
                              record.nl, record.command))
    return kept, rejects


def _split_row(record: Record) -> dict[str, Any]:
    """Return one split row: chat messages and V2's plain text, both from `common.prompt`; `source` is the
    source's kind."""
    return {**training_row(record.nl, record.command), "text": plain_text_row(record.nl, record.command),
            "id": record.id, "source": source_kind(record.source), "guard": record.guard, "kind": record.kind,
            "origin": record.origin}


def _report(
    data: list[SourceData], funnel: _Funnel, splits: dict[str, list[Record]], group_info: dict[str, int],
    params: PrepareParams,
) -> dict[str, Any]:
    """Return the funnel, per-source accounting (kept + converted + rejected = input) and split statistics."""
    per_source: dict[str, dict[str, Any]] = {}
    for source in data:
        label = source.spec.label
        dropped = Counter(r.stage for r in funnel.rejects if r.source == label and r.outcome != CONVERTED)
        converted = sum(r.source == label and r.outcome == CONVERTED for r in funnel.rejects)
        in_splits = {name: sum(r.source == label for r in rows) for name, rows in splits.items()}
        kept = sum(in_splits.values()) - converted
        if kept + converted + sum(dropped.values()) != len(source.rows):
            raise AssertionError(f"accounting broken for {label}: {kept} kept + {converted} converted + "
                                 f"{sum(dropped.values())} rejected != {len(source.rows)} input")
        per_source[label] = {
            "input": len(source.rows),
            "kept": kept,
            "converted_to_refusal": converted,
            "rejected": sum(dropped.values()),
            "rejected_by_stage": {stage: dropped[stage] for stage in STAGES if dropped[stage]},
            "leaked": _leak_counts(funnel.rejects, label),
            "splits": in_splits,
            "guard_warn": sum(r.source == label and r.guard == "warn" for rows in splits.values() for r in rows),
        }
    everything = [r for rows in splits.values() for r in rows]
    return {
        "funnel": {
            "input": sum(len(source.rows) for source in data),
            "stages": funnel.stages,
            "kept": sum(counts["kept"] for counts in per_source.values()),
            "converted_to_refusal": sum(counts["converted_to_refusal"] for counts in per_source.values()),
            "rejected": sum(counts["rejected"] for counts in per_source.values()),
            "generated": funnel.generated,
            "output": len(everything),
        },
        "per_source": per_source,
        "splits": {name: len(splits[name]) for name in SPLITS},
        "kinds": {name: dict(sorted(Counter(r.kind for r in splits[name]).items())) for name in SPLITS},
        "adversarial_families": dict(sorted(Counter(r.family for r in everything if r.family).items())),
        "split_groups": group_info,
        "guard": dict(sorted(Counter(r.guard for r in everything).items())),
        "shellcheck_severity": params.shellcheck_severity,
    }


def _leak_counts(rejects: list[Reject], label: str) -> dict[str, int]:
    """Count one source's rows removed as eval leaks, in all and by what matched."""
    codes = Counter(r.code for r in rejects if r.stage == "leak" and r.source == label)
    return {"total": sum(codes.values()), **{code: codes[code] for code in LEAK_CODES.values()}}


def _token_report(
    counter_future: Future[TokenCounter] | None, split_rows: dict[str, list[dict[str, Any]]], params: PrepareParams,
    bars: _Progress,
) -> dict[str, Any]:
    """Return token-length stats over all kept rows and per split, with the recommended sequence_len."""
    counter = counter_future.result() if counter_future else load_counter(params.tokenizer_dir)
    everything = [row["messages"] for name in SPLITS for row in split_rows[name]]
    with bars.task("token lengths", len(everything)) as step:
        lengths = counter.lengths(everything)
        step(len(everything))
    report: dict[str, Any] = {"tokenizer": counter.source, "all": length_stats(lengths, params.sequence_len_multiple)}
    start = 0
    for name in SPLITS:
        size = len(split_rows[name])
        report[name] = length_stats(lengths[start : start + size], params.sequence_len_multiple)
        start += size
    report["recommended_sequence_len"] = report["all"]["recommended_sequence_len"]
    return report


def _manifest(
    data: list[SourceData], files: dict[str, bytes], digest: str, params: PrepareParams, shellcheck_binary: Path,
    tokenizer: dict[str, Any] | None,
) -> dict[str, Any]:
    """Return the manifest: sources with revisions and file hashes, output hashes, code and parameters."""
    import subprocess

    version = subprocess.run([str(shellcheck_binary), "--version"], capture_output=True, text=True, check=False)
    shellcheck_version = next((line.split(":", 1)[1].strip() for line in version.stdout.splitlines()
                               if line.startswith("version:")), None)
    return {
        "dataset_hash": digest,
        "sources": [source.manifest_entry() for source in data],
        "files": {name: sha256_bytes(content) for name, content in sorted(files.items())},
        "code": code_version(),
        "tools": {"shellcheck": shellcheck_version, "tokenizer": tokenizer},
        "parameters": params.model_dump(mode="json"),
        "generator": {"seed": params.generator_seed, "refusal_ratio": params.refusal_ratio,
                      "near_miss_ratio": params.near_miss_ratio, "banks": bank_hashes()},
    }
