"""Which images a leak-free, de-duplicated dataset keeps: pure decisions over the stored verdict.

A duplicate group spanning splits (a leak) goes to one split: the training split (default, so
that validation and test stay clean), the split holding most of its members, or none (dropped).
Within the split that keeps it, one member stays: a labelled image before one without labels (an
unlabelled copy would teach its objects as background), then the largest picture, then the one
whose label files have fewest problems, then the first path. Every other member is removed, with
the reason.
Afterwards no two kept images form a duplicate pair of the index (near_pairs graded by the
verdict), so that scanning the exported dataset finds no duplicate: a pair the group cut had kept
apart is settled the same way. Files the scan could not read are left out, with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import sqlite_utils

from .. import reviews
from ..near import labels as label_check
from ..near import verdict as verdicts
from ..views import PAIR_GRADE

LEAK_POLICIES = ("train", "largest", "drop")
TRAIN_NAMES = ("train", "training", "trn")
DUPLICATE_GRADES = ("byte-identical", "pixel-identical", "copy")


@dataclass(frozen=True)
class Image:
    id: int
    split: str
    path: str
    rel_path: str
    pixels: int
    size: int
    problems: int
    labelled: bool = False  # a label file of its split covers it (an empty one: a background image)
    escaped: bool = False  # its name is not UTF-8: ``path`` writes its bytes as \\xNN (walk.stored_text)

    def largest(self) -> tuple[bool, int, int, int, str]:
        """Lower is kept first: labelled, the largest picture, fewest label problems, the path."""
        return (not self.labelled, -self.pixels, self.problems, -self.size, self.path)

    def fewest_problems(self) -> tuple[bool, int, int, int, str]:
        """Lower is kept first: labelled, fewest label problems, the largest picture, the path."""
        return (not self.labelled, self.problems, -self.pixels, -self.size, self.path)


Rank = Callable[[Image], tuple[bool, int, int, int, str]]
KEEP_POLICIES: dict[str, tuple[Rank, str]] = {
    "largest": (Image.largest, "kept as the largest"),
    "fewest-problems": (Image.fewest_problems, "kept for the fewest label problems"),
}


@dataclass(frozen=True)
class Removal:
    image: Image
    kind: str  # duplicate | leak | leak between SPLITS (dropped whole) | unreadable | unnamable (by the format)
    reason: str


@dataclass
class Decision:
    images: dict[int, Image]
    removed: list[Removal] = field(default_factory=list)
    train_split: str | None = None
    keep: str = "largest"  # KEEP_POLICIES

    def kept(self, split: str) -> list[Image]:
        gone = {r.image.id for r in self.removed}
        return sorted((i for i in self.images.values() if i.split == split and i.id not in gone), key=lambda i: i.path)

    def splits(self) -> list[str]:
        return sorted({i.split for i in self.images.values()})


def load_images(db: sqlite_utils.Database) -> dict[int, Image]:
    """Every readable image, with its pixel count, the problems of the label files that cover it
    alone, and whether a label file of its split covers it."""
    problems = dict(
        db.execute(
            """SELECT lfi.image_path || char(0) || lf.split, COUNT(p.id) FROM label_file_images lfi
               JOIN label_files lf ON lf.id = lfi.label_file_id
               JOIN label_problems p ON p.label_file_id = lf.id
               WHERE (SELECT COUNT(*) FROM label_file_images o WHERE o.label_file_id = lf.id) = 1
               GROUP BY lfi.image_path, lf.split"""
        ).fetchall()
    )
    rows = db.execute(
        f"""SELECT i.id, i.split, i.path, i.rel_path, coalesce(i.width * i.height, 0), i.size,
                   {label_check.COVERED_SQL}, i.path_bytes IS NOT NULL
            FROM images i WHERE i.error IS NULL"""
    )
    return {
        r[0]: Image(r[0], r[1], r[2], r[3], r[4], r[5], problems.get(f"{r[2]}\0{r[1]}", 0), bool(r[6]), bool(r[7]))
        for r in rows.fetchall()
    }


def load_unreadable(db: sqlite_utils.Database) -> list[Removal]:
    """Every file the scan could not read: left out of the export, each with the scan's reason."""
    rows = db.execute("SELECT id, split, path, rel_path, coalesce(size, 0), error FROM images WHERE error IS NOT NULL")
    return [
        Removal(Image(r[0], r[1], r[2], r[3], 0, r[4], 0), "unreadable", f"unreadable: {r[5]}") for r in rows.fetchall()
    ]


