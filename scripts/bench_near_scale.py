"""Near-duplicate search at scale: all pairs within K bits among a million 64-bit hashes.

Builds N random hashes, plants near copies (0..K flipped bits) and a degenerate group (hash 0
shared by many images, plus hashes 1 bit away from it), then times
  - imgindex.near.find_pairs over all N hashes,
  - imgindex.near.query of ADDS new hashes (half of them near copies) against the N,
and checks: every planted pair is found, every reported distance is the true one, find_pairs on a
random subsample equals a brute-force numpy comparison of all its pairs, and the query equals a
brute-force comparison of every new hash with every indexed one. Speed is given as a ratio against
the brute-force baseline measured here (its per-pair cost extrapolated to N(N-1)/2 pairs).

    .venv/bin/python scripts/bench_near_scale.py            # 1,000,000 hashes, K=8
    .venv/bin/python scripts/bench_near_scale.py --n 200000 --k 12
    .venv/bin/python scripts/bench_near_scale.py --db-rows 200000   # also: near_pairs upkeep in SQLite
    .venv/bin/python scripts/bench_near_scale.py --dense     # dense clusters, partner cap on and off

The main run also checks that the partner cap (near_index.MAX_PARTNERS) leaves the connected
components of the pairs unchanged. --dense times find_pairs with and without the cap, each in its
own child process (peak RSS per case), on 30,000 distinct hashes confined to 21 bits and on 5,000
near-identical hashes (at most 3 bits from one hash), and checks that each stays one component.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from imgindex import store
from imgindex.near import pairs as near_index
from imgindex.near import search as near
from imgindex.near.verdict import components


def flip_bits(rng: np.random.Generator, values: np.ndarray, max_flips: int) -> tuple[np.ndarray, np.ndarray]:
    """Copies of values with 0..max_flips distinct bits flipped; returns (copies, flips)."""
    flips = rng.integers(0, max_flips + 1, size=len(values))
    out = values.copy()
    for k, n in enumerate(flips):
        for bit in rng.choice(64, size=n, replace=False):
            out[k] ^= np.uint64(1) << np.uint64(bit)
    return out, flips


def build(args: argparse.Namespace, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """N hashes; returns (hashes, planted source indices, planted copy indices)."""
    hashes = rng.integers(0, 2**64, size=args.n, dtype=np.uint64)
    degenerate = rng.choice(args.n, size=args.degenerate, replace=False)
    hashes[degenerate] = 0
    hashes[degenerate[: args.degenerate // 10]] = np.uint64(1) << rng.integers(0, 64, args.degenerate // 10).astype(
        np.uint64
    )
    free = np.setdiff1d(np.arange(args.n), degenerate)
    chosen = rng.choice(free, size=2 * args.planted, replace=False)
    src, dst = chosen[: args.planted], chosen[args.planted :]
    hashes[dst], _ = flip_bits(rng, hashes[src], args.k)
    return hashes, src, dst


def pair_set(i: np.ndarray, j: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(i.tolist(), j.tolist()))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fake_rows(rng: np.random.Generator, lo: int, hi: int) -> Iterator[tuple[object, ...]]:
    """Readable image rows with random hashes (nothing else matters to near_pairs)."""
    dhash = near.u64_to_hex(rng.integers(0, 2**64, size=hi - lo, dtype=np.uint64))
    fine = near.u64_to_hex(rng.integers(0, 2**64, size=4 * (hi - lo), dtype=np.uint64))
    for k in range(hi - lo):
        n = lo + k
        yield (f"/x/{n}.jpg", f"{n}.jpg", f"s{n}", dhash[k], "".join(fine[4 * k : 4 * k + 4]), f"p{n}")


def bench_db(rows: int, adds: int, rng: np.random.Generator) -> None:
    """near_pairs upkeep in a real SQLite index: first build, then a scan adding `adds` images."""
    sql = (
        "INSERT INTO images (split, path, rel_path, size, mtime_ns, sha256, dhash, dhash_256, pixel_hash,"
        " brightness, mean_r, mean_g, mean_b, std_r, std_g, std_b)"
        " VALUES ('s', ?, ?, 1, 1, ?, ?, ?, ?, 100, 100, 100, 100, 50, 50, 50)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        db = store.open_db(Path(tmp) / "index.db")
        with db.atomic():
            db.conn.executemany(sql, fake_rows(rng, 0, rows))
        t0 = time.perf_counter()
        near_index.refresh(db)
        t_first = time.perf_counter() - t0
        with db.atomic():
            db.conn.executemany(sql, fake_rows(rng, rows, rows + adds))
        t0 = time.perf_counter()
        recomputed = near_index.refresh(db)
        t_add = time.perf_counter() - t0
        db.close()
    print(
        f"SQLite index of {rows:,} images: first near_pairs build {t_first:.2f} s; "
        f"after adding {adds:,}: {recomputed:,} images recomputed in {t_add:.2f} s"
    )


def component_sets(i: np.ndarray, j: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(c) for c in components(i.astype(np.int64), j.astype(np.int64))}


def confined(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    """n distinct hashes differing from one random hash only in `bits` chosen bit positions."""
    base = rng.integers(0, 2**64, dtype=np.uint64)
    positions = rng.choice(64, size=bits, replace=False).astype(np.uint64)
    codes = rng.choice(1 << bits, size=n, replace=False).astype(np.uint64)
    spread = np.zeros(n, dtype=np.uint64)
    for k, pos in enumerate(positions):
        spread |= ((codes >> np.uint64(k)) & np.uint64(1)) << pos
    return base ^ spread


def near_identical(rng: np.random.Generator, n: int, max_flips: int) -> np.ndarray:
    """n distinct hashes within max_flips bits of one random hash (frames of one static scene)."""
    base = rng.integers(0, 2**64, size=1, dtype=np.uint64)
    found: set[int] = set()
    while len(found) < n:
        copies, _ = flip_bits(rng, np.repeat(base, n), max_flips)
        found.update(copies.tolist())
    return np.array(sorted(found)[:n], dtype=np.uint64)


def dense_case(hashes: np.ndarray, k: int, cap: int | None, out: multiprocessing.Queue[str]) -> None:
    """Child process: find_pairs on a dense set; reports time, pairs, degrees, components, peak RSS."""
    t0 = time.perf_counter()
    i, j, _ = near.find_pairs(hashes, k, cap=cap)
    seconds, peak = time.perf_counter() - t0, rss_mb()  # before the checks below add their own
    degree = np.bincount(np.concatenate([i, j]), minlength=len(hashes))
    parts = len(components(i.astype(np.int64), j.astype(np.int64)))
    out.put(
        f"{seconds:6.2f} s, {len(i):>11,} pairs, partners per hash {degree.min()}-{degree.max()}, "
        f"{parts} component(s), peak RSS {peak:,.0f} MB"
    )


def bench_dense(rng: np.random.Generator, k: int) -> None:
    ctx = multiprocessing.get_context("fork")
    cases = [
        ("30,000 distinct hashes in 21 bits", confined(rng, 30_000, 21)),
        ("5,000 hashes within 3 bits of one", near_identical(rng, 5_000, 3)),
    ]
    for name, hashes in cases:
        for cap in (near_index.MAX_PARTNERS, None):
            queue: multiprocessing.Queue[str] = ctx.Queue()
            child = ctx.Process(target=dense_case, args=(hashes, k, cap, queue))
            child.start()
            line = queue.get()
            child.join()
            label = f"cap {cap}" if cap else "no cap"
            print(f"{name}, K={k}, {label:>6}: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=8, help="max Hamming distance")
    parser.add_argument("--planted", type=int, default=10_000, help="planted near pairs")
    parser.add_argument("--degenerate", type=int, default=5_000, help="images with hash 0 or 1 bit from it")
    parser.add_argument("--adds", type=int, default=1_000, help="new hashes queried against the index")
    parser.add_argument("--sample", type=int, default=20_000, help="subsample checked by brute force")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db-rows", type=int, default=0, help="also time near_pairs upkeep in SQLite")
    parser.add_argument("--dense", action="store_true", help="only the dense-cluster cases")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    if args.dense:
        bench_dense(rng, args.k)
        return

    hashes, src, dst = build(args, rng)
    print(f"{args.n:,} hashes, K={args.k}, {args.planted:,} planted pairs, {args.degenerate:,} degenerate")
    print("plan (self-join):", near.plan_bands(len(np.unique(hashes)), len(np.unique(hashes)), args.k, True))

    t0 = time.perf_counter()
    i, j, d = near.find_pairs(hashes, args.k)
    t_find = time.perf_counter() - t0
    found = pair_set(i, j)
    planted = pair_set(np.minimum(src, dst), np.maximum(src, dst))
    recall = len(planted & found) / len(planted)
    assert np.array_equal(d, near.hamming(hashes[i], hashes[j])) and (d <= args.k).all()
    print(f"find_pairs: {t_find:.2f} s, {len(i):,} pairs, planted recall {100 * recall:.2f} %")
    t0 = time.perf_counter()
    ci, cj, _ = near.find_pairs(hashes, args.k, cap=near_index.MAX_PARTNERS)
    t_capped = time.perf_counter() - t0
    same = component_sets(ci, cj) == component_sets(i, j)
    assert same, "the partner cap changed the connected components"
    print(
        f"find_pairs, cap {near_index.MAX_PARTNERS}: {t_capped:.2f} s, {len(ci):,} pairs, "
        f"planted recall {100 * len(planted & pair_set(ci, cj)) / len(planted):.2f} %, "
        f"connected components equal to the uncapped ones"
    )

    new_src = rng.choice(np.flatnonzero(hashes != 0), size=args.adds // 2, replace=False)
    near_new, _ = flip_bits(rng, hashes[new_src], args.k)
    new = np.concatenate([near_new, rng.integers(0, 2**64, size=args.adds - len(near_new), dtype=np.uint64)])
    t0 = time.perf_counter()
    index = near.NearIndex(hashes, args.k)
    t_build = time.perf_counter() - t0
    q, qi, _ = index.query(new)
    t_query = time.perf_counter() - t0 - t_build
    q_recall = len(pair_set(np.arange(len(new_src)), new_src) & pair_set(q, qi)) / len(new_src)
    print(
        f"add {args.adds:,} new to {args.n:,}: {t_build + t_query:.2f} s = index build {t_build:.2f} s "
        f"+ query {t_query:.3f} s; {len(q):,} pairs, planted recall {100 * q_recall:.2f} %"
    )
    print(f"peak RSS after search: {rss_mb():.0f} MB")

    # brute force: the query, every new hash against every indexed one
    t0 = time.perf_counter()
    ref = [np.flatnonzero(near.hamming(hashes, h) <= args.k) for h in new]
    t_brute_query = time.perf_counter() - t0
    expected = {(k, int(x)) for k, hits in enumerate(ref) for x in hits}
    # query links a group of more than DEFAULT_MAX_GROUP identical hashes through its first member
    zeros = np.flatnonzero(hashes == 0)
    expected = {(k, x) for k, x in expected if hashes[x] != 0 or x == zeros[0]}
    assert pair_set(q, qi) == expected, "query differs from brute force"
    print(
        f"brute-force query: {t_brute_query:.2f} s -> build+query {t_brute_query / (t_build + t_query):.1f}x, "
        f"query on a kept index {t_brute_query / t_query:.0f}x faster; equal to brute force"
    )

    # brute force: all pairs of a subsample (planted copies included), same process
    sample = np.unique(
        np.concatenate(
            [src[: args.sample // 4], dst[: args.sample // 4], rng.choice(args.n, size=args.sample // 2, replace=False)]
        )
    )
    sub = hashes[sample]
    t0 = time.perf_counter()
    b = near.brute_force_pairs(sub, args.k)
    t_brute = time.perf_counter() - t0
    m = near.find_pairs(sub, args.k, max_group=len(sub))
    assert all(np.array_equal(x, y) for x, y in zip(b, m)), "find_pairs differs from brute force"
    n_sub = len(sub)
    per_pair = t_brute / (n_sub * (n_sub - 1) / 2)
    t_brute_full = per_pair * args.n * (args.n - 1) / 2
    print(
        f"brute force on {n_sub:,} sampled hashes: {t_brute:.2f} s ({per_pair * 1e9:.2f} ns/pair), "
        f"{len(b[0]):,} pairs, equal to find_pairs"
    )
    print(
        f"brute force extrapolated to {args.n:,}: {t_brute_full:.0f} s -> find_pairs is "
        f"{t_brute_full / t_find:.0f}x faster"
    )
    print(f"peak RSS overall: {rss_mb():.0f} MB")
    if args.db_rows:
        bench_db(args.db_rows, args.adds, rng)


if __name__ == "__main__":
    main()
