"""The near-duplicate engine against brute force, on small random and adversarial hash sets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgindex.near import search as near

U64 = st.integers(min_value=0, max_value=2**64 - 1)


def random_hashes(n: int, seed: int, planted: int = 0, max_flips: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    for k in range(planted):
        copy = hashes[k]
        for bit in rng.choice(64, size=rng.integers(0, max_flips + 1), replace=False):
            copy ^= np.uint64(1) << np.uint64(bit)
        hashes[n - 1 - k] = copy
    return hashes


def as_list(pairs: near.Pairs) -> list[tuple[int, int, int]]:
    return list(zip(*(x.tolist() for x in pairs)))


def test_hex_round_trip_keeps_imagehash_digit_order() -> None:
    hexes = ["0026273b2b19550e", "ffffffffffffffff", "0000000000000001"]
    values = near.hex_to_u64(hexes)
    assert values.tolist() == [0x0026273B2B19550E, 2**64 - 1, 1]
    assert near.u64_to_hex(values) == hexes


def test_hex_rejects_short_hashes() -> None:
    with pytest.raises(ValueError):
        near.hex_to_u64(["abc", "0026273b2b19550e"])


def test_popcount_matches_python() -> None:
    values = random_hashes(200, seed=3)
    assert near.popcount(values).tolist() == [bin(int(v)).count("1") for v in values]


@pytest.mark.parametrize("k", [0, 1, 3, 6, 8, 12, 16])
def test_find_pairs_equals_brute_force(k: int) -> None:
    hashes = random_hashes(1500, seed=k, planted=300, max_flips=k)
    assert as_list(near.find_pairs(hashes, k, max_group=10**6)) == as_list(near.brute_force_pairs(hashes, k))


@pytest.mark.parametrize("k", [0, 2, 8, 16])
def test_query_equals_brute_force(k: int) -> None:
    index = random_hashes(2000, seed=10 + k)
    new = random_hashes(300, seed=20 + k)
    new[:100] = index[:100] ^ np.uint64(0b1011)  # 3 bits away
    new[100:110] = index[5]
    expected = [
        (q, i, int(d)) for q in range(len(new)) for i, d in enumerate(near.hamming(index, new[q]).tolist()) if d <= k
    ]
    assert as_list(near.query(index, new, k, max_group=10**6)) == expected


def test_identical_hashes_beyond_max_group_form_a_star_not_all_pairs() -> None:
    hashes = np.concatenate([np.zeros(500, np.uint64), np.array([1, 3, 0xFFFF << 48], np.uint64)])
    i, j, d = near.find_pairs(hashes, 2, max_group=32)
    pairs = set(zip(i.tolist(), j.tolist()))
    assert len(pairs) < 600  # all pairs would be 500*499/2 among the zeros alone
    assert {(0, k) for k in range(1, 500)} <= pairs  # star to the first index
    assert (0, 500) in pairs and (0, 501) in pairs and (500, 501) in pairs
    assert not any(502 in p for p in pairs)  # 16 bits from everything
    assert (d == near.hamming(hashes[i], hashes[j])).all()


def test_small_identical_groups_give_all_pairs() -> None:
    hashes = np.array([7, 7, 7, 6, 2**40], dtype=np.uint64)
    assert as_list(near.find_pairs(hashes, 1, max_group=3)) == [
        (0, 1, 0),
        (0, 2, 0),
        (0, 3, 1),
        (1, 2, 0),
        (1, 3, 1),
        (2, 3, 1),
    ]


def test_near_index_answers_repeated_queries() -> None:
    index_hashes = random_hashes(3000, seed=5)
    index = near.NearIndex(index_hashes, 8)
    for seed in range(3):
        new = index_hashes[seed * 10 : seed * 10 + 10] ^ np.uint64(0xFF)
        q, i, d = index.query(new)
        assert (q.tolist(), i.tolist(), d.tolist()) == (
            list(range(10)),
            list(range(seed * 10, seed * 10 + 10)),
            [8] * 10,
        )


def test_empty_inputs() -> None:
    empty = np.zeros(0, np.uint64)
    assert all(len(x) == 0 for x in near.find_pairs(empty, 8))
    assert all(len(x) == 0 for x in near.query(random_hashes(10, 1), empty, 8))
    assert all(len(x) == 0 for x in near.query(empty, random_hashes(10, 1), 8))


@settings(max_examples=60, deadline=None)
@given(st.lists(U64, max_size=60), st.integers(0, 20), st.lists(st.integers(0, 63), max_size=4))
def test_property_exact_on_clustered_hashes(seed_values: list[int], k: int, flips: list[int]) -> None:
    base = np.array(seed_values, dtype=np.uint64)
    mask = np.uint64(sum(1 << b for b in set(flips)))
    hashes = np.concatenate([base, base ^ mask, base[:5]])
    assert as_list(near.find_pairs(hashes, k, max_group=10**6)) == as_list(near.brute_force_pairs(hashes, k))


def nearest_reference(hashes: np.ndarray, k: int, cap: int) -> set[tuple[int, int]]:
    """Distinct hashes: each keeps its cap nearest partners by (distance, value); union of both ends."""
    kept = set()
    for x in range(len(hashes)):
        dist = near.hamming(hashes, hashes[x]).astype(int)
        partners = sorted((int(dist[y]), int(hashes[y]), y) for y in range(len(hashes)) if y != x and dist[y] <= k)
        kept |= {(min(x, y), max(x, y)) for _, _, y in partners[:cap]}
    return kept


@settings(max_examples=60, deadline=None)
@given(st.lists(U64, min_size=1, max_size=40), st.integers(0, 12), st.integers(1, 6), st.integers(0, 2**32))
def test_property_capped_pairs_are_each_hashs_nearest(seed_values: list[int], k: int, cap: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = np.array(seed_values, dtype=np.uint64)
    spread = rng.integers(0, 1 << 6, size=(len(base), 4), dtype=np.uint64) << np.uint64(rng.integers(0, 58))
    hashes = np.unique(np.concatenate([base, (base[:, None] ^ spread).ravel()]))  # clusters in 6 bits
    expected = nearest_reference(hashes, k, cap)
    for exact_pairs in (near.CAP_EXACT_PAIRS, 0):  # all pairs then capped; capped chunk by chunk
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(near, "CAP_EXACT_PAIRS", exact_pairs)
            patch.setattr(near, "CAP_CHUNK_PAIRS", 8)  # several chunks of queries
            i, j, d = near.find_pairs(hashes, k, cap=cap)
        assert set(zip(i.tolist(), j.tolist())) == expected
        assert (d == near.hamming(hashes[i], hashes[j])).all()


@pytest.mark.parametrize("k", [2, 8, 12])
def test_cap_changes_nothing_when_no_hash_has_more_partners(k: int) -> None:
    hashes = random_hashes(1500, seed=k, planted=300, max_flips=k)
    hashes[:20] = hashes[20]  # identical hashes are grouped, not capped
    reference = near.find_pairs(hashes, k, max_group=10**6)
    assert np.bincount(np.concatenate(reference[:2])).max() < 64
    assert as_list(near.find_pairs(hashes, k, max_group=10**6, cap=64)) == as_list(reference)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(near, "CAP_EXACT_PAIRS", 0)
        assert as_list(near.find_pairs(hashes, k, max_group=10**6, cap=64)) == as_list(reference)
    assert as_list(near.query(hashes[:900], hashes[900:], k, max_group=10**6)) == as_list(
        near.NearIndex(hashes[:900], k, max_group=10**6).query(hashes[900:], cap=64)
    )


def test_a_dense_cluster_keeps_a_bounded_number_of_pairs_and_stays_connected() -> None:
    rng = np.random.default_rng(3)
    codes = rng.choice(1 << 14, size=3000, replace=False).astype(np.uint64)
    hashes = np.uint64(0xA5A5_0000_0000_0000) ^ (codes << np.uint64(20))  # 3,000 hashes in 14 bits
    full = set(zip(*(x.tolist() for x in near.brute_force_pairs(hashes, 8)[:2])))
    i, j, d = near.find_pairs(hashes, 8, cap=16)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(near, "CAP_EXACT_PAIRS", len(full) // 2)  # gives up on all pairs half way
        assert as_list(near.find_pairs(hashes, 8, cap=16)) == as_list((i, j, d))
    kept = set(zip(i.tolist(), j.tolist()))
    assert len(full) > 100 * len(hashes) and len(kept) <= 16 * len(hashes) and kept <= full
    assert np.bincount(np.concatenate([i, j]), minlength=len(hashes)).min() >= 16
    parent = list(range(len(hashes)))

    def root(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in kept:
        parent[root(a)] = root(b)
    assert len({root(x) for x in range(len(hashes))}) == 1


def test_query_with_a_cap_keeps_each_new_hashs_nearest() -> None:
    index = np.unique(np.uint64(1 << 40) ^ np.arange(0, 256, dtype=np.uint64))  # 256 hashes in 8 bits
    new = np.array([1 << 40, (1 << 40) ^ 0b111, 0xFFFF_FF00_0000_0000], dtype=np.uint64)  # the last: 23 bits away
    q, i, d = near.NearIndex(index, 8).query(new, cap=5)
    expected = [
        (x, int(y), int(dd))
        for x in range(2)
        for dd, _, y in sorted(
            (int(near.hamming(index[y : y + 1], new[x : x + 1])[0]), int(index[y]), y) for y in range(len(index))
        )[:5]
    ]
    assert as_list((q, i, d)) == sorted(expected)
