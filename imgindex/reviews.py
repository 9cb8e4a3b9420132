"""A reviewer's verdicts: "not a duplicate" or "duplicate" for two or more files, "ignore" for a
file. They live in the index (table reviews), name each file by split, path and content hash, and
apply while the files are unchanged: a re-scan keeps them, an edited file drops them. The stored
verdict applies them (imgindex.near.verdict), so that check, export, the report and the served
pages all follow.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlite_utils

from . import store

VERDICTS = ("not-duplicate", "duplicate", "ignore")


class ReviewError(ValueError):
    """A review that cannot be recorded; the message says which file and what to give instead."""


@dataclass(frozen=True)
class Reviewed:
    """The reviews that apply now, as image ids: pairs a < b, and ignored images."""

    not_duplicate: frozenset[tuple[int, int]] = frozenset()
    duplicate: frozenset[tuple[int, int]] = frozenset()
    ignored: frozenset[int] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.not_duplicate or self.duplicate or self.ignored)


@dataclass
class File:
    id: int
    split: str
    path: str
    rel_path: str
    sha256: str | None


def resolve(db: sqlite_utils.Database, spec: str) -> File:
    """The indexed file a spec names: SPLIT:PATH (PATH relative to the split's folder, as `imgindex
    check` prints it, or absolute), or a path held by one split only."""
    split, sep, rest = spec.partition(":")
    candidates = []
    if sep and split and not os.path.isabs(spec):
        candidates = _files(db, "split = ? AND (rel_path = ? OR path = ?)", [split, rest, rest])
    if not candidates:
        absolute = os.path.abspath(spec)
        candidates = _files(db, "path = ? OR rel_path = ?", [absolute, spec])
    if not candidates:
        raise ReviewError(f"'{spec}' is not an indexed image: give SPLIT:PATH as `imgindex check` prints it")
    if len(candidates) > 1:
        splits = ", ".join(sorted({c.split for c in candidates}))
        raise ReviewError(f"'{spec}' is in several splits ({splits}): give SPLIT:PATH")
    return candidates[0]


def _files(db: sqlite_utils.Database, where: str, params: list[str]) -> list[File]:
    rows = db.execute(f"SELECT id, split, path, rel_path, sha256 FROM images WHERE {where}", params).fetchall()
    return [File(*r) for r in rows]


def record(db: sqlite_utils.Database, verdict: str, files: list[File], note: str | None, source: str) -> list[int]:
    """Store a review (in the caller's transaction): every pair of the files for not-duplicate and
    duplicate, each file for ignore. Returns the new rows' ids."""
    if verdict not in VERDICTS:
        raise ReviewError(f"the verdict is one of {', '.join(VERDICTS)}, not '{verdict}'")
    if verdict != "ignore" and len({f.id for f in files}) < 2:
        raise ReviewError(f"'{verdict}' is said of two or more files (a pair or a group)")
    if verdict == "ignore" and not files:
        raise ReviewError("'ignore' is said of one or more files")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = (
        [(f, None) for f in files]
        if verdict == "ignore"
        else list(itertools.combinations(sorted({f.id: f for f in files}.values(), key=lambda f: f.id), 2))
    )
    ids = []
    for a, b in rows:
        _forget(db, verdict, a, b)
        cur = db.conn.execute(
            "INSERT INTO reviews (verdict, split_a, path_a, sha_a, split_b, path_b, sha_b, note, source, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                verdict,
                a.split,
                a.path,
                a.sha256,
                *((b and (b.split, b.path, b.sha256)) or (None, None, None)),
                note,
                source,
                now,
            ],
        )
        ids.append(int(cur.lastrowid or 0))
    store.mark_verdict_stale(db)
    return ids


def _forget(db: sqlite_utils.Database, verdict: str, a: File, b: File | None) -> None:
    """An earlier review of the same pair (either verdict) or file is replaced."""
    if b is None:
        db.conn.execute(
            "DELETE FROM reviews WHERE verdict = 'ignore' AND split_a = ? AND path_a = ?", [a.split, a.path]
        )
        return
    for x, y in ((a, b), (b, a)):
        db.conn.execute(
            "DELETE FROM reviews WHERE verdict != 'ignore' AND split_a = ? AND path_a = ? AND split_b = ? AND path_b = ?",
            [x.split, x.path, y.split, y.path],
        )


def undo(db: sqlite_utils.Database, review_id: int) -> bool:
    gone = db.conn.execute("DELETE FROM reviews WHERE id = ?", [review_id]).rowcount
    if gone:
        store.mark_verdict_stale(db)
    return bool(gone)


@dataclass
class Listed:
    id: int
    verdict: str
    files: list[str]
    applies: bool  # the files are indexed with the content they had when reviewed
    note: str | None
    created_at: str
    source: str | None = None
    why_not: str = field(default="")


def listed(db: sqlite_utils.Database) -> list[Listed]:
    rows = db.execute(
        """SELECT r.id, r.verdict, r.split_a, coalesce(ia.rel_path, r.path_a), r.split_b, coalesce(ib.rel_path, r.path_b),
                  ia.sha256 IS r.sha_a AND ia.id IS NOT NULL, r.split_b IS NULL OR (ib.sha256 IS r.sha_b AND ib.id IS NOT NULL),
                  r.note, r.created_at, r.source
           FROM reviews r LEFT JOIN images ia ON ia.split = r.split_a AND ia.path = r.path_a
           LEFT JOIN images ib ON ib.split = r.split_b AND ib.path = r.path_b ORDER BY r.id"""
    ).fetchall()
    out = []
    for rid, verdict, sa, pa, sb, pb, ok_a, ok_b, note, created, source in rows:
        files = [f"{sa}:{pa}"] + ([f"{sb}:{pb}"] if sb is not None else [])
        why = "" if ok_a and ok_b else "a file changed or left the index since the review"
        out.append(Listed(rid, verdict, files, bool(ok_a and ok_b), note, created, source, why))
    return out


def applied(db: sqlite_utils.Database) -> Reviewed:
    """The reviews whose files are indexed unchanged, as image ids."""
    rows = db.execute(
        """SELECT r.verdict, ia.id, ib.id FROM reviews r
           JOIN images ia ON ia.split = r.split_a AND ia.path = r.path_a AND ia.sha256 IS r.sha_a
           LEFT JOIN images ib ON ib.split = r.split_b AND ib.path = r.path_b AND ib.sha256 IS r.sha_b
           WHERE r.split_b IS NULL OR ib.id IS NOT NULL"""
    ).fetchall()
    pairs: dict[str, set[tuple[int, int]]] = {"not-duplicate": set(), "duplicate": set()}
    ignored = set()
    for verdict, a, b in rows:
        if verdict == "ignore":
            ignored.add(a)
        elif verdict in pairs and a != b:
            pairs[verdict].add((min(a, b), max(a, b)))
    return Reviewed(frozenset(pairs["not-duplicate"]), frozenset(pairs["duplicate"]), frozenset(ignored))


def ignored_places(db: sqlite_utils.Database) -> set[tuple[str, str]]:
    """(split, path relative to the split folder) of the ignored files that apply."""
    ids = applied(db).ignored
    if not ids:
        return set()
    marks = ",".join("?" * len(ids))
    return {(s, r) for s, r in db.execute(f"SELECT split, rel_path FROM images WHERE id IN ({marks})", list(ids))}


def ids_of(pairs: Iterable[tuple[int, int]]) -> set[int]:
    return {x for pair in pairs for x in pair}
