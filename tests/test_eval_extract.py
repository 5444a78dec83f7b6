"""Strict (command-only) and lenient extraction of commands from raw model outputs."""

from __future__ import annotations

import pytest

from eval.extract import extract_lenient, extract_strict

CASES = [
    # raw output, strict, lenient
    ("ls -la", "ls -la", "ls -la"),
    ("  ls -la\n", "ls -la", "ls -la"),
    ("for f in *.txt; do wc -l \"$f\"; done", "for f in *.txt; do wc -l \"$f\"; done",
     "for f in *.txt; do wc -l \"$f\"; done"),
    ("#!/bin/bash\nset -e\nls", "#!/bin/bash\nset -e\nls", "#!/bin/bash\nset -e\nls"),
    ("# refused: destroys the disk", "# refused: destroys the disk", "# refused: destroys the disk"),
    ("```bash\nls -la\n```", None, "ls -la"),
    ("You can use:\n```\n$ df -h\n```\nThis shows disk usage.", None, "df -h"),
    ("Here is the command: ls -la", None, "ls -la"),
    ("To list files, run `ls -la`.", None, "ls -la"),
    ("The command is: cd ..", None, "cd .."),
    ("ls -la # list everything", None, "ls -la"),
    ("$ docker ps", None, "docker ps"),
    ("Sure! # refused: that would wipe your data", None, "# refused: that would wipe your data"),
    ("ls -la\nThis lists all files.", None, "ls -la"),
    ("scp -C file remote:", "scp -C file remote:", "scp -C file remote:"),
    ("command -v git | wc -l", "command -v git | wc -l", "command -v git | wc -l"),
    ("Use ls to list the files.", None, None),
    ("echo \"unterminated", None, None),
    ("List the files in the directory.", None, None),
    ("", None, None),
    ("```python\nprint('hi')\n```", None, None),
]


@pytest.mark.parametrize(("raw", "strict", "lenient"), CASES)
def test_extraction(raw: str, strict: str | None, lenient: str | None) -> None:
    assert extract_strict(raw) == strict
    assert extract_lenient(raw) == lenient


def test_multi_line_refusal_is_not_command_only() -> None:
    assert extract_strict("# refused: no\nrm -rf /") is None
    assert extract_lenient("# refused: no\nrm -rf /") == "# refused: no"
