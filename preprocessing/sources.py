"""Source adapters: each turns a spec string into raw rows plus the files and revision it read.

Specs: `hf[:REPO[@REVISION]][#config=NAME,nl=FIELD,command=FIELD]`, `nl2bash:DIR`,
`jsonl:PATH[#nl=FIELD,command=FIELD]`, `icalfa`, `tldr:PATH`. A missing or empty source raises
`SourceError`; a bad row becomes a read reject. Hub datasets in `KNOWN_HF_DATASETS` come with their
pinned revision, config and column names.
Text files are read as UTF-8 with a leading BOM dropped, and split on `\n` only (a CR before it is
dropped too): a lone CR inside a line, legal JSON whitespace, never splits a row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.provenance import sha256_file
from preprocessing.records import RawRow
from preprocessing.tldr import TldrFillError, fill_placeholders

DEFAULT_HF_REPO = "prabhanshubhowal/natural_language_to_linux"
HF_COLUMNS = {"nl": "nl_command", "command": "bash_code"}
JSONL_COLUMNS = {"nl": "nl", "command": "command"}
TLDR_COLUMNS = {"nl": "description", "command": "command"}
ICALFA_COLUMNS = {"nl": "query", "command": "gold"}
NL2BASH_FILES = {"nl": "all.nl", "command": "all.cm"}
UTF8_BOM = b"\xef\xbb\xbf"
JSON_BLANK = " \t\r"
_COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
ALFA_REPO = "westenfelder/NL2SH-ALFA"


@dataclass(frozen=True)
class HubDataset:
    """What a known Hub dataset needs: its pinned commit, default config and column names."""

    revision: str | None
    config: str | None
    columns: dict[str, str]


# NL2SH-ALFA (Westenfelder et al., NAACL 2025): CSV configs `train` (40,939 pairs: nl, bash) and `test`
# (the icalfa eval tasks: nl, bash, bash2), each a single `train` split. Pinned to the commit of its card.
KNOWN_HF_DATASETS = {
    DEFAULT_HF_REPO: HubDataset(None, None, HF_COLUMNS),
    ALFA_REPO: HubDataset("5c45587e37510fcdb80ffedbf685e1507fcd6f3d", "train", {"nl": "nl", "command": "bash"}),
}
# The training mix of axolotl/qwen25-coder-7b-qlora.yml, prepared in one run.
DEFAULT_TRAINING_SOURCES = (f"hf:{ALFA_REPO}", "hf")


class SourceError(ValueError):
    """A source that cannot be read at all: bad spec, missing or empty files."""


@dataclass(frozen=True)
class SourceSpec:
    """A parsed `--source` string."""

    spec: str
    kind: str
    label: str
    target: str = ""
    revision: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    config: str | None = None


@dataclass
class SourceData:
    """What one adapter read: the rows, the sha256 of every input file, and the revision."""

    spec: SourceSpec
    rows: list[RawRow]
    files: dict[str, str]
    revision: str | None

    def manifest_entry(self) -> dict[str, Any]:
        """Return the manifest's description of this source."""
        return {
            "spec": self.spec.spec,
            "label": self.spec.label,
            "kind": self.spec.kind,
            "revision": self.revision,
            "config": self.spec.config,
            "columns": self.spec.columns or None,
            "files": dict(sorted(self.files.items())),
            "rows": len(self.rows),
        }


def parse_spec(spec: str) -> SourceSpec:
    """Parse one `--source` string; raise `SourceError` on an unknown kind or a bad mapping."""
    kind, _, rest = spec.partition(":")
    if kind == "icalfa" and not rest:
        return SourceSpec(spec, "icalfa", "icalfa")
    if kind == "hf":
        return _parse_hf(spec, rest or DEFAULT_HF_REPO)
    if not rest:
        raise SourceError(f"source {spec!r}: expected KIND:PATH (kinds: hf, nl2bash, jsonl, icalfa, tldr)")
    if kind == "nl2bash":
        return SourceSpec(spec, "nl2bash", "nl2bash", rest)
    if kind == "tldr":
        return SourceSpec(spec, "tldr", "tldr", rest)
    if kind == "jsonl":
        path, columns = _split_columns(rest, JSONL_COLUMNS, spec)
        return SourceSpec(spec, "jsonl", f"jsonl:{Path(path).name}", path, None, columns)
    raise SourceError(f"source {spec!r}: unknown kind {kind!r} (kinds: hf, nl2bash, jsonl, icalfa, tldr)")


def _parse_hf(spec: str, rest: str) -> SourceSpec:
    """Parse `REPO[@REVISION][#config=NAME,nl=..,command=..]`, filling in a known dataset's defaults."""
    target, _, mapping = rest.partition("#")
    repo, _, revision = target.partition("@")
    known = KNOWN_HF_DATASETS.get(repo, HubDataset(None, None, HF_COLUMNS))
    config = known.config
    pairs = []
    for pair in filter(None, mapping.split(",")):
        key, sep, value = pair.partition("=")
        if key == "config" and sep and value:
            config = value
        else:
            pairs.append(pair)
    _, columns = _split_columns(f"{repo}#{','.join(pairs)}", known.columns, spec)
    name = Path(repo).name if Path(repo).is_dir() else repo
    label = f"hf:{name}" + (f":{config}" if config else "")
    return SourceSpec(spec, "hf", label, repo, revision or known.revision, columns, config)


