"""The layers contract: imports run one way (pyproject.toml [tool.importlinter]), checked by import-linter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_imports_run_one_way_and_the_guard_is_independent() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_the_contract_covers_every_package_of_the_repo() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert set(config["root_packages"]) == packages
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    assert set(layers) == packages
