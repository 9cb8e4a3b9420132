"""Near-duplicate search over 64-bit hashes: all pairs within K bits without comparing all pairs.

Multi-index hashing. The 64 bits are cut into ``m`` contiguous bands with radii ``r_i`` such that
``sum(r_i) + m > K``: if two hashes differ in at most K bits, at least one band differs in at most
``r_i`` bits (generalised pigeonhole). Each band is indexed as a sorted array with a bucket table;
every hash probes its own band value flipped in up to ``r_i`` bits, and each candidate is verified
by a popcount of the full 64-bit XOR. A pair found in several bands is kept only in the first band
where it qualifies, so results need no de-duplication pass. The plan (m, widths, radii) minimises
an estimated cost of probes + candidates for the given sizes (see ``plan_bands``).

Identical hashes are handled as groups: the search runs over distinct values, then value pairs are
expanded to image pairs. A group of more than ``max_group`` identical hashes (a flat image's hash 0
shared by thousands of images) is not expanded to all its pairs: its members are linked as a star
to its first member, and only that member carries the group's pairs to other values. Connected
components are the same as with all pairs; the number of pairs stays linear in the group size.

Candidates are verified in chunks of ``CHUNK`` pairs, so memory follows the number of pairs
found, not of candidates; a dense set (thousands of distinct hashes within a few bits of each
other) yields that many pairs, unless a partner cap is given.

Partner cap (``cap``): each hash value keeps only its ``cap`` nearest other values, by (distance,
value), with all the images they link; a pair is kept when either end keeps it. Identical copies
do not use up the cap, so a photo copied many times keeps as many distinct neighbours as one copy. A capped self-join first runs the uncapped one and caps its pairs;
once it has found more than ``CAP_EXACT_PAIRS`` pairs it gives up and runs as queries of
every value against an index of all values, in chunks of query values sized to find about
``CAP_CHUNK_PAIRS`` pairs, each chunk capped before the next, so the full candidate set of a dense
cluster never exists at once. When
no hash has more than ``cap`` partner images with other values, the result is the uncapped one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from math import comb, log2

import numpy as np
from numpy.typing import NDArray

U64 = NDArray[np.uint64]
I64 = NDArray[np.int64]
U8 = NDArray[np.uint8]
Pairs = tuple[I64, I64, U8]

BITS = 64
CHUNK = 1 << 22  # candidate pairs verified per numpy pass
CAP_CHUNK_PAIRS = 1 << 20  # pairs found per chunk of query values in a capped search
CAP_EXACT_PAIRS = 1 << 22  # a capped self-join first tries the uncapped one up to this many pairs
MAX_TABLE_BITS = 22  # bands up to this width use a direct bucket table, wider ones a binary search
DEFAULT_MAX_GROUP = 32

# ---------------------------------------------------------------- hex, popcount


def hex_to_u64(hexes: Sequence[str]) -> U64:
    """Parse 16-hex-digit hashes (ImageHash string order) into uint64; the first digit is the top."""
    if len(hexes) == 0:
        return np.zeros(0, dtype=np.uint64)
    raw = bytes.fromhex("".join(hexes))
    if len(raw) != 8 * len(hexes):
        raise ValueError("every hash must have exactly 16 hex digits")
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64)


def u64_to_hex(values: U64) -> list[str]:
    """Inverse of hex_to_u64."""
    raw = np.asarray(values, dtype=np.uint64).astype(">u8").tobytes()
    text = raw.hex()
    return [text[k : k + 16] for k in range(0, len(text), 16)]


_BYTE_POPCOUNT = np.array([bin(k).count("1") for k in range(256)], dtype=np.uint8)


def popcount(values: NDArray[np.unsignedinteger]) -> U8:
    """Number of set bits of each element."""
    values = np.asarray(values)
    counts: U8
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        counts = np.bitwise_count(values).astype(np.uint8, copy=False)
    else:
        as_bytes = np.ascontiguousarray(values).view(np.uint8).reshape(values.shape + (-1,))
        counts = _BYTE_POPCOUNT[as_bytes].sum(axis=-1, dtype=np.uint8)
    return counts


def hamming(a: U64, b: U64) -> U8:
    """Element-wise Hamming distance of two uint64 arrays."""
    return popcount(np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64)))


# ---------------------------------------------------------------- plan


@dataclass(frozen=True)
class Band:
    low: int  # lowest bit of the band
    width: int
    radius: int  # band distance probed

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    def keys(self, values: U64) -> U64:
        return (values >> np.uint64(self.low)) & np.uint64(self.mask)


def _ball(width: int, radius: int) -> int:
    return sum(comb(width, k) for k in range(radius + 1))


def _bands(m: int, max_distance: int) -> tuple[Band, ...]:
    widths = [BITS // m + (1 if k < BITS % m else 0) for k in range(m)]
    total_radius = max(0, max_distance - m + 1)
    radii = [total_radius // m + (1 if k < total_radius % m else 0) for k in range(m)]
    bands, low = [], 0
    for width, radius in zip(widths, radii):  # widest bands get the largest radii
        bands.append(Band(low, width, radius))
        low += width
    return tuple(bands)


def _cost(bands: Sequence[Band], n_index: int, n_query: int, self_join: bool) -> float:
    """Estimated work in element operations, assuming uniformly random hashes (a probe mask also
    costs a fixed overhead of numpy calls)."""
    cost = 0.0
    pairs = n_query * n_index / (2 if self_join else 1)
    probers = n_query / (2 if self_join else 1)
    for band in bands:
        ball = _ball(band.width, band.radius)
        lookup = 6.0 if band.width <= MAX_TABLE_BITS else 3.0 * log2(max(n_index, 2))
        cost += probers * ball * lookup + 8.0 * pairs * ball / 2.0**band.width + 2e4 * ball
        cost += 15.0 * n_index + (2.0**band.width if band.width <= MAX_TABLE_BITS else 0.0)
    return cost


def plan_bands(n_index: int, n_query: int, max_distance: int, self_join: bool) -> tuple[Band, ...]:
    """The banding with the lowest estimated cost for these sizes."""
    if not 0 <= max_distance < BITS:
        raise ValueError(f"max_distance must be in 0..{BITS - 1}, got {max_distance}")
    options = [_bands(m, max_distance) for m in range(1, min(max_distance + 1, 16) + 1)]
    options = [o for o in options if all(_ball(b.width, b.radius) <= 1 << 20 for b in o)]
    return min(options, key=lambda o: _cost(o, n_index, n_query, self_join))


def _flip_masks(width: int, radius: int) -> list[int]:
    """All masks of 1..radius set bits within width bits."""
    masks: list[int] = []
    for k in range(1, radius + 1):
        masks.extend(sum(1 << b for b in bits) for bits in combinations(range(width), k))
    return masks


# ---------------------------------------------------------------- one band index


class _BandIndex:
    """Values sorted by one band's key, with a way to find each key's run of sorted positions."""

    def __init__(self, values: U64, band: Band, table: bool = True) -> None:
        self.band = band
        keys = band.keys(values)
        if band.width <= 32:
            keys = keys.astype(np.uint32)
        self.order: I64 = np.argsort(keys, kind="stable").astype(np.int64, copy=False)
        self.values: U64 = values[self.order]
        self.table = table and band.width <= MAX_TABLE_BITS
        self.keys: NDArray[np.integer] = keys[self.order]
        if self.table:  # direct bucket table: counts and starts per key value
            self.keys = self.keys.astype(np.int64)
            counts = np.bincount(self.keys, minlength=1 << band.width)
            self.counts = counts.astype(np.int32)
            self.starts = (np.cumsum(counts) - counts).astype(np.int64)

    def probe(self, keys: NDArray[np.integer]) -> tuple[I64, I64, I64]:
        """(which, start, count) for the probed keys that occur: keys[which] sits at start..+count."""
        if self.table:
            count = self.counts[keys]
            which = np.flatnonzero(count)
            return which, self.starts[keys[which]], count[which].astype(np.int64)
        start = np.searchsorted(self.keys, keys, side="left")
        count = np.searchsorted(self.keys, keys, side="right") - start
        which = np.flatnonzero(count)
        return which, start[which].astype(np.int64), count[which].astype(np.int64)


SHORT_RUNS = 4  # run positions verified level by level before falling back to a repeat expansion


def _verify(qid: I64, qval: U64, start: I64, count: I64, index: _BandIndex, max_distance: int) -> Iterator[Pairs]:
    """Compare each query with the sorted positions [start, start+count); yield those within K."""
    for level in range(SHORT_RUNS):  # most runs are short: the k-th element of every run at once
        if len(count) == 0:
            return
        pos = start + level
        dist = popcount(qval ^ index.values[pos])
        hit = np.flatnonzero(dist <= max_distance)
        if len(hit):
            yield qid[hit], index.order[pos[hit]], dist[hit]
        more = np.flatnonzero(count > level + 1)
        qid, qval, start, count = qid[more], qval[more], start[more], count[more]
    if len(count):
        yield from _verify_long(qid, qval, start + SHORT_RUNS, count - SHORT_RUNS, index, max_distance)


def _pieces(start: I64, count: I64, chunk: int) -> tuple[I64, I64, I64]:
    """Split runs longer than chunk; returns (item, start, count) with every count <= chunk."""
    n_pieces = np.maximum((count + chunk - 1) // chunk, 1)
    item = np.repeat(np.arange(len(count), dtype=np.int64), n_pieces)
    piece = np.arange(len(item), dtype=np.int64) - np.repeat(np.cumsum(n_pieces) - n_pieces, n_pieces)
    return item, start[item] + piece * chunk, np.minimum(chunk, count[item] - piece * chunk)


def _verify_long(qid: I64, qval: U64, start: I64, count: I64, index: _BandIndex, max_distance: int) -> Iterator[Pairs]:
    """_verify for long runs: expand (query, position) pairs in chunks of about CHUNK."""
    item, start, count = _pieces(start, count, CHUNK)
    cum = np.cumsum(count)
    bounds = np.searchsorted(cum, np.arange(CHUNK, int(cum[-1]) + CHUNK, CHUNK), side="right")
    lo = 0
    for hi in np.unique(np.append(bounds, len(count))):
        if hi <= lo:
            continue
        c, s, it = count[lo:hi], start[lo:hi], item[lo:hi]
        excl = np.cumsum(c) - c
        pos = np.arange(int(c.sum()), dtype=np.int64) + np.repeat(s - excl, c)
        dist = popcount(np.repeat(qval[it], c) ^ index.values[pos])
        hit = np.flatnonzero(dist <= max_distance)
        if len(hit):
            owner = it[np.searchsorted(excl, hit, side="right") - 1]
            yield qid[owner], index.order[pos[hit]], dist[hit]
        lo = hi


def _first_band(xor: U64, bands: Sequence[Band], upto: int) -> NDArray[np.bool_]:
    """True where no band before `upto` already qualifies the pair (so this band owns it)."""
    own = np.ones(len(xor), dtype=bool)
    for band in bands[:upto]:
        own &= popcount(band.keys(xor)) > band.radius
    return own


def _collect(parts: Iterable[Pairs]) -> Pairs:
    parts = list(parts)
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8)
    a, b, d = (np.concatenate(x) for x in zip(*parts))
    return a.astype(np.int64), b.astype(np.int64), d.astype(np.uint8)


# ---------------------------------------------------------------- value-level search


def _self_band(values: U64, bands: Sequence[Band], t: int, max_distance: int) -> Iterator[Pairs]:
    band = bands[t]
    index = _BandIndex(values, band)
    # same band key: each position against the later positions of its run
    which, start, count = index.probe(index.keys)
    later = start + count - which - 1
    more = np.flatnonzero(later)
    yield from _verify(
        index.order[which[more]], index.values[which[more]], which[more] + 1, later[more], index, max_distance
    )
    # flipped keys: a pair whose keys differ by mask is probed only from the side whose key has a
    # 0 at the mask's lowest bit, so each unordered pair is met once per mask
    by_low: dict[int, list[int]] = {}
    for mask in _flip_masks(band.width, band.radius):
        by_low.setdefault((mask & -mask).bit_length() - 1, []).append(mask)
    for low, masks in by_low.items():
        sel = np.flatnonzero((index.keys >> low) & 1 == 0)
        sel_keys, sel_ids, sel_vals = index.keys[sel], index.order[sel], index.values[sel]
        for mask in masks:
            which, start, count = index.probe(sel_keys ^ sel_keys.dtype.type(mask))
            yield from _verify(sel_ids[which], sel_vals[which], start, count, index, max_distance)


def _owned(parts: Iterable[Pairs], values_a: U64, values_b: U64, bands: Sequence[Band], t: int) -> Iterator[Pairs]:
    for a, b, d in parts:
        if not t:
            yield a, b, d
            continue
        own = _first_band(values_a[a] ^ values_b[b], bands, t)
        yield a[own], b[own], d[own]


def value_pairs(values: U64, max_distance: int, cap: int | None = None, weights: I64 | None = None) -> Pairs:
    """All (i, j, dist) with i < j and popcount(values[i] ^ values[j]) <= max_distance.

    Exact without a cap. Meant for distinct values (duplicates work but make buckets grow). With a
    cap, value i keeps its nearest partners until they hold cap images (weights[j] images per value,
    default 1) and a pair is kept if either end keeps it (see the module docstring)."""
    values = np.ascontiguousarray(values, dtype=np.uint64)
    if len(values) < 2:
        return _collect([])
    bands = plan_bands(len(values), len(values), max_distance, self_join=True)
    parts = (
        part
        for t in range(len(bands))
        for part in _owned(_self_band(values, bands, t, max_distance), values, values, bands, t)
    )
    if cap is None:
        a, b, d = _collect(parts)
        return np.minimum(a, b), np.maximum(a, b), d
    w = np.ones(len(values), dtype=np.int64) if weights is None else np.asarray(weights, dtype=np.int64)
    found = _collect_within(parts, CAP_EXACT_PAIRS)
    if found is not None:  # few pairs: all of them found at once, then capped from both ends
        a, b, d = found
        a, b = np.minimum(a, b), np.maximum(a, b)
        keep = kept_by_either(a, b, d, w[a], w[b], cap)
        return a[keep], b[keep], d[keep]
    index = ValueIndex(values, max_distance, expected_queries=len(values))
    q, i, d = index.query(values, cap=cap, weights=w, skip_same=True)
    a, b = np.minimum(q, i), np.maximum(q, i)
    _, first = np.unique(a * len(values) + b, return_index=True)
    return a[first], b[first], d[first]


def _collect_within(parts: Iterable[Pairs], budget: int) -> Pairs | None:
    """_collect, or None as soon as more than budget pairs have come."""
    kept, total = [], 0
    for part in parts:
        total += len(part[0])
        if total > budget:
            return None
        kept.append(part)
    return _collect(kept)


class ValueIndex:
    """Band indexes over a fixed array of values, kept to answer many queries."""

    def __init__(self, values: U64, max_distance: int, expected_queries: int = 1000) -> None:
        self.values = np.ascontiguousarray(values, dtype=np.uint64)
        self.max_distance = max_distance
        n_query = min(expected_queries, len(self.values))
        self.bands = plan_bands(len(self.values), n_query, max_distance, self_join=False)
        # a bucket table pays off when probes outnumber the table's entries; else binary search
        self.indexes = [
            _BandIndex(self.values, b, table=16 * n_query * _ball(b.width, b.radius) > 1 << b.width) for b in self.bands
        ]

    def query(
        self, query_values: U64, cap: int | None = None, weights: I64 | None = None, skip_same: bool = False
    ) -> Pairs:
        """All (q, i, dist) with popcount(query_values[q] ^ values[i]) <= max_distance. Exact.

        With a cap, each query keeps its nearest values, by (dist, i), while the values before
        them hold fewer than cap images (weights[i] each, default 1); queries run in chunks, each
        capped on its own. skip_same leaves out pairs of equal values."""
        query_values = np.ascontiguousarray(query_values, dtype=np.uint64)
        if len(query_values) == 0 or len(self.values) == 0:
            return _collect([])
        if cap is None and not skip_same:
            return self._query_all(query_values)
        w = np.ones(len(self.values), dtype=np.int64) if weights is None else np.asarray(weights, dtype=np.int64)
        parts, lo, size = [], 0, 1024
        while lo < len(query_values):
            hi = min(len(query_values), lo + size)
            q, i, d = self._query_all(query_values[lo:hi])
            found = len(q)
            if skip_same:
                keep = d > 0
                q, i, d = q[keep], i[keep], d[keep]
            if cap is not None:
                q, i, d = cap_nearest(q, i, d, w[i], cap)
            parts.append((q + lo, i, d))
            size = int(np.clip(CAP_CHUNK_PAIRS * (hi - lo) / max(found, 1), 64, 1 << 20))
            lo = hi
        return _collect(parts)

    def _query_all(self, query_values: U64) -> Pairs:
        parts = (
            part
            for t in range(len(self.bands))
            for part in _owned(self._band_parts(t, query_values), query_values, self.values, self.bands, t)
        )
        return _collect(parts)

    def _band_parts(self, t: int, query_values: U64) -> Iterator[Pairs]:
        band, index = self.bands[t], self.indexes[t]
        qid = np.arange(len(query_values), dtype=np.int64)
        qkeys = band.keys(query_values).astype(index.keys.dtype)
        for mask in [0, *_flip_masks(band.width, band.radius)]:
            which, start, count = index.probe(qkeys ^ qkeys.dtype.type(mask))
            yield from _verify(qid[which], query_values[which], start, count, index, self.max_distance)


# ---------------------------------------------------------------- groups of identical hashes


@dataclass(frozen=True)
class Groups:
    """Hashes grouped by value: values[g] is shared by members[offsets[g]:offsets[g+1]] (ascending)."""

    values: U64
    members: I64
    offsets: I64

    @classmethod
    def of(cls, hashes: U64) -> Groups:
        hashes = np.asarray(hashes, dtype=np.uint64).ravel()
        if len(hashes) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(np.zeros(0, dtype=np.uint64), empty, np.zeros(1, dtype=np.int64))
        members = np.argsort(hashes, kind="stable").astype(np.int64)
        ordered = hashes[members]
        first = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        offsets = np.append(first, len(hashes)).astype(np.int64)
        return cls(ordered[first], members, offsets)

    @property
    def sizes(self) -> I64:
        return np.diff(self.offsets)

    def linked(self, max_group: int) -> I64:
        """How many members of each group take part in pairs with other groups."""
        sizes = self.sizes
        return np.where(sizes > max_group, 1, sizes)


def _cross(ga: Groups, gb: Groups, u: I64, v: I64, d: U8, cap_a: int, cap_b: int) -> Pairs:
    """Expand value pairs (group u of ga, group v of gb) into member pairs."""
    mu, mv = ga.linked(cap_a)[u], gb.linked(cap_b)[v]
    size = mu * mv
    k = np.arange(int(size.sum()), dtype=np.int64) - np.repeat(np.cumsum(size) - size, size)
    pair = np.repeat(np.arange(len(u), dtype=np.int64), size)
    a = ga.members[ga.offsets[u][pair] + k // mv[pair]]
    b = gb.members[gb.offsets[v][pair] + k % mv[pair]]
    return a, b, d[pair]


def _within(groups: Groups, max_group: int) -> Pairs:
    """Distance-0 pairs inside each group: all pairs, or a star to the first member for big groups."""
    sizes = groups.sizes
    n = np.repeat(sizes, sizes)
    rank = np.arange(len(groups.members), dtype=np.int64) - np.repeat(groups.offsets[:-1], sizes)
    big = n > max_group
    # small groups: each member with the later members; big groups: the first member with all others
    n_later = np.where(big, np.where(rank == 0, n - 1, 0), n - rank - 1)
    total = int(n_later.sum())
    owner = np.repeat(np.arange(len(rank), dtype=np.int64), n_later)
    k = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n_later) - n_later, n_later)
    return groups.members[owner], groups.members[owner + 1 + k], np.zeros(total, dtype=np.uint8)


def cap_nearest(q: I64, i: I64, d: U8, weight: I64, cap: int) -> Pairs:
    """Of the pairs (q, i, d), each q's nearest by (d, i) while those before hold fewer than cap.

    weight[k] is what pair k counts for (the images its partner stands for)."""
    rows = nearest_rows(q, i, d, weight, cap)
    return q[rows], i[rows], d[rows]


def nearest_rows(q: I64, i: I64, d: U8, weight: I64, cap: int) -> I64:
    """Positions of the pairs cap_nearest keeps, ascending.

    Per query, the weight at each distance decides most pairs without sorting: a distance whose
    pairs all fit under the cap is kept whole, one past it dropped; only the pairs at the distance
    where the cap falls are sorted by i."""
    if len(q) == 0:
        return np.zeros(0, dtype=np.int64)
    w = np.asarray(weight, dtype=np.int64)
    slot = q - q.min()
    if slot.max() > 4 * len(q) + 1024:
        _, slot = np.unique(q, return_inverse=True)
    width = int(d.max()) + 1
    cell = slot * width + d
    at = np.bincount(cell, weights=w, minlength=(int(slot.max()) + 1) * width).reshape(-1, width)
    below = (np.cumsum(at, axis=1) - at).ravel()[cell]  # weight of the query's nearer distances
    whole = below + at.ravel()[cell] <= cap
    edge = np.flatnonzero(~whole & (below < cap))
    order = edge[np.lexsort((i[edge], q[edge]))]
    we = w[order]
    before = np.cumsum(we) - we
    qs = q[order]
    start = np.flatnonzero(np.concatenate(([True], qs[1:] != qs[:-1]))) if len(qs) else np.zeros(0, np.int64)
    run = np.repeat(start, np.diff(np.append(start, len(qs))))
    keep_edge = order[below[order] + before - before[run] < cap]
    return np.sort(np.concatenate((np.flatnonzero(whole), keep_edge)))


def kept_by_either(
    a: I64, b: I64, d: U8, weight_a: I64, weight_b: I64, cap: int, chooses: NDArray[np.bool_] | None = None
) -> I64:
    """Positions of the undirected pairs (a, b, d) that one end keeps among its nearest (cap_nearest
    over all pairs of that end); with chooses (per pair and end: [a chooses, b chooses]), only the
    ends marked True choose."""
    n = len(a)
    own, other = np.concatenate((a, b)), np.concatenate((b, a))
    rows = np.arange(2 * n, dtype=np.int64)
    if chooses is not None:
        rows = rows[np.concatenate((chooses[0], chooses[1]))]
    kept = rows[
        nearest_rows(
            own[rows], other[rows], np.concatenate((d, d))[rows], np.concatenate((weight_b, weight_a))[rows], cap
        )
    ]
    return np.unique(kept % n) if n else kept


def _ordered(a: I64, b: I64, d: U8) -> Pairs:
    i, j = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


def find_pairs(hashes: U64, max_distance: int, max_group: int = DEFAULT_MAX_GROUP, cap: int | None = None) -> Pairs:
    """All pairs (i, j, dist), i < j, of hashes within max_distance bits, sorted by (i, j).

    Groups of more than max_group identical hashes are linked as a star to their first index and
    pair with other hashes only through it; with a cap, each hash keeps only its nearest partners
    with other values (see the module docstring)."""
    groups = Groups.of(hashes)
    u, v, d = value_pairs(groups.values, max_distance, cap)
    a1, b1, d1 = _cross(groups, groups, u, v, d, max_group, max_group)
    a0, b0, d0 = _within(groups, max_group)
    return _ordered(np.concatenate((a0, a1)), np.concatenate((b0, b1)), np.concatenate((d0, d1)))


class NearIndex:
    """An index of hashes (identical ones grouped) answering which indexed hashes are near new ones.

    Build once (about 0.5 s for a million hashes), then query() many times."""

    def __init__(self, hashes: U64, max_distance: int, max_group: int = DEFAULT_MAX_GROUP) -> None:
        self.groups = Groups.of(hashes)
        self.max_group = max_group
        self.values = ValueIndex(self.groups.values, max_distance)

    def query(self, new_hashes: U64, new_max_group: int | None = None, cap: int | None = None) -> Pairs:
        """Pairs (q, i, dist) of new_hashes[q] and indexed hashes[i] within max_distance, sorted.

        A group of more than max_group identical indexed hashes answers through its first index;
        so do groups of more than new_max_group identical new hashes (default: no limit). With a
        cap, each new hash keeps only its nearest indexed partners (see the module docstring); an
        identical indexed hash is always kept."""
        new_groups = Groups.of(new_hashes)
        if cap is None:
            qv, iv, d = self.values.query(new_groups.values)
        else:
            qv, iv, d = self.values.query(new_groups.values, cap=cap)
        new_cap = len(new_hashes) if new_max_group is None else new_max_group
        q, i, d = _cross(new_groups, self.groups, qv, iv, d, new_cap, self.max_group)
        order = np.lexsort((i, q))
        return q[order], i[order], d[order]


def query(index_hashes: U64, new_hashes: U64, max_distance: int, max_group: int = DEFAULT_MAX_GROUP) -> Pairs:
    """NearIndex(index_hashes, max_distance, max_group).query(new_hashes): an index built and used once.

    Pairs among the new hashes themselves come from find_pairs(new_hashes)."""
    return NearIndex(index_hashes, max_distance, max_group).query(new_hashes)


def brute_force_pairs(hashes: U64, max_distance: int) -> Pairs:
    """All pairs within max_distance by comparing every pair (reference for tests and benchmarks)."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    block = max(1, (1 << 22) // max(len(hashes), 1))
    parts = []
    for lo in range(0, len(hashes), block):
        rows = hashes[lo : lo + block]
        dist = popcount(rows[:, None] ^ hashes[None, lo:])
        r, c = np.nonzero(dist <= max_distance)
        keep = c > r
        parts.append((r[keep] + lo, c[keep] + lo, dist[r[keep], c[keep]]))
    return _ordered(*_collect(parts))