def _split_columns(text: str, defaults: dict[str, str], spec: str) -> tuple[str, dict[str, str]]:
    """Split `TARGET#nl=a,command=b` into the target and the full column mapping."""
    target, _, mapping = text.partition("#")
    columns = dict(defaults)
    for pair in filter(None, mapping.split(",")):
        key, sep, value = pair.partition("=")
        if not sep or key not in defaults or not value:
            raise SourceError(f"source {spec!r}: bad field mapping {pair!r}; expected nl=FIELD or command=FIELD"
                              + (" (or config=NAME)" if spec.startswith("hf") else ""))
        columns[key] = value
    return target, columns


def read_source(spec: SourceSpec) -> SourceData:
    """Read one source; raise `SourceError` if it is missing or yields no rows."""
    reader: Callable[[SourceSpec], SourceData] = _READERS[spec.kind]
    data = reader(spec)
    if not data.rows:
        raise SourceError(f"source {spec.spec!r} is empty: it yielded no rows")
    return data


def _existing_file(path: Path, spec: SourceSpec) -> Path:
    """Return `path` if it is a file; say plainly when it is a directory or missing."""
    if path.is_dir():
        raise SourceError(f"source {spec.spec!r}: {path} is a directory; expected a file")
    if not path.is_file():
        raise SourceError(f"source {spec.spec!r}: file {path} not found")
    return path


def _existing_dir(path: Path, spec: SourceSpec) -> Path:
    """Return `path` if it is a directory; say plainly when it is a file or missing."""
    if path.exists() and not path.is_dir():
        raise SourceError(f"source {spec.spec!r}: {path} is a file; expected a directory holding all.nl and all.cm")
    if not path.is_dir():
        raise SourceError(f"source {spec.spec!r}: directory {path} not found")
    return path


def _read_bytes(path: Path, spec: SourceSpec) -> bytes:
    """Return a file's bytes; an unreadable file is a `SourceError` naming it."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"source {spec.spec!r}: cannot read {path}: {exc.strerror or exc}") from exc


def split_lines(data: bytes) -> list[bytes]:
    """Split file bytes into lines on `\n` only, dropping a leading UTF-8 BOM and each line's CR of a CRLF."""
    data = data.removeprefix(UTF8_BOM)
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line.removesuffix(b"\r") for line in lines]


def _decoded_lines(path: Path, spec: SourceSpec) -> Iterator[tuple[int, str | None, str | None]]:
    """Yield (line number, text, UTF-8 error) for every line of a file."""
    for number, raw in enumerate(split_lines(_read_bytes(path, spec)), start=1):
        try:
            yield number, raw.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            yield number, None, f"invalid UTF-8 at byte {exc.start}"


def _json_rows(path: Path, spec: SourceSpec, columns: dict[str, str]) -> Iterator[RawRow]:
    """Yield one raw row per non-blank JSONL line, mapping source fields to nl/command."""
    label = spec.label
    for number, text, utf8_error in _decoded_lines(path, spec):
        location = f"{path}:{number}"
        if utf8_error:
            yield RawRow(label, location, {}, "invalid_utf8", utf8_error, columns)
            continue
        if not text.strip(JSON_BLANK):
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RawRow(label, location, {}, "bad_json", f"bad JSON: {exc.msg} at column {exc.colno}", columns)
            continue
        if not isinstance(obj, dict):
            yield RawRow(label, location, {}, "not_object", f"expected a JSON object, got {type(obj).__name__}",
                         columns)
            continue
        yield RawRow(label, location, {key: obj[name] for key, name in columns.items() if name in obj}, names=columns)


def _read_jsonl(spec: SourceSpec) -> SourceData:
    path = _existing_file(Path(spec.target), spec)
    return SourceData(spec, list(_json_rows(path, spec, spec.columns)), {str(path): sha256_file(path)}, None)


def _read_nl2bash(spec: SourceSpec) -> SourceData:
    root = _existing_dir(Path(spec.target), spec)
    nl_path = _existing_file(root / NL2BASH_FILES["nl"], spec)
    cm_path = _existing_file(root / NL2BASH_FILES["command"], spec)
    nl_lines = list(_decoded_lines(nl_path, spec))
    cm_lines = list(_decoded_lines(cm_path, spec))
    if len(nl_lines) != len(cm_lines):
        raise SourceError(
            f"source {spec.spec!r}: {nl_path} has {len(nl_lines)} lines but {cm_path} has {len(cm_lines)}"
        )
    rows = []
    for (number, nl, nl_error), (_, command, cm_error) in zip(nl_lines, cm_lines):
        location = f"{nl_path}:{number}"
        if nl_error or cm_error:
            which = f"{nl_path.name}: {nl_error}" if nl_error else f"{cm_path.name}: {cm_error}"
            rows.append(RawRow(spec.label, location, {}, "invalid_utf8", which, NL2BASH_FILES))
        else:
            rows.append(RawRow(spec.label, location, {"nl": nl, "command": command}, names=NL2BASH_FILES))
    files = {str(nl_path): sha256_file(nl_path), str(cm_path): sha256_file(cm_path)}
    return SourceData(spec, rows, files, None)


