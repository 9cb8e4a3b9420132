"""The rules `imgindex check` holds an index to: RULES, each finding what breaks it in the stored
verdict, labels and quality flags. A new rule is one `Rule` in `RULES`.

A rule's findings each carry a stable key (split and path relative to the split's folder, so a
baseline written on one machine holds on another) and the images they concern. The share a
percentage limit is compared with is the rule's own (`Rule.share`): for leakage the worst pair of
splits, the images of its smaller split that have a duplicate in the other.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlite_utils

from .. import reviews
from ..labels.formats import model
from ..near import verdict as verdicts
from ..quality import FLAGS
from ..quality.flags import FARTHER, HIGHER, Flag


@dataclass(frozen=True)
class Finding:
    key: str  # stable across machines and scans: what a baseline holds
    text: str  # one line for people
    images: frozenset[tuple[str, str]] = frozenset()  # (split, path relative to the split folder)
    scope: str = ""  # what a share is taken within: a split, or a pair of splits "a & b"


@dataclass
class Facts:
    """What the rules read, loaded once: the stored verdict, each image's relative path and the
    image count per split."""

    db: sqlite_utils.Database
    verdict: verdicts.Verdict
    relative: dict[str, str]  # absolute path -> path relative to its split folder
    images: dict[str, int]
    roots: dict[str, list[str]] = field(default_factory=dict)
    ignored: set[tuple[str, str]] = field(default_factory=set)  # a reviewer said: ignore these files

    def image(self, split: str, path: str) -> tuple[str, str]:
        """(split, path relative to the split's folder)."""
        return split, self.relative.get(path) or self.outside_images(split, path)

    def place(self, split: str, path: str) -> str:
        return ":".join(self.image(split, path))

    def outside_images(self, split: str, path: str) -> str:
        """A file that is not an indexed image (a label file) relative to the nearest of its split's
        folders, '../' where it lies beside them, '/'-separated: the same on any machine."""
        roots = self.roots.get(split, [])
        if not path or not roots:
            return path
        return min(
            (os.path.relpath(path, root) for root in roots), key=lambda rel: (rel.count(".."), len(rel))
        ).replace(os.sep, "/")


def load_facts(db: sqlite_utils.Database) -> Facts:
    relative = dict(db.execute("SELECT path, rel_path FROM images").fetchall())
    roots: dict[str, list[str]] = {}
    for name, root in db.execute("SELECT name, root FROM splits"):
        roots.setdefault(name, []).append(root)
    return Facts(db, verdicts.load(db), relative, verdicts.image_counts(db), roots, reviews.ignored_places(db))


Share = Callable[[list[Finding], Facts], tuple[float, str]]


@dataclass(frozen=True)
class Rule:
    name: str
    title: str  # what it checks, one line
    default: str  # "0", "2%", "off"
    find: Callable[[Facts], list[Finding]]
    share: Share
    see_all: str  # the command that lists every finding (IDX stands for the index)


def _members(group: verdicts.Group, facts: Facts) -> list[str]:
    return sorted(facts.place(m.split, m.path) for m in group.members)


def _image_set(group: verdicts.Group, facts: Facts) -> frozenset[tuple[str, str]]:
    return frozenset(facts.image(m.split, m.path) for m in group.members)


def find_leakage(facts: Facts) -> list[Finding]:
    found = []
    for a, b in itertools.combinations(facts.verdict.splits, 2):
        for group in facts.verdict.across(a, b):
            members = _members(group, facts)
            text = f"{a} & {b}: {group.grade}: " + " = ".join(members)
            found.append(Finding(f"{a} & {b}: " + " | ".join(members), text, _image_set(group, facts), f"{a} & {b}"))
    return found


def leakage_share(findings: list[Finding], facts: Facts) -> tuple[float, str]:
    """The worst pair of splits: the share of its smaller split's images with a copy in the other."""
    worst, said = 0.0, "no leakage"
    for scope in sorted({f.scope for f in findings}):
        a, b = scope.split(" & ")
        smaller = min((a, b), key=lambda s: (facts.images.get(s, 0), s))
        leaked = {p for f in findings if f.scope == scope for s, p in f.images if s == smaller}
        share = len(leaked) / max(facts.images.get(smaller, 0), 1)
        if share >= worst:
            worst, said = (
                share,
                f"{len(leaked)} of {facts.images.get(smaller, 0)} {smaller} images also in the other split ({scope})",
            )
    return worst, said


def find_duplicates(facts: Facts) -> list[Finding]:
    found = []
    for split in facts.verdict.splits:
        for group in facts.verdict.within(split):
            members = _members(group, facts)
            found.append(
                Finding(
                    f"{split}: " + " | ".join(members),
                    f"{split}: {group.grade}: " + " = ".join(members),
                    _image_set(group, facts),
                    split,
                )
            )
    return found


def extra_copies_share(findings: list[Finding], facts: Facts) -> tuple[float, str]:
    """The worst split: the share of its images that are a second or later copy."""
    worst, said = 0.0, "no duplicates"
    for split in sorted({f.scope for f in findings}):
        extra = sum(len(f.images) - 1 for f in findings if f.scope == split)
        share = extra / max(facts.images.get(split, 0), 1)
        if share >= worst:
            worst, said = share, f"{extra} of {facts.images.get(split, 0)} {split} images are extra copies"
    return worst, said


def find_label_conflicts(facts: Facts) -> list[Finding]:
    found = []
    for c in facts.verdict.conflicts:
        a, b = facts.place(c.a.split, c.a.path), facts.place(c.b.split, c.b.path)
        images = frozenset({facts.image(c.a.split, c.a.path), facts.image(c.b.split, c.b.path)})
        found.append(Finding(f"{a} | {b}", f"{a} = {b}: {c.kind} ({c.detail})", images))
    return found


def image_share(findings: list[Finding], facts: Facts) -> tuple[float, str]:
    """The share of all indexed images the findings concern."""
    concerned = {image for f in findings for image in f.images}
    total = sum(facts.images.values())
    return len(concerned) / max(total, 1), f"{len(concerned)} of {total} images"


def find_unreadable(facts: Facts) -> list[Finding]:
    rows = facts.db.execute("SELECT split, path, error FROM images WHERE error IS NOT NULL ORDER BY split, path")
    found = []
    for split, path, error in rows:
        place = facts.place(split, path)
        found.append(Finding(place, f"{place}: {error}", frozenset({facts.image(split, path)})))
    return found


def label_problem_finder(kind: str) -> Callable[[Facts], list[Finding]]:
    def find(facts: Facts) -> list[Finding]:
        rows = facts.db.execute(
            "SELECT split, path, line, detail FROM label_problems WHERE kind = ? ORDER BY split, path, line", [kind]
        )
        found = []
        for split, path, line, detail in rows:
            place = facts.place(split, path or "")
            where = place if line is None else f"{place}:{line}"
            found.append(Finding(where, f"{where}: {detail or kind}", frozenset({facts.image(split, path or "")})))
        return found

    return find


def label_share(findings: list[Finding], facts: Facts) -> tuple[float, str]:
    """The share of label files (or images, for images without one) the findings concern."""
    files = facts.db.execute("SELECT COUNT(*) FROM label_files").fetchone()[0] + sum(facts.images.values())
    concerned = {image for f in findings for image in f.images}
    return len(concerned) / max(files, 1), f"{len(concerned)} of {files} label files and images"


def quality_finder(flag: Flag) -> Callable[[Facts], list[Finding]]:
    def find(facts: Facts) -> list[Finding]:
        rows = facts.db.execute(
            "SELECT i.split, i.path, f.value FROM quality_flags f JOIN images i ON i.id = f.image_id "
            "WHERE f.flag = ? ORDER BY i.split, i.path",
            [flag.name],
        )
        found = []
        for split, path, value in sorted(rows.fetchall(), key=lambda r: _worse_first(flag, r[2])):
            place = facts.place(split, path)
            found.append(Finding(place, f"{place}: {value:.3g}", frozenset({facts.image(split, path)})))
        return found

    return find


def _worse_first(flag: Flag, value: float | None) -> float:
    """A sort key putting the flag's worst values first (its `worse` direction)."""
    if value is None:
        return math.inf
    if flag.worse == HIGHER:
        return -value
    if flag.worse == FARTHER:
        return -abs(math.log(value)) if value > 0 else -math.inf
    return value


LABEL_DEFAULTS = {model.IMAGE_WITHOUT_LABEL: "off", model.POLYGON_ROW: "off", model.IMAGE_SIZE_UNKNOWN: "off"}


def _label_rules() -> list[Rule]:
    return [
        Rule(
            ("" if kind.startswith("label_") else "label-") + kind.replace("_", "-"),
            f"label problems of kind {kind}",
            LABEL_DEFAULTS.get(kind, "0"),
            label_problem_finder(kind),
            label_share,
            "imgindex sql --db IDX \"select split, path, line, detail from label_problems where kind = '"
            + kind
            + "'\"",
        )
        for kind in model.PROBLEM_KINDS
    ]


def _quality_rules() -> list[Rule]:
    return [
        Rule(
            "quality-" + flag.name.replace("_", "-"),
            f"images flagged {flag.name} by the image-quality rule",
            "off",
            quality_finder(flag),
            image_share,
            f"imgindex quality --db IDX --flag {flag.name}",
        )
        for flag in FLAGS
    ]


RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in [
        Rule(
            "leakage",
            "duplicates (byte-identical, pixel-identical or copies) in two splits",
            "0",
            find_leakage,
            leakage_share,
            "imgindex duplicates --db IDX",
        ),
        Rule(
            "duplicates",
            "duplicates within one split",
            "0",
            find_duplicates,
            extra_copies_share,
            "imgindex duplicates --db IDX",
        ),
        Rule(
            "label-conflicts",
            "duplicates labelled two ways",
            "0",
            find_label_conflicts,
            image_share,
            'imgindex sql --db IDX "select * from label_conflict_pairs"',
        ),
        Rule(
            "unreadable",
            "image files that could not be read",
            "0",
            find_unreadable,
            image_share,
            'imgindex sql --db IDX "select split, path, error from unreadable"',
        ),
        *_label_rules(),
        *_quality_rules(),
    ]
}
