"""The Dockerfile lints clean with hadolint and with our own rules; the rules catch what V2 did."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from securecli.docker_lint import lint_dockerfile, locked_version, parse_dockerfile, run_hadolint

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.lock"


def test_hadolint_passes_on_the_dockerfile() -> None:
    assert run_hadolint(DOCKERFILE) == []


def test_hadolint_really_runs_and_reports(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\n")
    findings = "\n".join(run_hadolint(bad))
    assert "DL3006" in findings and "DL3013" in findings


def test_our_rules_pass_on_the_dockerfile() -> None:
    assert lint_dockerfile(DOCKERFILE, LOCK) == []


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ("FROM axolotlai/axolotl:main-latest\nUSER 1000\nENTRYPOINT [\"securecli\"]\n", "SC001"),
        ("FROM axolotlai/axolotl:0.18.2\nUSER 1000\nENTRYPOINT [\"securecli\"]\n", "SC002"),
        ("FROM axolotlai/axolotl:0.19.0\nRUN curl -fsSL https://x.sh \\\n  | bash\nUSER 1000\nENTRYPOINT [\"securecli\"]\n", "SC003"),
        ("FROM axolotlai/axolotl:0.19.0\nRUN rm -rf /usr/lib/python3/site-packages/torch\nUSER 1000\nENTRYPOINT [\"securecli\"]\n", "SC004"),
        ("FROM axolotlai/axolotl:0.19.0\nRUN pip install --no-cache-dir transformers\nUSER 1000\nENTRYPOINT [\"securecli\"]\n", "SC005"),
        ("FROM axolotlai/axolotl:0.19.0\nRUN pip install torch==2.5.1\nUSER 1000\nENTRYPOINT [\"securecli\"]\n", "SC006"),
        ("FROM axolotlai/axolotl:0.19.0\nUSER root\nENTRYPOINT [\"securecli\"]\n", "SC007"),
        ("FROM axolotlai/axolotl:0.19.0\nUSER 1000\nENTRYPOINT axolotl\n", "SC008"),
        ("ARG BASE=axolotlai/axolotl:0.18.2\nFROM ${BASE}\nUSER 1000\nENTRYPOINT [\"securecli\"]\n", "SC002"),
        ("ARG BASE\nFROM $BASE\nUSER 1000\nENTRYPOINT [\"securecli\"]\n", "SC001"),
        ("FROM axolotlai/axolotl:0.19.0\nARG BASE=axolotlai/axolotl:0.19.0\nFROM ${BASE}\nUSER 1000\nENTRYPOINT [\"securecli\"]\n", "SC001"),
        ("FROM axolotlai/axolotl:0.19.0\nRUN pip install --no-deps -r requirements.lock\nRUN python check_base_image.py requirements.lock\n"
         "USER 1000\nENTRYPOINT [\"securecli\"]\n", "SC009"),
        ("FROM axolotlai/axolotl:0.19.0\nRUN pip install --no-deps -r requirements.lock\nUSER 1000\nENTRYPOINT [\"securecli\"]\n", "SC009"),
    ],
)
def test_each_rule_catches_its_violation(tmp_path: Path, body: str, rule: str) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(body)
    assert rule in {issue.rule for issue in lint_dockerfile(dockerfile, LOCK)}


def test_parser_joins_continuations_and_skips_comments() -> None:
    instructions = parse_dockerfile("# c\nFROM a:1\nRUN one \\\n  # inside\n  two\nUSER 1\n")
    assert [(i.line, i.keyword, i.arguments) for i in instructions] == [
        (2, "FROM", "a:1"), (3, "RUN", "one two"), (6, "USER", "1"),
    ]


def test_lock_filter_keeps_the_image_torch_and_every_other_pin() -> None:
    run = next(i.arguments for i in parse_dockerfile(DOCKERFILE.read_text()) if "--requirement" in i.arguments and i.keyword == "RUN")
    pattern = re.compile(re.search(r"grep -v -E '([^']+)'", run).group(1))
    pins = [line for line in LOCK.read_text().splitlines() if "==" in line]
    dropped = {line.split("==")[0] for line in pins if pattern.search(line)}
    assert {"torch", "triton"} <= dropped
    assert dropped <= {"torch", "torchvision", "torchaudio", "triton"} | {n for n in dropped if n.startswith("nvidia-")}
    assert "--no-deps" in run


def test_dockerignore_keeps_secrets_and_generated_files_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "data", "runs", ".env", "wandb"} <= ignored


def test_the_base_image_is_a_build_argument_defaulting_to_the_locked_axolotl() -> None:
    instructions = parse_dockerfile(DOCKERFILE.read_text())
    arg, base = instructions[0], instructions[1]
    assert (arg.keyword, base.keyword, base.arguments) == ("ARG", "FROM", "${BASE_IMAGE}")
    name, _, default = arg.arguments.partition("=")
    assert name == "BASE_IMAGE" and default.startswith(f"axolotlai/axolotl:{locked_version(LOCK, 'axolotl')}-")
    assert default.endswith(f"-{locked_version(LOCK, 'torch')}")
    runs = [i for i in instructions if i.keyword == "RUN"]
    assert runs[0].arguments == "python check_base_image.py requirements.lock"
    copied = next(i for i in instructions if i.keyword == "COPY" and "check_base_image.py" in i.arguments)
    assert copied.line < runs[0].line and (ROOT / "scripts" / "check_base_image.py").is_file()


def _check_script():
    spec = importlib.util.spec_from_file_location("check_base_image", ROOT / "scripts" / "check_base_image.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_base_image_check_compares_releases_with_the_lock(tmp_path: Path) -> None:
    check = _check_script()
    lock = tmp_path / "requirements.lock"
    lock.write_text("accelerate==1.13.0\naxolotl==0.19.0\ntorch==2.13.0\n")
    image = {"axolotl": "0.19.0", "torch": "2.13.0+cu130"}
    assert check.mismatches(lock, image.get) == []
    assert check.mismatches(lock, {**image, "torch": "2.12.1+cu128"}.get) == [
        f"the base image has torch 2.12.1+cu128; {lock} pins torch==2.13.0"
    ]
    assert check.mismatches(lock, {"torch": "2.13.0"}.get) == [f"the base image has no axolotl; {lock} pins axolotl==0.19.0"]
    lock.write_text("torch==2.13.0\n")
    assert check.mismatches(lock, image.get) == [f"{lock}: pins no axolotl==VERSION"]


def test_base_image_check_fails_the_build_step_with_a_clear_message(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "check_base_image.py"
    ok = subprocess.run([sys.executable, str(script), str(LOCK)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "match" in ok.stdout, ok.stderr
    other = tmp_path / "requirements.lock"
    other.write_text(LOCK.read_text().replace("\ntorch==", "\ntorch==9.").replace("\naxolotl==", "\naxolotl==9."))
    failed = subprocess.run([sys.executable, str(script), str(other)], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert "the base image has torch" in failed.stderr and "the base image has axolotl" in failed.stderr
    assert "--build-arg BASE_IMAGE=" in failed.stderr
