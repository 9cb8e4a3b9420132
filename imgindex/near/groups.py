"""What `imgindex duplicates` prints, as JSON or sentences, from one verdict (imgindex.near.verdict)."""

from __future__ import annotations

import itertools
from typing import Any

import sqlite_utils

from .verdict import DEFAULT_MAX_DISTANCE, MAX_DISTANCE, RULES, Conflict, Group, Rule, Verdict, verdict_for

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "MAX_DISTANCE",
    "RULES",
    "describe",
    "find_duplicates",
    "rule_of",
    "verdict_document",
]

Groups = list[list[str]]


def rule_of(name: str = "imgindex", max_distance: int = DEFAULT_MAX_DISTANCE) -> Rule:
    """A rule by name (imgindex.near.verdict.RULES); ValueError for another name or distance."""
    if name not in RULES:
        raise ValueError(f"no duplicate rule is called {name!r}: the rules are {', '.join(RULES)}")
    if not isinstance(max_distance, int) or not 0 <= max_distance <= MAX_DISTANCE:
        raise ValueError(f"max_distance must be a whole number of bits from 0 to {MAX_DISTANCE}, not {max_distance!r}")
    return RULES[name](max_distance)


def find_duplicates(
    db: sqlite_utils.Database, max_distance: int = DEFAULT_MAX_DISTANCE, rule: str = "imgindex"
) -> dict[str, Any]:
    """The document `imgindex duplicates --json` prints (see verdict_document)."""
    return verdict_document(verdict_for(db, rule_of(rule, max_distance)))


def _kind(group: Group) -> dict[str, Any]:
    return {"kind": group.grade, "max_distance": group.max_distance}


def verdict_document(verdict: Verdict) -> dict[str, Any]:
    """ "groups" are lists of absolute paths; "kinds" is parallel to "groups" (the group's grade:
    byte-identical, pixel-identical or copy, and the largest dHash distance inside); "scenes" are
    different photos of one scene (not duplicates); "label_conflicts" are duplicate pairs whose
    labels disagree."""
    splits = {}
    for s in verdict.splits:
        groups, scenes = verdict.within(s), verdict.within(s, scenes=True)
        splits[s] = {
            "images": verdict.images.get(s, 0),
            "groups": [g.paths for g in groups],
            "kinds": [_kind(g) for g in groups],
            "scenes": [g.paths for g in scenes],
        }
    intersections = []
    for a, b in itertools.combinations(verdict.splits, 2):
        groups, scenes = verdict.across(a, b), verdict.across(a, b, scenes=True)
        intersections.append(
            {
                "splits": [a, b],
                "groups": [g.paths for g in groups],
                "kinds": [_kind(g) for g in groups],
                "members": [[g.count(a), g.count(b)] for g in groups],
                "scenes": [g.paths for g in scenes],
                "scene_members": [[g.count(a), g.count(b)] for g in scenes],
            }
        )
    return {
        "rule": verdict.rule.as_json(),
        "max_distance": verdict.rule.max_distance,
        "splits": splits,
        "intersections": intersections,
        "label_conflicts": [_conflict(c) for c in verdict.conflicts],
    }


def _conflict(c: Conflict) -> dict[str, Any]:
    return {
        "paths": [c.a.path, c.b.path],
        "splits": [c.a.split, c.b.split],
        "grade": c.grade,
        "kind": c.kind,
        "detail": c.detail,
    }


def describe(db: sqlite_utils.Database, max_distance: int = DEFAULT_MAX_DISTANCE, rule: str = "imgindex") -> list[str]:
    """The rule, DataGradients' sentences per split and pair of splits, then scenes and conflicts."""
    return verdict_sentences(verdict_for(db, rule_of(rule, max_distance)))


def verdict_sentences(verdict: Verdict) -> list[str]:
    lines = [f"Rule: {verdict.rule.describe()}."]
    lines += [split_sentence(s, [g.paths for g in verdict.within(s)]) for s in verdict.splits]
    for a, b in itertools.combinations(verdict.splits, 2):
        lines.append(intersection_sentence(a, b, [(g.count(a), g.count(b)) for g in verdict.across(a, b)]))
    if verdict.rule.verified:
        lines += scene_sentences(verdict)
        lines.append(conflict_sentence(verdict.conflicts))
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


def scene_sentences(verdict: Verdict) -> list[str]:
    """Scene overlap, worded so that it never calls the photos copies."""
    lines = []
    for split in verdict.splits:
        scenes = verdict.within(split, scenes=True)
        if scenes:
            images = sum(len(g.members) for g in scenes)
            lines.append(
                f"{split}: {len(scenes)} scene(s) of {images} images: different photos of one scene within the split "
                "(not copies, not counted as duplicates)."
            )
    for a, b in itertools.combinations(verdict.splits, 2):
        scenes = verdict.across(a, b, scenes=True)
        if scenes:
            images = sum(len(g.members) for g in scenes)
            lines.append(
                f"{a} & {b}: share {len(scenes)} scene(s), {images} images: different photos of one scene "
                "(not copies), e.g. frames of one video or shots from one tripod."
            )
    return lines


def conflict_sentence(conflicts: list[Conflict]) -> str:
    if not conflicts:
        return "Label conflicts: none (no duplicate pair is labelled two ways)."
    kinds = sorted({c.kind for c in conflicts})
    return f"Label conflicts: {len(conflicts)} duplicate pair(s) are labelled two ways ({', '.join(kinds)})."
