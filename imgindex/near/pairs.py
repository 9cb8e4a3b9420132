"""The near_pairs table: every pair of images within CEILING dHash bits, or found by its window
hashes, with its kind.

Window hashes (imgindex.extract.measures.window_hashes): every image stores the difference hash of
its whole signature grid and of five windows of 95 % of each axis (four corners, centre). A copy
cropped by up to about 5 % moves the dHash by 10 to 20 bits, but its whole-grid hash lands within a
few bits of the source's window at the kept corner; pairs whose window distance (either way round)
is at most WINDOW_MAX are candidates too, graded like the others (window_pairs).

Triggers (schema/003_near.sql) put the dHash of every inserted, changed or removed image into
near_stale. ``refresh`` then recomputes the pairs of the images holding a stale value only: those
images are searched among themselves and against an in-memory index of all other hashes
(imgindex.near), and each candidate pair is classified with the second signals of the index:

- byte-identical: same sha256;  pixel-identical: same decoded pixels (pixel_hash);
- the second signals: the mean luma agrees (within MAX_BRIGHTNESS_DIFF); when either image
  carries little information (flat, or a dHash with almost every bit equal) the per-channel colour
  means must also agree (LOW_INFO_COLOUR); and the aligned signatures differ little somewhere
  (background <= imgindex.near.verify.MAX_BACKGROUND: unrelated photos differ everywhere), or,
  for an image without a signature, the 256-bit dHashes agree (distance_256 <= MAX_DISTANCE_256).
  A pair they contradict is ``different`` (kept, so SQL can show it);
- then the signatures say where the two differ (imgindex.near.verify): a lot in one place and little
  elsewhere is ``similar-scene`` (another photo of the same scene), anything else ``copy``. A pair
  with an image lacking a signature (a row of an older imgindex, until the next scan) is ``copy``.

Identical dHashes shared by more than MAX_GROUP images are linked as a star to the lowest id of
the group (see imgindex.near); removing that image makes the whole group stale, so it is re-linked.

Partner cap: an image keeps the images of at most MAX_PARTNERS other dHash values, its nearest by
(distance, dHash value); a pair is stored when an image recomputed in that refresh keeps it.
Identical copies do not use up the cap. In a dense cluster (frames of one static scene) an image
lists its nearest partners only, and the table holds about MAX_PARTNERS pairs per distinct dHash
instead of the cluster's size squared; the cluster stays connected through the nearest links.
Below the cap nothing changes: every pair is stored. An image that is not recomputed keeps its
stored pairs, so a clean image may list more when later images chose it among their nearest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlite_utils
from numpy.typing import NDArray

from .. import store
from . import search as near
from . import verify

CEILING = 8  # pairs stored up to this dHash distance; larger ones are computed on demand
MAX_GROUP = 64
MAX_PARTNERS = 64  # other dHash values whose images a recomputed image keeps (its nearest)
FLAT_STD = 5.0  # every channel's standard deviation below this: a flat image
FEW_BITS = 6  # a dHash with at most this many 1 bits (or 0 bits): almost no gradient information
MAX_DISTANCE_256 = 48  # of 256 bits: the check of pairs whose images have no signature yet
MAX_BRIGHTNESS_DIFF = 20.0
LOW_INFO_COLOUR = 4.0
WINDOWS = 6  # window hashes per image: the whole signature grid, then four corners and the centre
WINDOW_BYTES = WINDOWS * 8
WINDOW_MAX = 5  # a whole-grid hash this close to a window hash of another image: a candidate
NO_WINDOWS = 255  # window_distance of a pair with an image without window hashes
KINDS = ("byte-identical", "pixel-identical", "copy", "similar-scene", "different")
DUPLICATE_KINDS = KINDS[:3]

I64 = NDArray[np.int64]


@dataclass(frozen=True)
class CandidatePairs:
    """Image id pairs a < b with their 64-bit dHash distance and their window distance (the fewest
    bits between one image's whole-grid hash and a window hash of the other; NO_WINDOWS when an
    image has no window hashes)."""

    a: I64
    b: I64
    distance: NDArray[np.uint8]
    window_distance: NDArray[np.uint8]


@dataclass(frozen=True)
class Hashes:
    """The candidate hashes of every readable image, by id: the dHash and the window hashes
    ((n, 6): whole grid, then the windows; see imgindex.extract.measures.window_hashes)."""

    ids: I64
    dhash: near.U64
    windows: near.U64
    has_windows: NDArray[np.bool_]


@dataclass(frozen=True)
class Signals:
    """Second signals of some images, aligned with ``ids`` (ascending)."""

    ids: I64
    sha256: NDArray[np.object_]
    pixel_hash: NDArray[np.object_]
    dhash_256: NDArray[np.uint64]  # (n, 4)
    brightness: NDArray[np.float64]
    means: NDArray[np.float64]  # (n, 3)
    low_information: NDArray[np.bool_]
    signatures: NDArray[np.float32]  # (n, 32, 32)
    has_signature: NDArray[np.bool_]
    cells: NDArray[np.float32]  # verify.cells(signatures): (n, 256)
    sha_code: I64  # equal codes for equal sha256, -1 for none
    pixel_code: I64  # equal codes for equal pixel_hash, -1 for none

    def rows(self, image_ids: I64) -> I64:
        return np.searchsorted(self.ids, image_ids)


def load_hashes(db: sqlite_utils.Database) -> Hashes:
    """The dHashes and window hashes of every readable image, by id."""
    rows = db.execute(
        "SELECT id, dhash, window_hashes FROM images WHERE dhash IS NOT NULL AND error IS NULL ORDER BY id"
    ).fetchall()
    blobs = [r[2] if r[2] is not None and len(r[2]) == WINDOW_BYTES else None for r in rows]
    raw = b"".join(b if b is not None else bytes(WINDOW_BYTES) for b in blobs)
    return Hashes(
        ids=np.array([r[0] for r in rows], dtype=np.int64),
        dhash=near.hex_to_u64([r[1] for r in rows]),
        windows=np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, WINDOWS),
        has_windows=np.array([b is not None for b in blobs], dtype=bool),
    )


def candidate_pairs(
    hashes: Hashes, dirty: NDArray[np.bool_], max_distance: int, cap: int | None = None
) -> CandidatePairs:
    """Pairs having at least one dirty image, within max_distance dHash bits or WINDOW_MAX window
    bits (see window_pairs); with a cap, the dHash pairs are those a dirty image keeps among its
    nearest cap partners (see dhash_pairs; window pairs are not capped)."""
    a0, b0, _ = dhash_pairs(hashes.ids, hashes.dhash, dirty, max_distance, cap)
    a1, b1 = window_pairs(hashes, dirty)
    ra1, rb1 = np.searchsorted(hashes.ids, a1), np.searchsorted(hashes.ids, b1)
    # a window pair within max_distance is the dHash search's to keep or drop (under its cap)
    beyond = near.popcount(hashes.dhash[ra1] ^ hashes.dhash[rb1]) > max_distance
    a, b, _ = unique_pairs(np.concatenate((a0, a1[beyond])), np.concatenate((b0, b1[beyond])))
    ra, rb = np.searchsorted(hashes.ids, a), np.searchsorted(hashes.ids, b)
    distance = near.popcount(hashes.dhash[ra] ^ hashes.dhash[rb]).astype(np.uint8)
    return CandidatePairs(a, b, distance, window_distance(hashes, ra, rb))


def window_distance(hashes: Hashes, ra: I64, rb: I64) -> NDArray[np.uint8]:
    """Per pair of rows: the fewest bits between one image's whole-grid hash and a window hash of
    the other, either way round; NO_WINDOWS where an image has none."""
    w = hashes.windows
    ab = near.popcount(w[ra, :1] ^ w[rb, 1:]).min(axis=1, initial=64)
    ba = near.popcount(w[rb, :1] ^ w[ra, 1:]).min(axis=1, initial=64)
    out = np.minimum(ab, ba).astype(np.uint8)
    out[~(hashes.has_windows[ra] & hashes.has_windows[rb])] = NO_WINDOWS
    return out


def window_pairs(hashes: Hashes, dirty: NDArray[np.bool_]) -> tuple[I64, I64]:
    """Pairs (a < b, ids) with a dirty image where one image's whole-grid hash is within WINDOW_MAX
    bits of a window hash of the other: a copy cropped by a few per cent, which the dHash misses.
    Two searches: the dirty whole-grid hashes among every window hash, the dirty window hashes
    among every whole-grid hash. Not capped (the pairs kept are those beyond the dHash's
    distance, few even in a dense cluster), so each pair depends on its two images alone."""
    rows = np.flatnonzero(hashes.has_windows)
    dirty_rows = rows[dirty[rows]]
    if len(dirty_rows) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    whole, crops = hashes.windows[:, 0], hashes.windows[:, 1:]
    found = []
    index = near.NearIndex(crops[rows].ravel(), WINDOW_MAX, MAX_GROUP)
    q, i, _ = index.query(whole[dirty_rows], new_max_group=MAX_GROUP)
    found.append((dirty_rows[q], rows[i // (WINDOWS - 1)]))
    index = near.NearIndex(whole[rows], WINDOW_MAX, MAX_GROUP)
    q, i, _ = index.query(crops[dirty_rows].ravel(), new_max_group=MAX_GROUP)
    found.append((dirty_rows[q // (WINDOWS - 1)], rows[i]))
    x, y = (np.concatenate(v) for v in zip(*found))
    keep = x != y
    a, b = hashes.ids[x[keep]], hashes.ids[y[keep]]
    return np.minimum(a, b), np.maximum(a, b)


def dhash_pairs(
    ids: I64, hashes: near.U64, dirty: NDArray[np.bool_], max_distance: int, cap: int | None = None
) -> tuple[I64, I64, NDArray[np.uint8]]:
    """Pairs within max_distance having at least one dirty image: dirty among themselves, and
    dirty against an index of the clean ones; with a cap, only pairs that a dirty image keeps
    among its nearest cap partners with another hash (ties by id), plus every identical pair."""
    dirty_at, clean_at = np.flatnonzero(dirty), np.flatnonzero(~dirty)
    i, j, d = near.find_pairs(hashes[dirty_at], max_distance, MAX_GROUP, cap=cap)
    parts = [(ids[dirty_at[i]], ids[dirty_at[j]], d)]
    if len(clean_at) and len(dirty_at):
        index = near.NearIndex(hashes[clean_at], max_distance, MAX_GROUP)
        q, c, d = index.query(hashes[dirty_at], new_max_group=MAX_GROUP, cap=cap)
        parts.append((ids[dirty_at[q]], ids[clean_at[c]], d))
    a, b, d = (np.concatenate(x) for x in zip(*parts))
    a, b, d = np.minimum(a, b), np.maximum(a, b), d.astype(np.uint8)
    if cap is not None:
        keep = _nearest_of_dirty(a, b, d, ids, hashes, ids[dirty_at], cap)
        a, b, d = a[keep], b[keep], d[keep]
    return a, b, d


def _nearest_of_dirty(
    a: I64, b: I64, d: NDArray[np.uint8], ids: I64, hashes: near.U64, dirty_ids: I64, cap: int
) -> NDArray[np.bool_]:
    """Pairs kept by an end that is dirty: with the images of its nearest cap other dHashes, by
    (distance, dHash); identical dHashes (distance 0) are always kept (MAX_GROUP bounds them)."""
    keep = d == 0
    own, other, dist = np.concatenate((a, b)), np.concatenate((b, a)), np.concatenate((d, d))
    rows = np.flatnonzero(np.isin(own, dirty_ids) & (dist > 0))
    if len(rows) == 0:
        return keep
    _, rank = np.unique(hashes[np.searchsorted(ids, other[rows])], return_inverse=True)
    key = own[rows] * (int(rank.max()) + 1) + rank  # one entry per (image, partner dHash)
    _, first, which = np.unique(key, return_index=True, return_inverse=True)
    chosen = np.zeros(len(first), dtype=bool)
    ones = np.ones(len(first), dtype=np.int64)
    chosen[near.nearest_rows(own[rows][first], rank[first], dist[rows][first], ones, cap)] = True
    keep[rows[chosen[which.ravel()]] % len(a)] = True
    return keep


def _hex_words(hexes: list[str], words: int) -> NDArray[np.uint64]:
    raw = bytes.fromhex("".join(hexes))
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, words)


# flat (every channel's std below FLAT_STD), or a dHash with at most FEW_BITS ones or zeros;
# hamming() is registered on every connection imgindex opens
LOW_INFORMATION_SQL = (
    f"(max(i.std_r, i.std_g, i.std_b) < {FLAT_STD} OR "
    f"min(hamming(i.dhash, '{'0' * 16}'), 64 - hamming(i.dhash, '{'0' * 16}')) <= {FEW_BITS})"
)


def load_signals(db: sqlite_utils.Database, image_ids: I64) -> Signals:
    """Second signals of the given images (readable ones)."""
    db.execute("CREATE TEMP TABLE IF NOT EXISTS near_wanted (id INTEGER PRIMARY KEY)")
    db.execute("DELETE FROM temp.near_wanted")
    db.conn.executemany("INSERT OR IGNORE INTO temp.near_wanted VALUES (?)", ((int(x),) for x in image_ids))
    rows = db.execute(
        f"""SELECT i.id, i.sha256, i.pixel_hash, i.dhash_256, i.brightness, i.mean_r, i.mean_g, i.mean_b,
                   {LOW_INFORMATION_SQL}, i.signature
            FROM temp.near_wanted w JOIN images i ON i.id = w.id ORDER BY i.id"""
    ).fetchall()
    db.execute("DELETE FROM temp.near_wanted")
    cols = list(zip(*rows)) if rows else [()] * 10
    floats = np.array(cols[4:8], dtype=np.float64).reshape(4, -1)
    signatures, present = verify.decode(list(cols[9]))
    return Signals(
        ids=np.array(cols[0], dtype=np.int64),
        sha256=np.array(cols[1], dtype=object),
        pixel_hash=np.array(cols[2], dtype=object),
        dhash_256=_hex_words([h or "0" * 64 for h in cols[3]], 4),
        brightness=floats[0],
        means=floats[1:4].T,
        low_information=np.array(cols[8], dtype=bool),
        signatures=signatures,
        has_signature=present,
        cells=verify.cells(signatures),
        sha_code=_codes(cols[1]),
        pixel_code=_codes(cols[2]),
    )


def _codes(values: Any) -> I64:
    """An integer per value, equal for equal values; -1 for None."""
    present = np.array([v is not None for v in values], dtype=bool)
    codes = np.full(len(present), -1, dtype=np.int64)
    if present.any():
        _, codes[present] = np.unique(np.array([v for v in values if v is not None], dtype=object), return_inverse=True)
    return codes


def _same_code(codes: I64, ra: I64, rb: I64) -> NDArray[np.bool_]:
    return (codes[ra] == codes[rb]) & (codes[ra] >= 0)


def _compare_distinct(signals: Signals, ra: I64, rb: I64) -> verify.Comparison:
    """verify.compare_rows of the pairs, each pair of distinct pictures compared once (a picture
    copied many times, e.g. the same file linked into many folders, is one picture)."""
    first_of = np.unique(
        np.where(signals.pixel_code >= 0, signals.pixel_code, -1 - np.arange(len(signals.ids))),
        return_index=True,
        return_inverse=True,
    )
    canon = first_of[1][first_of[2]]
    ca, cb = canon[ra], canon[rb]
    first, second, back = unique_pairs(np.minimum(ca, cb), np.maximum(ca, cb))
    compared = verify.compare_rows(signals.signatures, signals.cells, first, second)
    return verify.Comparison(compared.change[back], compared.background[back])


def unique_pairs(a: I64, b: I64) -> tuple[I64, I64, I64]:
    """The distinct pairs (a[k], b[k]) of non-negative integers, sorted by a then b, and where
    each pair is among them: NumPy's unique over rows, on one integer per pair (several times
    faster for the hundreds of thousands of pairs of a dense cluster)."""
    base = int(max(a.max(initial=0), b.max(initial=0))) + 1
    if base > PAIR_KEY_LIMIT:  # a * base + b would not fit in 64 bits
        rows, back = np.unique(np.stack([a, b], axis=1).reshape(-1, 2), axis=0, return_inverse=True)
        return rows[:, 0], rows[:, 1], back.ravel()
    keys, back = np.unique(a.astype(np.int64) * base + b, return_inverse=True)
    return keys // base, keys % base, back.ravel()


PAIR_KEY_LIMIT = 1 << 31


@dataclass(frozen=True)
class Grades:
    """Per candidate pair: the 256-bit distance, the grade (KINDS) and the signature comparison
    (NaN where an image has no signature)."""

    distance_256: NDArray[np.int64]
    kind: NDArray[np.object_]
    change: NDArray[np.float64]
    background: NDArray[np.float64]


def classify(pairs: CandidatePairs, signals: Signals) -> Grades:
    """Grade every candidate pair (see the module docstring)."""
    ra, rb = signals.rows(pairs.a), signals.rows(pairs.b)
    d256 = near.popcount(signals.dhash_256[ra] ^ signals.dhash_256[rb]).sum(axis=1, dtype=np.int64)
    low = signals.low_information[ra] | signals.low_information[rb]
    colour = np.abs(signals.means[ra] - signals.means[rb]).max(axis=1, initial=0.0)
    tone = np.abs(signals.brightness[ra] - signals.brightness[rb]) <= MAX_BRIGHTNESS_DIFF
    tone &= ~low | (colour <= LOW_INFO_COLOUR)
    same_bytes = _same_code(signals.sha_code, ra, rb)
    same_pixels = _same_code(signals.pixel_code, ra, rb)
    signed = signals.has_signature[ra] & signals.has_signature[rb]
    change, background = np.full(len(ra), np.nan), np.full(len(ra), np.nan)
    todo = np.flatnonzero(tone & signed & ~same_pixels & ~same_bytes)  # identical pixels need no look
    distinct = _compare_distinct(signals, ra[todo], rb[todo])
    change[todo], background[todo] = distinct.change, distinct.background
    identical = np.flatnonzero((same_bytes | same_pixels) & signed)
    change[identical] = background[identical] = 0.0
    # with signatures, they decide whether the images agree at all (a light crop moves the 256-bit
    # dHash's gradients, not the aligned signatures); without, the 256-bit dHash does
    compared = verify.Comparison(change, background)
    agree = tone & np.where(signed, ~compared.unrelated, d256 <= MAX_DISTANCE_256)
    scene = compared.scene
    kind = np.select(
        [same_bytes, same_pixels, ~agree, scene], [KINDS[0], KINDS[1], KINDS[4], KINDS[3]], default=KINDS[2]
    )
    return Grades(d256, kind.astype(object), change, background)


Stored = tuple[CandidatePairs, Grades]  # pairs and grades as near_pairs holds them (stored_pairs)


@dataclass(frozen=True)
class Refreshed:
    """What a refresh did: how many images it recomputed and, when that was every image, the
    pairs it wrote, as the table now holds them, and the signals of their images (None otherwise)."""

    images: int
    stored: Stored | None = None
    signals: Signals | None = None


def refresh(db: sqlite_utils.Database) -> int:
    """Bring near_pairs and near_images up to date; returns how many images were recomputed."""
    return update(db).images


def update(db: sqlite_utils.Database) -> Refreshed:
    """refresh, also returning the pairs when every image was recomputed (so that a cold scan's
    verdict need not read back what was just written)."""
    stale = [r[0] for r in db.execute("SELECT dhash FROM near_stale")]
    if not stale:
        return Refreshed(0)
    hashes = load_hashes(db)
    ids = hashes.ids
    dirty, partners = neighbourhood(hashes.dhash, near.hex_to_u64(stale), CEILING)
    found = candidate_pairs(hashes, partners, CEILING, MAX_PARTNERS)
    pairs = _touching(found, ids[dirty])
    signals = load_signals(db, np.unique(np.concatenate([pairs.a, pairs.b])))
    grades = classify(pairs, signals)
    with store.write_transaction(db):  # a savepoint inside verdict.refresh's transaction
        db.execute("CREATE TEMP TABLE IF NOT EXISTS near_dirty (id INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM temp.near_dirty")
        db.conn.executemany("INSERT INTO temp.near_dirty VALUES (?)", ((x,) for x in ids[dirty].tolist()))
        db.execute("DELETE FROM near_pairs WHERE a IN temp.near_dirty OR b IN temp.near_dirty")
        db.execute("DELETE FROM near_images WHERE id IN temp.near_dirty")
        db.execute(
            f"INSERT INTO near_images SELECT i.id, {LOW_INFORMATION_SQL} FROM temp.near_dirty d JOIN images i ON i.id = d.id"
        )
        order = np.lexsort((pairs.b, pairs.a))  # in key order; stable: a pair listed twice keeps its last
        with store.index_built_after(db, "near_pairs_b", _bulk(db, len(order))):
            for start in range(0, len(order), READ_CHUNK):
                db.conn.executemany(
                    "INSERT OR REPLACE INTO near_pairs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    _rows(pairs, grades, order[start : start + READ_CHUNK]),
                )
        db.execute("DELETE FROM near_stale")
        db.execute("DELETE FROM temp.near_dirty")
        store.mark_verdict_stale(db)
        written = _as_stored(pairs, grades, order) if dirty.all() else None
        if written is not None and db.execute("SELECT COUNT(*) FROM near_pairs").fetchone()[0] != len(written[0].a):
            written = None
    return Refreshed(int(dirty.sum()), written, signals if written is not None else None)


BULK_PAIRS = 5000  # fewest pairs written at once whose index on b is built after them


def _bulk(db: sqlite_utils.Database, pairs: int) -> bool:
    """Whether a write of this many pairs builds the index on b after them, from the sorted keys:
    BULK_PAIRS at least, and as many as the table keeps (whose keys the build reads again). A
    small write (a watch's batch) does not count the table."""
    return pairs >= BULK_PAIRS and pairs >= db.execute("SELECT COUNT(*) FROM near_pairs").fetchone()[0]


def _as_stored(pairs: CandidatePairs, grades: Grades, order: I64) -> Stored:
    """The pairs as near_pairs holds them once written in this order: by (a, b), a pair listed
    twice as its last, comparisons rounded as stored, read back as stored_pairs does."""
    a, b = pairs.a[order], pairs.b[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    keep = order[last]
    codes = np.full(len(keep), len(KINDS) - 1, dtype=np.int8)
    kind = grades.kind[keep]
    for n, name in enumerate(KINDS):
        codes[kind == name] = n
    stored = CandidatePairs(pairs.a[keep], pairs.b[keep], pairs.distance[keep], pairs.window_distance[keep])
    rounded = Grades(
        grades.distance_256[keep],
        np.array(KINDS, dtype=object)[codes],
        np.round(grades.change[keep], 4),
        np.round(grades.background[keep], 4),
    )
    return stored, rounded


def neighbourhood(hashes: near.U64, stale: near.U64, max_distance: int) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(dirty, partners) masks over the images. Dirty: an image within max_distance of a stale
    value (added, changed or removed): which partners it keeps under the cap may have changed, so
    its pairs are recomputed. Partners: the dirty images and every image within max_distance of
    one, whose own choices decide, with the dirty image's, whether a pair is kept. Recomputing
    this neighbourhood, not only the changed images, makes an incremental refresh store exactly
    the pairs a clean one stores, whatever order the changes came in."""
    values, of_image = np.unique(hashes, return_inverse=True)
    of_image = of_image.ravel()
    stale = np.unique(stale)
    if len(values) == 0 or len(stale) == 0:
        none = np.zeros(len(hashes), dtype=bool)
        return none, none
    if np.isin(values, stale).all():  # a cold scan: everything is recomputed
        every = np.ones(len(hashes), dtype=bool)
        return every, every
    index = near.ValueIndex(values, max_distance, expected_queries=len(stale))
    dirty_values = _hit(index, stale)
    partner_values = dirty_values | _hit(index, values[dirty_values])
    return dirty_values[of_image], partner_values[of_image]


def _hit(index: near.ValueIndex, queries: near.U64) -> NDArray[np.bool_]:
    """Which indexed values lie within the index's distance of a query, queries taken in chunks
    sized to find about near.CAP_CHUNK_PAIRS pairs each (a dense cluster holds millions)."""
    hit = np.zeros(len(index.values), dtype=bool)
    lo, size = 0, 1024
    while lo < len(queries):
        part = queries[lo : lo + size]
        _, found, _ = index.query(part)
        hit[found] = True
        size = int(np.clip(near.CAP_CHUNK_PAIRS * len(part) / max(len(found), 1), 64, 1 << 20))
        lo += len(part)
    return hit


def _touching(pairs: CandidatePairs, image_ids: I64) -> CandidatePairs:
    """The pairs with an end among image_ids."""
    keep = np.isin(pairs.a, image_ids) | np.isin(pairs.b, image_ids)
    return CandidatePairs(pairs.a[keep], pairs.b[keep], pairs.distance[keep], pairs.window_distance[keep])


def _nullable(values: NDArray[np.float64]) -> list[float | None]:
    """Rounded to 4 decimals; NaN as None (NULL)."""
    rounded = np.round(values, 4).astype(object)
    rounded[np.isnan(values)] = None
    return list(rounded.tolist())


def _rows(pairs: CandidatePairs, grades: Grades, part: I64) -> Iterator[tuple[Any, ...]]:
    """near_pairs rows of some of the pairs; NaN comparisons stored as NULL."""
    change = _nullable(grades.change[part])
    background = _nullable(grades.background[part])
    window = pairs.window_distance[part].astype(object)
    window[window == NO_WINDOWS] = None
    columns = (pairs.a[part].tolist(), pairs.b[part].tolist(), pairs.distance[part].tolist())
    return zip(
        *columns, grades.distance_256[part].tolist(), grades.kind[part].tolist(), change, background, window.tolist()
    )


READ_CHUNK = 100_000  # near_pairs rows turned into arrays at a time


def _stored_pairs(db: sqlite_utils.Database, max_distance: int) -> Stored:
    """The stored pairs within max_distance, read in chunks straight into arrays (a dense cluster
    stores millions: as Python rows they would take gigabytes)."""
    cursor = db.execute(
        "SELECT a, b, distance, distance_256, kind, coalesce(change, 'nan'), coalesce(background, 'nan'), "
        f"coalesce(window_distance, {NO_WINDOWS}) FROM near_pairs WHERE distance <= ? OR window_distance <= ? "
        "ORDER BY a, b",
        [max_distance, WINDOW_MAX],
    )
    parts: list[list[NDArray[Any]]] = []
    code = {k: n for n, k in enumerate(KINDS)}
    while rows := cursor.fetchmany(READ_CHUNK):
        a, b, d, d256, kind, change, background, window = zip(*rows)
        parts.append(
            [
                np.array(a, np.int64),
                np.array(b, np.int64),
                np.array(d, np.uint8),
                np.array(d256, np.int64),
                np.array([code.get(k, len(KINDS) - 1) for k in kind], np.int8),
                np.array(change, np.float64),
                np.array(background, np.float64),
                np.array(window, np.uint8),
            ]
        )
    cols = [np.concatenate(c) for c in zip(*parts)] if parts else _no_pairs()
    pairs = CandidatePairs(cols[0], cols[1], cols[2], cols[7])
    return pairs, Grades(cols[3], np.array(KINDS, dtype=object)[cols[4]], cols[5], cols[6])


def _no_pairs() -> list[NDArray[Any]]:
    types = (np.int64, np.int64, np.uint8, np.int64, np.int8, np.float64, np.float64, np.uint8)
    return [np.zeros(0, t) for t in types]


def _within(stored: Stored, max_distance: int) -> Stored:
    """The stored pairs that stored_pairs reads for max_distance."""
    pairs, grades = stored
    wanted = (pairs.distance <= max_distance) | (pairs.window_distance <= WINDOW_MAX)
    if wanted.all():
        return stored
    k = np.flatnonzero(wanted)
    within = CandidatePairs(pairs.a[k], pairs.b[k], pairs.distance[k], pairs.window_distance[k])
    return within, Grades(grades.distance_256[k], grades.kind[k], grades.change[k], grades.background[k])


def all_pairs(db: sqlite_utils.Database, max_distance: int, stored: Stored | None = None) -> Stored:
    """Every pair within max_distance and its grades: from near_pairs up to CEILING (or from
    stored, what update returned, when given), computed above."""
    if max_distance <= CEILING and stored is not None:
        return _within(stored, max_distance)
    if max_distance <= CEILING:
        return _stored_pairs(db, max_distance)
    hashes = load_hashes(db)
    pairs = candidate_pairs(hashes, np.ones(len(hashes.ids), dtype=bool), max_distance, MAX_PARTNERS)
    return pairs, classify(pairs, load_signals(db, np.unique(np.concatenate([pairs.a, pairs.b]))))
