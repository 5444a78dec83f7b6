"""The Dockerfile lints clean with hadolint and with our own rules; the rules catch what V2 did."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from securecli.docker_lint import lint_dockerfile, parse_dockerfile, run_hadolint

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
    run = next(i.arguments for i in parse_dockerfile(DOCKERFILE.read_text()) if "requirements.lock" in i.arguments and i.keyword == "RUN")
    pattern = re.compile(re.search(r"grep -v -E '([^']+)'", run).group(1))
    pins = [line for line in LOCK.read_text().splitlines() if "==" in line]
    dropped = {line.split("==")[0] for line in pins if pattern.search(line)}
    assert {"torch", "triton"} <= dropped
    assert dropped <= {"torch", "torchvision", "torchaudio", "triton"} | {n for n in dropped if n.startswith("nvidia-")}
    assert "--no-deps" in run


def test_dockerignore_keeps_secrets_and_generated_files_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "data", "runs", ".env", "wandb"} <= ignored
