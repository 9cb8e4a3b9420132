"""The verdict: duplicate groups, scenes and label conflicts under one rule, computed once.

Every command that writes the index stores the verdict of the default rule (``store``: tables
verdict_groups, verdict_members, label_conflicts and the rule in settings); the CLI, the report,
the views and Datasette read it back (``load``). Another rule (DataGradients' equal dHash, or
another distance) is computed on demand by the same code (``compute``), never stored.

The default rule (imgindex): candidate pairs within 8 of 64 dHash bits, or whose window hashes say
one is a crop of the other (imgindex.near.pairs.window_pairs), graded by imgindex.near.pairs
(the second signals, then where the signatures differ); a copy pair whose labels disagree is a
similar scene unless its pixels agree everywhere (then it is a copy with a label conflict), and so
is a copy pair whose largest difference stands out on an object both its label sets box (the
object moved, turned or was swapped: different shots of one scene, labelled alike).
Duplicates are byte-identical, pixel-identical and copy pairs; a duplicate group is a connected
component of them, cut so that every two members pass the verification against each other (a
group never chains). Scenes are the components of duplicate and similar-scene pairs that hold
more than one group or single image.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlite_utils
from numpy.typing import NDArray

from .. import reviews
from .. import store as index_store
from . import labels as label_check
from . import pairs as near_pairs
from . import search as near
from . import verify

DEFAULT_MAX_DISTANCE = near_pairs.CEILING
MAX_DISTANCE = 16
RULE_SETTING = "verdict.rule"
MAX_CHECKED_MEMBERS = 1000  # larger components are kept as linked, without the all-pairs check


@dataclass(frozen=True)
class Rule:
    name: str
    max_distance: int
    verified: bool

    def describe(self) -> str:
        if not self.verified:
            return "DataGradients' rule: equal 64-bit dHash, nothing else (no verification)"
        return (
            f"imgindex rule ({verify.VERSION}): dHash within {self.max_distance} of 64 bits or, for crops, "
            f"window hashes within {near_pairs.WINDOW_MAX} bits, confirmed by the "
            "tone and the aligned signatures, graded by where the pixels differ and by the labels (labels that disagree, or a difference on a labelled object, make a similar scene); duplicates are byte-identical, "
            "pixel-identical and copy pairs, every two members of a group verified"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "max_distance": self.max_distance,
            "window_max_distance": near_pairs.WINDOW_MAX if self.verified else None,
            "verification": verify.VERSION if self.verified else None,
            "description": self.describe(),
        }


def imgindex_rule(max_distance: int = DEFAULT_MAX_DISTANCE) -> Rule:
    if not 0 <= max_distance <= MAX_DISTANCE:
        raise ValueError(f"max_distance must be in 0..{MAX_DISTANCE}, got {max_distance}")
    return Rule("imgindex", max_distance, True)


def datagradients_rule(max_distance: int = 0) -> Rule:
    return Rule("datagradients", 0, False)


RULES: dict[str, Callable[[int], Rule]] = {"imgindex": imgindex_rule, "datagradients": datagradients_rule}
DEFAULT_RULE = "imgindex"


@dataclass(frozen=True)
class Member:
    id: int
    split: str
    path: str
    dhash: str


@dataclass
class Group:
    kind: str  # duplicates | scene
    grade: str
    members: list[Member]
    max_distance: int = 0

    @property
    def paths(self) -> list[str]:
        return sorted(m.path for m in self.members)

    def count(self, split: str) -> int:
        return sum(m.split == split for m in self.members)

    def only(self, *splits: str) -> list[Member]:
        return [m for m in self.members if m.split in splits]


@dataclass(frozen=True)
class Conflict:
    a: Member
    b: Member
    grade: str
    kind: str
    detail: str


@dataclass
class Verdict:
    rule: Rule
    splits: list[str]
    images: dict[str, int]
    groups: list[Group] = field(default_factory=list)
    scenes: list[Group] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    overrides: list[tuple[int, int, str, str]] = field(default_factory=list)  # pairs labels regraded, why

    def within(self, split: str, scenes: bool = False) -> list[Group]:
        """Groups with two or more members in split, restricted to them, sorted by paths."""
        found = [
            Group(g.kind, g.grade, g.only(split), g.max_distance)
            for g in (self.scenes if scenes else self.groups)
            if g.count(split) >= 2
        ]
        return sorted(found, key=lambda g: g.paths)

    def across(self, a: str, b: str, scenes: bool = False) -> list[Group]:
        """Groups with members in both splits, restricted to them, sorted by paths."""
        found = [
            Group(g.kind, g.grade, g.only(a, b), g.max_distance)
            for g in (self.scenes if scenes else self.groups)
            if g.count(a) and g.count(b)
        ]
        return sorted(found, key=lambda g: g.paths)


# ---------------------------------------------------------------- computing


def split_names(db: sqlite_utils.Database) -> list[str]:
    rows = db.execute("SELECT DISTINCT split FROM images UNION SELECT DISTINCT name FROM splits ORDER BY 1")
    return [r[0] for r in rows]


def image_counts(db: sqlite_utils.Database) -> dict[str, int]:
    return dict(db.execute("SELECT split, COUNT(*) FROM images GROUP BY split").fetchall())


def load_members(db: sqlite_utils.Database, ids: Iterable[int]) -> dict[int, Member]:
    rows = db.execute(
        "SELECT id, split, path, dhash FROM images WHERE id IN (SELECT value FROM json_each(?))",
        [json.dumps(sorted(set(ids)))],
    )
    return {r[0]: Member(*r) for r in rows}


def compute(db: sqlite_utils.Database, rule: Rule, held: near_pairs.Refreshed | None = None) -> Verdict:
    """The verdict of a rule, from the index (read only); held: what a refresh of every image
    returned (imgindex.near.pairs.update: the near pairs and their images' signals), used instead
    of reading them back."""
    signals = held.signals if held else None
    verdict = Verdict(rule, split_names(db), image_counts(db))
    if not rule.verified:
        verdict.groups = _equal_dhash_groups(db)
        return verdict
    reviewed = reviews.applied(db)
    graded = _reviewed(_graded_pairs(db, rule.max_distance, held), reviewed)
    verdict.overrides = graded.overrides
    duplicate_a, duplicate_b = graded.edges(near_pairs.DUPLICATE_KINDS)
    linked = np.unique(np.concatenate([duplicate_a, duplicate_b]))
    checker = _Checker(db, set(linked.tolist()), graded, reviewed, _signals_of(db, linked, signals))
    members = load_members(db, graded.ids())
    duplicate_components = components(duplicate_a, duplicate_b)
    known = _known_inside(duplicate_components, graded)
    checker.place = {x: (m.split, m.path) for x, m in members.items()}
    for component, inside in zip(duplicate_components, known):
        for part in checker.cut(component, inside):
            verdict.groups.append(_group("duplicates", part, members, checker))
    verdict.scenes = _scenes(verdict.groups, graded, members)
    verdict.conflicts = _conflicts(verdict.groups, checker)
    return verdict


@dataclass
class _Graded:
    """Candidate pairs with their final grade (labels applied), as arrays."""

    a: NDArray[np.int64]
    b: NDArray[np.int64]
    grade: NDArray[np.object_]
    overrides: list[tuple[int, int, str, str]]  # a, b, grade, why
    change: NDArray[np.float64]  # the signatures' largest difference (NaN: not compared)

    def ids(self) -> set[int]:
        return set(np.unique(np.concatenate([self.a, self.b])).tolist())

    def edges(self, grades: Iterable[str]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        keep = np.isin(self.grade, list(grades))
        return self.a[keep], self.b[keep]


class _LabelVerdicts:
    """Label comparisons of images, each two distinct label sets compared once."""

    def __init__(self, db: sqlite_utils.Database, ids: Iterable[int]) -> None:
        self.labels = label_check.load(db, ids)
        self.keys = {i: label_check.key(v) for i, v in self.labels.items()}
        self.cache: dict[tuple[Hashable, Hashable], bool] = {}
        self.reasons: dict[tuple[Hashable, Hashable], label_check.Disagreement | None] = {}
        self.exact: dict[int, Hashable] = {}

    def on_objects(self, a: list[int], b: list[int], compared: verify.Comparison) -> NDArray[np.bool_]:
        """Per pair, whether the largest difference lies on a box of both images' labels."""
        where = compared.where.tolist() if compared.where is not None else [-1] * len(a)
        return np.array(
            [
                cell >= 0
                and label_check.on_object(self.labels.get(x), cell)
                and label_check.on_object(self.labels.get(y), cell)
                for x, y, cell in zip(a, b, where)
            ],
            dtype=bool,
        )

    def disagree_pairs(self, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.bool_]:
        """disagree(a[k], b[k]) for every k, each two distinct label sets compared once."""
        ids = np.unique(np.concatenate([a, b]))
        codes: dict[Hashable, int] = {}
        of_id = np.array(
            [-1 if self.keys.get(x) is None else codes.setdefault(self.keys[x], len(codes)) for x in ids.tolist()]
        )
        ca, cb = of_id[np.searchsorted(ids, a)], of_id[np.searchsorted(ids, b)]
        ask = np.flatnonzero((ca >= 0) & (cb >= 0) & (ca != cb))
        if not len(ask):
            return np.zeros(len(a), dtype=bool)
        first, second, back = near_pairs.unique_pairs(ca[ask], cb[ask])
        one_of = dict(zip(of_id.tolist(), ids.tolist()))  # an image of each label set
        found = np.array(
            [self.disagree(one_of[x], one_of[y]) for x, y in zip(first.tolist(), second.tolist())], dtype=bool
        )
        out = np.zeros(len(a), dtype=bool)
        out[ask] = found[back]
        return out

    def known_pairs(self, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Per pair, whether both images' labels are known."""
        labelled = np.fromiter(self.labels, dtype=np.int64, count=len(self.labels))
        return np.isin(a, labelled) & np.isin(b, labelled)

    def disagree(self, x: int, y: int) -> bool:
        kx, ky = self.keys.get(x), self.keys.get(y)
        if kx is None or ky is None or kx == ky:
            return False
        if (kx, ky) not in self.cache:
            self.cache[(kx, ky)] = label_check.differ(self.labels[x], self.labels[y])
        return self.cache[(kx, ky)]

    def why(self, x: int, y: int) -> label_check.Disagreement | None:
        """label_check.compare of the two images' labels, once per two distinct label lists."""
        key = (self._exact(x), self._exact(y))
        if key not in self.reasons:
            self.reasons[key] = label_check.compare(self.labels.get(x), self.labels.get(y))
        return self.reasons[key]

    def _exact(self, x: int) -> Hashable:
        """Equal for images whose labels compare alike with any others: the same classes and the
        same boxes in the same order."""
        if x not in self.exact:
            labels = self.labels.get(x)
            self.exact[x] = None if labels is None else _exact_key(labels)
        return self.exact[x]


def _exact_key(labels: label_check.ImageLabels) -> Hashable:
    classes = tuple(sorted(((str(c), n) for c, n in labels.classes.items())))
    return classes, tuple(sorted((str(c), tuple(boxes)) for c, boxes in labels.boxes.items()))


def _graded_pairs(db: sqlite_utils.Database, max_distance: int, held: near_pairs.Refreshed | None = None) -> _Graded:
    pairs, grades = near_pairs.all_pairs(db, max_distance, held.stored if held else None)
    kind = grades.kind.copy()
    maybe = np.flatnonzero((kind == "copy") & ~(grades.change <= verify.CLEAR_COPY))
    overrides: list[tuple[int, int, str, str]] = []
    if not len(maybe):
        return _Graded(pairs.a, pairs.b, kind, overrides, grades.change)
    labels = _LabelVerdicts(db, np.unique(np.concatenate([pairs.a[maybe], pairs.b[maybe]])).tolist())
    disagree = labels.disagree_pairs(pairs.a[maybe], pairs.b[maybe])
    localised = grades.change[maybe] > verify.SCENE_RATIO * grades.background[maybe]
    both = labels.known_pairs(pairs.a[maybe], pairs.b[maybe])
    look = maybe[~disagree & localised & both]
    signals = held.signals if held else None
    moved = look[_objects_differ(db, labels, pairs.a[look], pairs.b[look], signals)] if len(look) else look
    for ks, reason in ((maybe[disagree], LABELS_DISAGREE), (moved, OBJECT_DIFFERS)):
        kind[ks] = "similar-scene"
        overrides += [(int(pairs.a[k]), int(pairs.b[k]), "similar-scene", reason) for k in ks.tolist()]
    return _Graded(pairs.a, pairs.b, kind, sorted(overrides), grades.change)


REVIEWED_NOT_DUPLICATE = "reviewed: not a duplicate"
REVIEWED_DUPLICATE = "reviewed: duplicate"


def _reviewed(graded: _Graded, reviewed: reviews.Reviewed) -> _Graded:
    """The graded pairs with a reviewer's verdicts applied: pairs of ignored images gone, pairs
    reviewed as not duplicates similar scenes, pairs reviewed as duplicates copies (added when
    they were no candidates)."""
    if not reviewed:
        return graded
    keep = ~(np.isin(graded.a, list(reviewed.ignored)) | np.isin(graded.b, list(reviewed.ignored)))
    a, b, grade, change = graded.a[keep], graded.b[keep], graded.grade[keep].copy(), graded.change[keep]
    overrides = [o for o in graded.overrides if o[0] not in reviewed.ignored and o[1] not in reviewed.ignored]
    at = {(int(x), int(y)): k for k, (x, y) in enumerate(zip(a.tolist(), b.tolist()))}
    changed: dict[tuple[int, int], tuple[str, str]] = {}
    for pair in sorted(reviewed.not_duplicate):
        if pair in at:
            grade[at[pair]] = "similar-scene"
            changed[pair] = ("similar-scene", REVIEWED_NOT_DUPLICATE)
    extra = [pair for pair in sorted(reviewed.duplicate) if not (set(pair) & reviewed.ignored)]
    for pair in extra:
        if pair in at:
            grade[at[pair]] = "copy"
        changed[pair] = ("copy", REVIEWED_DUPLICATE)
    added = [pair for pair in extra if pair not in at]
    if added:
        a = np.concatenate([a, np.array([p[0] for p in added], dtype=a.dtype)])
        b = np.concatenate([b, np.array([p[1] for p in added], dtype=b.dtype)])
        grade = np.concatenate([grade, np.array(["copy"] * len(added), dtype=object)])
        change = np.concatenate([change, np.full(len(added), np.nan)])
    overrides = [o for o in overrides if (o[0], o[1]) not in changed]
    overrides += [(x, y, g, why) for (x, y), (g, why) in changed.items()]
    return _Graded(a, b, grade, sorted(overrides), change)


LABELS_DISAGREE = "labels disagree"
OBJECT_DIFFERS = "a labelled object differs"


def _objects_differ(
    db: sqlite_utils.Database,
    labels: _LabelVerdicts,
    a: NDArray[np.int64],
    b: NDArray[np.int64],
    loaded: near_pairs.Signals | None = None,
) -> NDArray[np.bool_]:
    """Per pair, whether the pictures differ most, and clearly more than elsewhere, on an object
    both label sets box: the object moved, turned or was swapped for a like one."""
    signals = _signals_of(db, np.unique(np.concatenate([a, b])), loaded)
    compared = verify.compare_rows(signals.signatures, signals.cells, signals.rows(a), signals.rows(b))
    return compared.localised & labels.on_objects(a.tolist(), b.tolist(), compared)


def _signals_of(
    db: sqlite_utils.Database, ids: NDArray[np.int64], loaded: near_pairs.Signals | None
) -> near_pairs.Signals:
    """The signals of the images ids: those loaded already when they hold every one, else read."""
    if loaded is not None and np.isin(ids, loaded.ids).all():
        return loaded
    return near_pairs.load_signals(db, ids)


@dataclass(frozen=True)
class _Known:
    """Graded pairs a < b inside one component and whether each passes."""

    a: NDArray[np.int64]
    b: NDArray[np.int64]
    passes: NDArray[np.bool_]


def _known_inside(components: list[list[int]], graded: _Graded) -> list[_Known]:
    """Per component, its graded pairs and whether each passes: a duplicate grade passes, a
    similar scene fails. A pair graded 'different' is left to the check, which, unlike the
    candidate grading, does not compare tone (two copies of one photo may be brightened apart)."""
    if not components:
        return []
    nodes = np.concatenate([np.array(c, dtype=np.int64) for c in components])
    label = np.concatenate([np.full(len(c), k) for k, c in enumerate(components)])
    order = np.argsort(nodes)
    nodes, label = nodes[order], label[order]

    def component_of(x: NDArray[np.int64]) -> NDArray[np.int64]:
        at = np.minimum(np.searchsorted(nodes, x), len(nodes) - 1)
        return np.where(nodes[at] == x, label[at], -1 - np.arange(len(x)))

    where = component_of(graded.a)
    inside = np.flatnonzero((where >= 0) & (where == component_of(graded.b)) & (graded.grade != "different"))
    inside = inside[np.argsort(where[inside], kind="stable")]
    passes = np.isin(graded.grade[inside], near_pairs.DUPLICATE_KINDS)
    cuts = np.cumsum(np.bincount(where[inside], minlength=len(components)))[:-1]
    return [
        _Known(a, b, ok)
        for a, b, ok in zip(np.split(graded.a[inside], cuts), np.split(graded.b[inside], cuts), np.split(passes, cuts))
    ]


def components(a: NDArray[np.int64], b: NDArray[np.int64]) -> list[list[int]]:
    """Connected components (of 2+ nodes) of the undirected graph of edges (a[k], b[k]), each
    sorted, by first member: labels propagated to the smallest node with pointer jumping."""
    if len(a) == 0:
        return []
    nodes, index = np.unique(np.concatenate([a, b]), return_inverse=True)
    ia, ib = index[: len(a)], index[len(a) :]
    label = np.arange(len(nodes))
    while True:
        low = np.minimum(label[ia], label[ib])
        new = label.copy()
        np.minimum.at(new, ia, low)
        np.minimum.at(new, ib, low)
        new = new[new]
        if np.array_equal(new, label):
            break
        label = new
    order = np.lexsort((nodes, label))
    cuts = np.flatnonzero(np.diff(label[order])) + 1
    return [part.tolist() for part in np.split(nodes[order], cuts) if len(part) >= 2]


class _Checker:
    """Pair verification between any two images: identical bytes or pixels pass; otherwise the
    signatures must not show a scene change, and labels that disagree fail unless the pixels
    agree everywhere."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        ids: set[int],
        graded: _Graded,
        reviewed: reviews.Reviewed | None,
        signals: near_pairs.Signals,
    ) -> None:
        self.reviewed = reviewed or reviews.Reviewed()
        self.singled = reviews.ids_of(self.reviewed.not_duplicate | self.reviewed.duplicate)
        self.signals = signals  # of (at least) the images ids
        self.labels = _LabelVerdicts(db, ids)
        a, b = graded.edges(near_pairs.DUPLICATE_KINDS)
        linked, counts = np.unique(np.concatenate([a, b]), return_counts=True)
        self.degree = dict(zip(linked.tolist(), counts.tolist()))
        self.mean_change = _mean_change(graded)
        self.place: dict[int, tuple[str, str]] = {}  # (split, path): ties broken by the files, not ids

    def verified(self, a: list[int], b: list[int]) -> NDArray[np.bool_]:
        """Whether each pair a[k], b[k] passes."""
        s = self.signals
        ra, rb = s.rows(np.array(a, dtype=np.int64)), s.rows(np.array(b, dtype=np.int64))
        identical = near_pairs._same_code(s.sha_code, ra, rb) | near_pairs._same_code(s.pixel_code, ra, rb)
        compared = verify.compare_rows(s.signatures, s.cells, ra, rb)
        signed = s.has_signature[ra] & s.has_signature[rb]
        ok = ~((compared.scene | compared.unrelated) & signed)
        disagree = self.labels.disagree_pairs(np.array(a, dtype=np.int64), np.array(b, dtype=np.int64))
        ok &= ~(disagree & ~(compared.clear_copy & signed))
        ok &= ~(compared.localised & signed & self.labels.on_objects(a, b, compared))
        said = [(min(x, y), max(x, y)) for x, y in zip(a, b)]
        not_duplicate = np.array([p in self.reviewed.not_duplicate for p in said], dtype=bool)
        duplicate = np.array([p in self.reviewed.duplicate for p in said], dtype=bool)
        return np.asarray(((identical | ok) & ~not_duplicate) | duplicate)

    def keys(self, ids: list[int]) -> list[Hashable]:
        """Equal for images that pass or fail alike against any other: the same pixels (or
        bytes) and the same labels."""
        s = self.signals
        rows = s.rows(np.array(ids, dtype=np.int64))
        codes = np.where(s.pixel_code[rows] >= 0, s.pixel_code[rows], -1 - np.array(ids)).tolist()
        codes = [-1 - x if x in self.singled else c for c, x in zip(codes, ids)]  # a reviewed image is itself
        return [(c, self.labels.keys.get(x)) for c, x in zip(codes, ids)]

    def cut(self, component: list[int], known: _Known) -> list[list[int]]:
        """The component cut into groups whose members all pass against each other. Members alike
        (keys) are checked once, through one of them; pairs already graded (known) are not
        checked again, and other pairs only when the cut needs them."""
        alike: dict[Hashable, list[int]] = {}
        for x, k in zip(component, self.keys(component)):
            alike.setdefault(k, []).append(x)
        reps = [same[0] for same in alike.values()]
        if len(reps) < 2 or len(reps) > MAX_CHECKED_MEMBERS:
            return [component]
        ids = np.array(reps, dtype=np.int64)
        status = _status(ids, known)
        order = np.array(sorted(range(len(reps)), key=self._rank(reps)))
        while True:
            part_of, asked_x, asked_y = _greedy_parts(order, status)
            if len(asked_x) == 0:
                break
            a, b = np.minimum(ids[asked_x], ids[asked_y]), np.maximum(ids[asked_x], ids[asked_y])
            passes = self.verified(a.tolist(), b.tolist())
            status[asked_x, asked_y] = status[asked_y, asked_x] = passes
        if part_of.max() == 0:
            return [component]
        members = {same[0]: same for same in alike.values()}
        placed = order[np.argsort(part_of[order], kind="stable")]  # by part, in the order placed
        cuts = np.flatnonzero(np.diff(part_of[placed])) + 1
        groups = [[x for k in part.tolist() for x in members[reps[k]]] for part in np.split(placed, cuts)]
        return [sorted(g) for g in groups if len(g) >= 2]

    def _rank(self, reps: list[int]) -> Callable[[int], tuple[int, float, tuple[str, str], int]]:
        """The order reps[k] are placed in when a component is cut: the best linked first, then
        those that differ least from their candidate partners (in hundredths of their mean change:
        of two members alike linked that cannot share a group, the one further from the rest, an
        overlay or a heavier crop, is left out); ties by split and path, so that the parts do not
        depend on the order images were indexed in."""
        return lambda k: (
            -self.degree.get(reps[k], 0),
            self.mean_change.get(reps[k], UNCOMPARED),
            self.place.get(reps[k], ("", "")),
            reps[k],
        )

    def pair_grades(self, a: list[int], b: list[int]) -> list[str]:
        """grade([a[k], b[k]]) of each pair."""
        s = self.signals
        ra, rb = s.rows(np.array(a, dtype=np.int64)), s.rows(np.array(b, dtype=np.int64))
        same_bytes = near_pairs._same_code(s.sha_code, ra, rb)
        same_pixels = near_pairs._same_code(s.pixel_code, ra, rb)
        return list(np.select([same_bytes, same_pixels], ["byte-identical", "pixel-identical"], "copy").tolist())

    def grade(self, ids: list[int]) -> str:
        s = self.signals
        rows = s.rows(np.array(ids, dtype=np.int64))
        if len(set(s.sha_code[rows].tolist())) == 1 and s.sha_code[rows[0]] >= 0:
            return "byte-identical"
        if len(set(s.pixel_code[rows].tolist())) == 1 and s.pixel_code[rows[0]] >= 0:
            return "pixel-identical"
        return "copy"


UNKNOWN = -1
UNCOMPARED = float("inf")  # the mean change of an image none of whose pairs was compared


def _mean_change(graded: _Graded) -> dict[int, float]:
    """Each image's mean change over its compared candidate pairs, rounded to hundredths."""
    ok = np.isfinite(graded.change)
    ends = np.concatenate([graded.a[ok], graded.b[ok]])
    if not len(ends):
        return {}
    nodes, at = np.unique(ends, return_inverse=True)
    sums = np.bincount(at, weights=np.concatenate([graded.change[ok], graded.change[ok]]))
    means = np.round(sums / np.bincount(at), 2)
    return dict(zip(nodes.tolist(), means.tolist()))


def _status(ids: NDArray[np.int64], known: _Known) -> NDArray[np.int8]:
    """(n, n) for the images ids: 1 where the pair passes, 0 where it fails, UNKNOWN where it
    was not graded."""
    order = np.argsort(ids)
    at_a = np.minimum(np.searchsorted(ids, known.a, sorter=order), len(ids) - 1)
    at_b = np.minimum(np.searchsorted(ids, known.b, sorter=order), len(ids) - 1)
    x, y = order[at_a], order[at_b]
    both = (ids[x] == known.a) & (ids[y] == known.b)
    status = np.full((len(ids), len(ids)), UNKNOWN, dtype=np.int8)
    status[x[both], y[both]] = status[y[both], x[both]] = known.passes[both]
    return status


def _greedy_parts(order: NDArray[np.int64], status: NDArray[np.int8]) -> tuple[NDArray[np.int64], list[int], list[int]]:
    """Nodes in order, each put into the first part holding no node it fails against, else a new
    part: (each node's part, and the pairs of unknown status that choice assumed to pass). When
    none was assumed, the parts are those of the true statuses. Parts and statuses are sets of
    nodes held as the bits of Python integers: a node's placement costs a few integer operations."""
    fails, unknown = _bitsets(status == 0), _bitsets(status == UNKNOWN)
    part_of = np.full(len(order), -1, dtype=np.int64)
    parts: list[int] = []  # each part's members
    asked_x: list[int] = []
    asked_y: list[int] = []
    for x in order.tolist():
        home = next((k for k, members in enumerate(parts) if not members & fails[x]), len(parts))
        if home == len(parts):
            parts.append(0)
        else:
            assumed = _nodes(parts[home] & unknown[x])
            asked_x += [x] * len(assumed)
            asked_y += assumed
        parts[home] |= 1 << x
        part_of[x] = home
    return part_of, asked_x, asked_y


def _bitsets(mask: NDArray[np.bool_]) -> list[int]:
    """Each row of a square boolean matrix as an integer whose bit k is column k."""
    width = (mask.shape[1] + 7) // 8
    packed = np.packbits(mask, axis=1, bitorder="little").tobytes()
    return [int.from_bytes(packed[k : k + width], "little") for k in range(0, len(packed), width)]


def _nodes(bits: int) -> list[int]:
    """The set bits of an integer, lowest first."""
    found = []
    while bits:
        low = bits & -bits
        found.append(low.bit_length() - 1)
        bits ^= low
    return found


def _group(kind: str, ids: list[int], members: dict[int, Member], checker: _Checker) -> Group:
    largest = _largest_distance(near.hex_to_u64([members[x].dhash for x in ids]))
    grade = checker.grade(ids) if kind == "duplicates" else "similar-scene"
    return Group(kind, grade, [members[x] for x in ids], largest)


def _scenes(groups: list[Group], graded: _Graded, members: dict[int, Member]) -> list[Group]:
    """Components of duplicate and similar-scene pairs holding more than one group or image."""
    unit = {m.id: k for k, g in enumerate(groups) for m in g.members}
    scenes = []
    for component in components(*graded.edges((*near_pairs.DUPLICATE_KINDS, "similar-scene"))):
        units = {unit.get(x, -1 - x) for x in component}
        if len(units) > 1:
            hashes = near.hex_to_u64([members[x].dhash for x in component])
            largest = _largest_distance(hashes)
            scenes.append(Group("scene", "similar-scene", [members[x] for x in component], largest))
    return scenes


def _largest_distance(hashes: near.U64) -> int:
    """The largest dHash distance between two of the hashes (distinct values only)."""
    values = np.unique(hashes)
    if len(values) > 2000:  # a very large scene: the distance to its first value, doubled at most
        return int(min(64, 2 * int(near.hamming(values, values[0]).max())))
    return max(int(near.hamming(values, h).max()) for h in values)


def _conflicts(groups: list[Group], checker: _Checker) -> list[Conflict]:
    """Pairs of one duplicate group whose labels disagree: for each two label sets of the group
    that disagree, one pair, each image the first of its label set by (split, path); the pair in
    that order (a conflict names files, whatever order they were indexed in)."""
    found = []
    labels = checker.labels
    for group in groups:
        by_labels: dict[Hashable, Member] = {}
        for m in sorted(group.members, key=_place):
            by_labels.setdefault(labels.keys.get(m.id), m)
        for a, b in itertools.combinations(sorted(by_labels.values(), key=_place), 2):
            why = labels.why(a.id, b.id)
            if why is not None:
                found.append((a, b, why))
    grades = checker.pair_grades([a.id for a, _, _ in found], [b.id for _, b, _ in found])
    return [Conflict(a, b, grade, why.kind, why.detail) for (a, b, why), grade in zip(found, grades)]


def _place(m: Member) -> tuple[str, str]:
    return (m.split, m.path)


def _equal_dhash_groups(db: sqlite_utils.Database) -> list[Group]:
    """DataGradients' groups: readable images sharing the whole 64-bit dHash."""
    rows = db.execute(
        """SELECT id, split, path, dhash, sha256, pixel_hash FROM images
           WHERE error IS NULL AND dhash IN (
               SELECT dhash FROM images WHERE error IS NULL AND dhash IS NOT NULL GROUP BY dhash HAVING COUNT(*) > 1)
           ORDER BY dhash, id"""
    ).fetchall()
    groups = []
    for _, same in itertools.groupby(rows, key=lambda r: r[3]):
        items = list(same)
        grade = (
            "byte-identical"
            if len({r[4] for r in items}) == 1
            else "pixel-identical"
            if len({r[5] for r in items}) == 1
            else "equal dHash"
        )
        groups.append(Group("duplicates", grade, [Member(*r[:4]) for r in items], 0))
    return groups


# ---------------------------------------------------------------- storing and loading


def refresh(db: sqlite_utils.Database) -> int:
    """What every write ends with, in one transaction: the near pairs of the changed images
    (imgindex.near.pairs.refresh), then the verdict when what it reads changed. Returns how many
    images' pairs were recomputed."""
    with index_store.write_transaction(db):
        refreshed = near_pairs.update(db)
        store(db, refreshed)
    return refreshed.images


def store(db: sqlite_utils.Database, held: near_pairs.Refreshed | None = None) -> bool:
    """Compute the default rule's verdict and write it, when what it reads changed since it was
    last written (verdict_stale, set by triggers); call inside the writer's transaction. held: what
    the refresh that just wrote every near pair returned. Returns whether it was written."""
    if db.execute("SELECT EXISTS (SELECT 1 FROM verdict_stale)").fetchone()[0] == 0:
        return False
    verdict = compute(db, RULES[DEFAULT_RULE](DEFAULT_MAX_DISTANCE), held)
    db.execute("DELETE FROM verdict_members")
    db.execute("DELETE FROM verdict_groups")
    db.execute("DELETE FROM label_conflicts")
    db.execute("DELETE FROM verdict_pairs")
    db.conn.executemany("INSERT INTO verdict_pairs VALUES (?, ?, ?, ?)", verdict.overrides)
    groups = [*verdict.groups, *verdict.scenes]
    db.conn.executemany(
        "INSERT INTO verdict_groups (id, kind, grade, size, max_distance) VALUES (?, ?, ?, ?, ?)",
        ((n, g.kind, g.grade, len(g.members), g.max_distance) for n, g in enumerate(groups, start=1)),
    )
    db.conn.executemany(
        "INSERT INTO verdict_members VALUES (?, ?)",
        ((n, m.id) for n, g in enumerate(groups, start=1) for m in g.members),
    )
    group_of = {m.id: n for n, g in enumerate(verdict.groups, start=1) for m in g.members}
    db.conn.executemany(
        "INSERT OR REPLACE INTO label_conflicts VALUES (?, ?, ?, ?, ?, ?)",
        ((c.a.id, c.b.id, group_of.get(c.a.id), c.grade, c.kind, c.detail) for c in verdict.conflicts),
    )
    db.execute(
        "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", [RULE_SETTING, json.dumps(verdict.rule.as_json())]
    )
    db.execute("DELETE FROM verdict_stale")
    return True


def stored_rule(db: sqlite_utils.Database) -> Rule | None:
    row = db.execute("SELECT value FROM settings WHERE key = ?", [RULE_SETTING]).fetchone()
    if row is None:
        return None
    data = json.loads(row[0])
    return RULES[data["name"]](int(data["max_distance"]))


def load(db: sqlite_utils.Database) -> Verdict:
    """The stored verdict (the default rule's, as the last write left it)."""
    rule = stored_rule(db) or RULES[DEFAULT_RULE](DEFAULT_MAX_DISTANCE)
    verdict = Verdict(rule, split_names(db), image_counts(db))
    rows = db.execute(
        """SELECT g.id, g.kind, g.grade, g.max_distance, i.id, i.split, i.path, i.dhash
           FROM verdict_groups g JOIN verdict_members m ON m.group_id = g.id JOIN images i ON i.id = m.image_id
           ORDER BY g.id, i.id"""
    ).fetchall()
    for _, items in itertools.groupby(rows, key=lambda r: r[0]):
        batch = list(items)
        group = Group(batch[0][1], batch[0][2], [Member(*r[4:]) for r in batch], batch[0][3] or 0)
        (verdict.scenes if group.kind == "scene" else verdict.groups).append(group)
    conflicts = db.execute(
        "SELECT c.a, c.b, c.grade, c.kind, c.detail FROM label_conflicts c JOIN images ia ON ia.id = c.a "
        "JOIN images ib ON ib.id = c.b ORDER BY ia.split, ia.path, ib.split, ib.path"
    ).fetchall()
    members = load_members(db, {x for c in conflicts for x in c[:2]})
    verdict.conflicts = [Conflict(members[a], members[b], g, k, d or "") for a, b, g, k, d in conflicts]
    return verdict


def verdict_for(db: sqlite_utils.Database, rule: Rule) -> Verdict:
    """The stored verdict when the rule is the stored one, otherwise computed now."""
    stored = stored_rule(db)
    return load(db) if stored == rule else compute(db, rule)
