"""Leak-free split: rows sharing a normalized command or description stay in one split.

Rows are joined (union-find) when their grouping keys match: the command with whitespace
collapsed, or the description casefolded with punctuation and whitespace dropped; a generated row
is also joined to the source row it wraps (its `origin`). A refusal answer is not a grouping key:
many unrelated requests share one refusal line. Each group goes
whole to train/val/test by the SHA-256 of its smallest member key, so the result depends only on
the rows' content, never on input order.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from preprocessing.records import REFUSAL_KINDS, Record
from preprocessing.stages import pair_key

SPLITS = ("train", "val", "test")
_NON_WORD = re.compile(r"[\W_]+")


def command_group_key(command: str) -> str:
    """Return the command key rows are grouped by."""
    return " ".join(command.split())


def description_group_key(nl: str) -> str:
    """Return the description key rows are grouped by (casefolded, punctuation-free)."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", nl).casefold()).strip()


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, left: int, right: int) -> None:
        a, b = self.find(left), self.find(right)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def _group_keys(record: Record) -> list[str]:
    """Return the keys a row is grouped by: its description, its command unless a refusal, its lineage."""
    keys = ["d:" + description_group_key(record.nl), "i:" + record.id]
    if record.kind not in REFUSAL_KINDS:
        keys.append("c:" + command_group_key(record.command))
    if record.origin:
        keys.append("i:" + record.origin)
    return keys


def group_rows(records: list[Record]) -> list[list[Record]]:
    """Return the connected groups of rows that share a command, description or lineage key."""
    forest = _UnionFind(len(records))
    first_seen: dict[str, int] = {}
    for index, record in enumerate(records):
        for key in _group_keys(record):
            if key in first_seen:
                forest.union(first_seen[key], index)
            else:
                first_seen[key] = index
    groups: dict[int, list[Record]] = {}
    for index, record in enumerate(records):
        groups.setdefault(forest.find(index), []).append(record)
    return list(groups.values())


def _bucket(group: list[Record]) -> float:
    """Map a group to [0, 1) by the hash of its smallest member key."""
    smallest = min(pair_key(r.nl, r.command) for r in group)
    return int(hashlib.sha256(f"split:{smallest}".encode()).hexdigest()[:15], 16) / 16**15


def assign_splits(
    records: list[Record], train_ratio: float, val_ratio: float
) -> tuple[dict[str, list[Record]], dict[str, int]]:
    """Put whole groups into splits (rows sorted by group hash, member key); also return group stats."""
    splits: dict[str, list[tuple[float, str, Record]]] = {name: [] for name in SPLITS}
    groups = group_rows(records)
    for group in groups:
        bucket = _bucket(group)
        name = "train" if bucket < train_ratio else "val" if bucket < train_ratio + val_ratio else "test"
        splits[name].extend((bucket, pair_key(r.nl, r.command), r) for r in group)
    ordered = {name: [r for _, _, r in sorted(rows, key=lambda t: t[:2])] for name, rows in splits.items()}
    return ordered, {"groups": len(groups), "largest_group": max(map(len, groups), default=0)}