def training_split(splits: Iterable[str], given: str | None) -> str | None:
    names = list(splits)
    if given is not None:
        return given
    return next((s for name in TRAIN_NAMES for s in names if s.lower() == name), None)


def decide(
    db: sqlite_utils.Database, leaks: str = "train", train_split: str | None = None, keep: str = "largest"
) -> Decision:
    """The removals of the export under a leak policy (LEAK_POLICIES) and a choice of the copy
    that stays (KEEP_POLICIES)."""
    if leaks not in LEAK_POLICIES:
        raise ValueError(f"leak policy must be one of {', '.join(LEAK_POLICIES)}, not {leaks!r}")
    if keep not in KEEP_POLICIES:
        raise ValueError(f"keep policy must be one of {', '.join(KEEP_POLICIES)}, not {keep!r}")
    unreadable = load_unreadable(db)
    decision = Decision(load_images(db) | {r.image.id: r.image for r in unreadable}, keep=keep)
    decision.removed += unreadable
    decision.train_split = training_split(decision.splits(), train_split)
    for group in verdicts.load(db).groups:
        members = [decision.images[m.id] for m in group.members if m.id in decision.images]
        if len(members) >= 2:
            decision.removed += _settle(members, leaks, decision.train_split, decision.keep)
    decision.removed += _remaining_pairs(db, decision, leaks)
    return decision


def _settle(members: list[Image], leaks: str, train: str | None, keep: str) -> list[Removal]:
    splits = sorted({m.split for m in members})
    if len(splits) == 1:
        return _keep_one(members, "duplicate", keep)
    if leaks == "drop":
        between = f"leak between {' and '.join(splits)}"
        return [Removal(m, between, f"{between}: the whole group dropped") for m in members]
    home = _home(members, splits, leaks, train)
    away = [
        Removal(m, "leak", f"leak: a copy of {_place(_best(members, home, keep))}, which {home} keeps")
        for m in members
        if m.split != home
    ]
    return away + _keep_one([m for m in members if m.split == home], "duplicate", keep)


def _home(members: list[Image], splits: list[str], leaks: str, train: str | None) -> str:
    if leaks == "train" and train in splits:
        return train
    counts = {s: sum(m.split == s for m in members) for s in splits}
    return min(splits, key=lambda s: (-counts[s], s != train, s))


def _best(members: list[Image], split: str, keep: str) -> Image:
    return min((m for m in members if m.split == split), key=KEEP_POLICIES[keep][0])


def _keep_one(members: list[Image], why: str, keep: str) -> list[Removal]:
    if len(members) < 2:
        return []
    rank, said = KEEP_POLICIES[keep]
    kept = min(members, key=rank)
    return [Removal(m, why, f"{why} of {_place(kept)}, {_why_kept(kept, m, said)}") for m in members if m is not kept]


def _why_kept(kept: Image, removed: Image, said: str) -> str:
    return "kept as the labelled copy" if kept.labelled and not removed.labelled else said


def _place(image: Image) -> str:
    return f"{image.split}:{image.rel_path}"


def _remaining_pairs(db: sqlite_utils.Database, decision: Decision, leaks: str) -> list[Removal]:
    """Duplicate pairs of the index between images still kept (pairs the group cut kept apart):
    one of each is removed by the same policy, until none is left."""
    gone = {r.image.id for r in decision.removed} | reviews.applied(db).ignored
    grades = ", ".join(f"'{g}'" for g in DUPLICATE_GRADES)
    rows = db.execute(f"SELECT p.a, p.b FROM near_pairs p WHERE {PAIR_GRADE} IN ({grades})").fetchall()
    removed: list[Removal] = []
    for a, b in rows:
        if a in gone or b in gone or a not in decision.images or b not in decision.images:
            continue
        pair = [decision.images[a], decision.images[b]]
        for removal in _settle(pair, leaks, decision.train_split, decision.keep):
            gone.add(removal.image.id)
            removed.append(removal)
    return removed


def per_split(decision: Decision) -> dict[str, tuple[int, int]]:
    """split -> (images kept, images removed)."""
    removed = {s: 0 for s in decision.splits()}
    for r in decision.removed:
        removed[r.image.split] += 1
    return {s: (len(decision.kept(s)), removed[s]) for s in decision.splits()}


__all__ = ["KEEP_POLICIES", "LEAK_POLICIES", "Decision", "Image", "Removal", "decide", "per_split"]
