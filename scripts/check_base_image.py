"""Docker build step: stop when the base image's axolotl or torch differ from what requirements.lock pins.

Run inside the image, before anything is installed: `python check_base_image.py requirements.lock`.
Standard library only (the image's Python has nothing of ours yet). Exit 0 when both match, 1 otherwise.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable

CHECKED = ("axolotl", "torch")


def locked_version(lock_text: str, package: str) -> str | None:
    """Return the exact version the lock pins for a package (`name==version`), or None."""
    match = re.search(rf"^{re.escape(package)}==([^\s;#]+)", lock_text, re.IGNORECASE | re.MULTILINE)
    return match.group(1) if match else None


def installed_version(package: str) -> str | None:
    """Return the version installed in this Python, or None when the package is absent."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def public_version(version: str) -> str:
    """Drop a local build label: torch `2.13.0+cu130` is release `2.13.0`."""
    return version.split("+", 1)[0]


def mismatches(lock: Path, installed: Callable[[str], str | None] = installed_version) -> list[str]:
    """Return one line per checked package whose installed release differs from the lock's pin."""
    text = lock.read_text(encoding="utf-8")
    problems = []
    for package in CHECKED:
        pinned, found = locked_version(text, package), installed(package)
        if pinned is None:
            problems.append(f"{lock}: pins no {package}==VERSION")
        elif found is None:
            problems.append(f"the base image has no {package}; {lock} pins {package}=={pinned}")
        elif public_version(found) != public_version(pinned):
            problems.append(f"the base image has {package} {found}; {lock} pins {package}=={pinned}")
    return problems


def main(argv: list[str]) -> int:
    """Print every mismatch and how to fix it; return the exit status."""
    lock = Path(argv[1] if len(argv) > 1 else "requirements.lock")
    problems = mismatches(lock)
    for problem in problems:
        print(f"base image check: {problem}", file=sys.stderr)
    if problems:
        print("base image check: pick a tag built on the lock's versions (docker build --build-arg "
              "BASE_IMAGE=axolotlai/axolotl:TAG .), or pin the image's versions in requirements.in and run make lock", file=sys.stderr)
        return 1
    print("base image check: " + ", ".join(f"{package} {installed_version(package)}" for package in CHECKED)
          + f" match {lock}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
