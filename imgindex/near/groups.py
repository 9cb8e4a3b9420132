"""Duplicate groups within each split and across each pair of splits, from the views."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from . import pairs as near_index
from . import search as near

MAX_DISTANCE = 16
# `imgindex duplicates` default: on real ground truth (scripts/bench_near_accuracy.py) precision
# stays 1.0 up to 16 with the second-signal check and recall stops growing after 8-9; 8 is the
# distance near_pairs stores, so the default reads the table.
DEFAULT_MAX_DISTANCE = 8

Groups = list[list[str]]


def split_names(db: sqlite_utils.Database) -> list[str]:
    """Every split in the index, sorted."""
    rows = db.execute("SELECT DISTINCT split FROM images UNION SELECT DISTINCT name FROM splits ORDER BY 1")
    return [r[0] for r in rows]


def image_counts(db: sqlite_utils.Database) -> dict[str, int]:
    return dict(db.execute("SELECT split, COUNT(*) FROM images GROUP BY split").fetchall())


@dataclass(frozen=True)
class Member:
    id: int
    split: str
    path: str
    sha256: str | None
    pixel_hash: str | None
    dhash: str


@dataclass(frozen=True)
class Group:
    members: list[Member]

    @property
    def paths(self) -> list[str]:
        return sorted(m.path for m in self.members)

    def count(self, split: str) -> int:
        return sum(m.split == split for m in self.members)

    def kind(self) -> dict[str, Any]:
        """byte-identical, pixel-identical or perceptual, with the largest dHash distance inside."""
        hashes = near.hex_to_u64([m.dhash for m in self.members])
        largest = max(int(near.hamming(hashes, h).max()) for h in hashes)
        if len({m.sha256 for m in self.members}) == 1:
            kind = "byte-identical"
        elif len({m.pixel_hash for m in self.members}) == 1:
            kind = "pixel-identical"
        else:
            kind = "perceptual"
        return {"kind": kind, "max_distance": largest}


def components(edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components (of 2+ nodes) of an undirected graph given by its edges."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    out: dict[int, list[int]] = {}
    for x in parent:
        out.setdefault(root(x), []).append(x)
    return list(out.values())


def confirmed_pairs(db: sqlite_utils.Database, max_distance: int) -> list[tuple[int, int]]:
    """Image pairs within max_distance dHash bits that the second signals confirm."""
    if not 0 <= max_distance <= MAX_DISTANCE:
        raise ValueError(f"max_distance must be in 0..{MAX_DISTANCE}, got {max_distance}")
    pairs, kinds = near_index.all_pairs(db, max_distance)
    keep = kinds != "rejected"
    return list(zip(pairs.a[keep].tolist(), pairs.b[keep].tolist()))


def load_members(db: sqlite_utils.Database, ids: set[int]) -> dict[int, Member]:
    rows = db.execute(
        "SELECT id, split, path, sha256, pixel_hash, dhash FROM images WHERE id IN (SELECT value FROM json_each(?))",
        [json.dumps(sorted(ids))],
    )
    return {r[0]: Member(*r) for r in rows}


def near_groups(
    db: sqlite_utils.Database, max_distance: int
) -> tuple[dict[str, list[Group]], dict[tuple[str, str], list[Group]]]:
    """(split -> groups inside it, (split_a, split_b) -> groups spanning both), groups sorted by paths.

    Groups are connected components of confirmed pairs; across two splits, components of the
    pairs among the images of both that hold members of each."""
    edges = confirmed_pairs(db, max_distance)
    members = load_members(db, {x for e in edges for x in e})
    split_of = {k: m.split for k, m in members.items()}
    names = split_names(db)

    def groups_of(wanted: set[str], need_all: bool) -> list[Group]:
        kept = [(a, b) for a, b in edges if split_of[a] in wanted and split_of[b] in wanted]
        found = [Group([members[x] for x in comp]) for comp in components(kept)]
        if need_all:
            found = [g for g in found if {m.split for m in g.members} >= wanted]
        return sorted(found, key=lambda g: g.paths)

    within = {s: groups_of({s}, False) for s in names}
    across = {(a, b): groups_of({a, b}, True) for a, b in itertools.combinations(names, 2)}
    return within, across


def find_duplicates(db: sqlite_utils.Database, max_distance: int = 0) -> dict[str, Any]:
    """The document `imgindex duplicates --json` prints.

    "groups" are lists of absolute paths as before; "kinds" is parallel to "groups" and describes
    each: {"kind": "byte-identical" | "pixel-identical" | "perceptual", "max_distance": bits}."""
    within, across = near_groups(db, max_distance)
    counts = image_counts(db)
    return {
        "max_distance": max_distance,
        "splits": {
            s: {"images": counts.get(s, 0), "groups": [g.paths for g in gs], "kinds": [g.kind() for g in gs]}
            for s, gs in within.items()
        },
        "intersections": [
            {"splits": [a, b], "groups": [g.paths for g in gs], "kinds": [g.kind() for g in gs]}
            for (a, b), gs in across.items()
        ],
    }


def describe(db: sqlite_utils.Database, max_distance: int = 0) -> list[str]:
    """DataGradients' sentences, per split and per pair of splits."""
    within, across = near_groups(db, max_distance)
    lines = [split_sentence(split, [g.paths for g in gs]) for split, gs in within.items()]
    for (a, b), gs in across.items():
        lines.append(intersection_sentence(a, b, [(g.count(a), g.count(b)) for g in gs]))
    return lines


def split_sentence(split: str, groups: Groups) -> str:
    members = sum(len(g) for g in groups)
    return f"{split}: There are {len(groups)} duplicated images appearing {members} times across the dataset."


def intersection_sentence(a: str, b: str, counts: list[tuple[int, int]]) -> str:
    """counts: (members in a, members in b) of each group spanning both splits."""
    in_a, in_b = sum(c[0] for c in counts), sum(c[1] for c in counts)
    return (
        f"{a} & {b}: There are {len(counts)} duplicates between {a} and {b} appearing {in_a} times "
        f"in the {a} image directory, and {in_b} times in the {b} image directory."
    )
