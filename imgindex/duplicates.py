"""Duplicate groups within each split and across each pair of splits, from the views."""

from __future__ import annotations

import itertools
import json
from typing import Any

import sqlite_utils

Groups = list[list[str]]


def split_names(db: sqlite_utils.Database) -> list[str]:
    """Every split in the index, sorted."""
    rows = db.execute("SELECT DISTINCT split FROM images UNION SELECT DISTINCT name FROM splits ORDER BY 1")
    return [r[0] for r in rows]


def image_counts(db: sqlite_utils.Database) -> dict[str, int]:
    return dict(db.execute("SELECT split, COUNT(*) FROM images GROUP BY split").fetchall())


def split_groups(db: sqlite_utils.Database) -> dict[str, Groups]:
    """split -> sorted groups of 2+ paths with equal dHash."""
    out: dict[str, Groups] = {}
    for split, paths in db.execute("SELECT split, paths FROM duplicate_groups"):
        out.setdefault(split, []).append(sorted(json.loads(paths)))
    return {k: sorted(v) for k, v in out.items()}


def leakage_pairs(db: sqlite_utils.Database) -> dict[tuple[str, str], list[tuple[list[str], list[str]]]]:
    """(split_a, split_b) -> [(members in a, members in b)] for every dHash present in both."""
    out: dict[tuple[str, str], list[tuple[list[str], list[str]]]] = {}
    for a, b, paths_a, paths_b in db.execute("SELECT split_a, split_b, paths_a, paths_b FROM leakage"):
        out.setdefault((a, b), []).append((sorted(json.loads(paths_a)), sorted(json.loads(paths_b))))
    return out


def intersection_groups(db: sqlite_utils.Database) -> dict[tuple[str, str], Groups]:
    """(split_a, split_b) -> sorted groups holding the members from both splits."""
    return {k: sorted(sorted(a + b) for a, b in v) for k, v in leakage_pairs(db).items()}


def find_duplicates(db: sqlite_utils.Database, max_distance: int = 0) -> dict[str, Any]:
    """The document `imgindex duplicates --json` prints."""
    if max_distance != 0:
        raise ValueError("only max_distance 0 (equal dHash) is supported")
    names = split_names(db)
    counts, groups, inter = image_counts(db), split_groups(db), intersection_groups(db)
    return {
        "max_distance": max_distance,
        "splits": {s: {"images": counts.get(s, 0), "groups": groups.get(s, [])} for s in names},
        "intersections": [
            {"splits": [a, b], "groups": inter.get((a, b), [])} for a, b in itertools.combinations(names, 2)
        ],
    }


def describe(db: sqlite_utils.Database) -> list[str]:
    """DataGradients' sentences, per split and per pair of splits."""
    names, groups = split_names(db), split_groups(db)
    lines = [split_sentence(split, groups.get(split, [])) for split in names]
    pairs = leakage_pairs(db)
    for a, b in itertools.combinations(names, 2):
        lines.append(intersection_sentence(a, b, pairs.get((a, b), [])))
    return lines


def split_sentence(split: str, groups: Groups) -> str:
    members = sum(len(g) for g in groups)
    return f"{split}: There are {len(groups)} duplicated images appearing {members} times across the dataset."


def intersection_sentence(a: str, b: str, pairs: list[tuple[list[str], list[str]]]) -> str:
    in_a, in_b = sum(len(p[0]) for p in pairs), sum(len(p[1]) for p in pairs)
    return (
        f"{a} & {b}: There are {len(pairs)} duplicates between {a} and {b} appearing {in_a} times "
        f"in the {a} image directory, and {in_b} times in the {b} image directory."
    )