def _read_tldr(spec: SourceSpec) -> SourceData:
    path = _existing_file(Path(spec.target), spec)
    rows = []
    for row in _json_rows(path, spec, TLDR_COLUMNS):
        command, description = row.fields.get("command"), row.fields.get("nl")
        if row.error or not isinstance(command, str):
            rows.append(row)
            continue
        try:
            if isinstance(description, str) and "{{" in description:
                raise TldrFillError("the description itself has a {{placeholder}}")
            filled = fill_placeholders(command)
        except TldrFillError as exc:
            rows.append(RawRow(row.source, row.location, row.fields, "tldr_placeholder", str(exc), row.names))
            continue
        rows.append(RawRow(row.source, row.location, {**row.fields, "command": filled}, names=row.names))
    return SourceData(spec, rows, {str(path): sha256_file(path)}, None)


def _read_icalfa(spec: SourceSpec) -> SourceData:
    from importlib.metadata import version
    from importlib.resources import files

    try:
        folder = Path(str(files("icalfa") / "assets" / "datasets"))
    except ModuleNotFoundError as exc:
        raise SourceError("source 'icalfa': the icalfa package is not installed (pip install icalfa)") from exc
    paths = sorted(folder.glob("nl2bash_fs_*.json"))
    rows = []
    for path in paths:
        for index, task in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            fields = {key: task[name] for key, name in ICALFA_COLUMNS.items() if name in task}
            rows.append(RawRow(spec.label, f"icalfa/{path.name}[{index}]", fields, names=ICALFA_COLUMNS))
    return SourceData(spec, rows, {f"icalfa/{p.name}": sha256_file(p) for p in paths}, f"icalfa=={version('icalfa')}")


def _read_hf(spec: SourceSpec) -> SourceData:
    local = Path(spec.target)
    if local.is_dir():
        folder, revision = local, spec.revision or "local"
    else:
        revision = _resolve_hf_revision(spec)
        folder = _hf_snapshot(spec.target, revision)
    files = {
        str(path.relative_to(folder)): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".cache" not in path.parts and not path.name.startswith(".")
    }
    return SourceData(spec, _hf_rows(folder, spec), files, revision)


def _resolve_hf_revision(spec: SourceSpec) -> str:
    """Pin a branch or tag to the commit sha it points at now (a full sha is used as is)."""
    if spec.revision and _COMMIT_SHA.match(spec.revision):
        return spec.revision
    from huggingface_hub import HfApi

    try:
        return HfApi().dataset_info(spec.target, revision=spec.revision).sha
    except Exception as exc:
        raise SourceError(
            f"source {spec.spec!r}: cannot resolve the revision of dataset {spec.target!r} ({exc}); "
            "pass hf:REPO@<40-hex commit> with network access, or a local dataset directory"
        ) from exc


def _hf_snapshot(repo: str, revision: str) -> Path:
    """Download (or reuse from cache) the dataset repo's files at one pinned commit."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, repo_type="dataset", revision=revision))
    except Exception as exc:
        raise SourceError(f"source hf:{repo}@{revision}: download failed ({exc})") from exc


def _hf_rows(folder: Path, spec: SourceSpec) -> list[RawRow]:
    """Load every split of the config with `datasets.load_dataset` and map the nl/command columns.

    The Arrow cache is a fresh temporary folder, so the rows always come from the files just hashed
    (a shared cache can serve an older version of a local file).
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="securecli-datasets-") as cache:
        return _load_rows(folder, spec, cache)


def _load_rows(folder: Path, spec: SourceSpec, cache: str) -> list[RawRow]:
    import datasets

    arguments = (str(folder), spec.config) if spec.config else (str(folder),)
    try:
        dataset = datasets.load_dataset(*arguments, cache_dir=cache)
    except Exception as exc:
        call = ", ".join(map(repr, arguments))
        raise SourceError(f"source {spec.spec!r}: datasets.load_dataset({call}) failed: {exc}") from exc
    rows = []
    for split in sorted(dataset):
        names = dataset[split].column_names
        missing = [name for name in spec.columns.values() if name not in names]
        if missing:
            raise SourceError(f"source {spec.spec!r}: split {split!r} has no column(s) {missing}; it has {names}")
        for index, item in enumerate(dataset[split].select_columns(list(spec.columns.values()))):
            fields = {key: item[name] for key, name in spec.columns.items()}
            rows.append(RawRow(spec.label, f"{spec.label}/{split}[{index}]", fields, names=spec.columns))
    return rows


_READERS: dict[str, Callable[[SourceSpec], SourceData]] = {
    "hf": _read_hf,
    "nl2bash": _read_nl2bash,
    "jsonl": _read_jsonl,
    "icalfa": _read_icalfa,
    "tldr": _read_tldr,
}
