"""The verdict's building blocks against the plain forms they replace: cutting a component by the
pairs it needs against checking every pair, the pairs a refresh returns against reading them back,
the label check without its description against the one with it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from imgindex.near import labels as label_check
from imgindex.near import pairs as near_pairs
from imgindex.near import verdict, verify
from imgindex.scan import scan
from imgindex.store import open_db


def every_pair_cut(order: list[int], fails: set[tuple[int, int]]) -> list[list[int]]:
    """Nodes in order, each into the first part with no failing pair: every pair known up front."""
    parts: list[list[int]] = []
    for x in order:
        home = next((p for p in parts if all((min(x, y), max(x, y)) not in fails for y in p)), None)
        if home is None:
            parts.append([x])
        else:
            home.append(x)
    return parts


def needed_pairs_cut(order: list[int], status: np.ndarray, truth: np.ndarray) -> tuple[list[list[int]], int]:
    """verdict's cut: unknown pairs looked up in truth only when the greedy parts ask for them."""
    status = status.copy()
    asked = 0
    while True:
        part_of, x, y = verdict._greedy_parts(np.array(order, dtype=np.int64), status)
        if not x:
            break
        asked += len(x)
        status[x, y] = status[y, x] = truth[x, y]
    parts: dict[int, list[int]] = {}
    for node in order:
        parts.setdefault(int(part_of[node]), []).append(node)
    return [parts[k] for k in sorted(parts)], asked


@pytest.mark.parametrize("seed", range(40))
def test_a_cut_asking_for_the_pairs_it_needs_equals_checking_every_pair(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40 if seed % 4 else 150))  # past 64 nodes too: parts are sets held as bits
    truth = np.triu(rng.random((n, n)) < rng.uniform(0.0, 0.6), 1)  # True: the pair fails
    truth = ~(truth | truth.T)  # True: the pair passes
    known = np.triu(rng.random((n, n)) < rng.uniform(0.0, 1.0), 1)
    known |= known.T
    status = np.where(known, truth, verdict.UNKNOWN).astype(np.int8)
    order = [int(x) for x in rng.permutation(n)]
    fails = {(x, y) for x in range(n) for y in range(x + 1, n) if not truth[x, y]}
    parts, asked = needed_pairs_cut(order, status, truth.astype(np.int8))
    assert parts == every_pair_cut(order, fails)
    assert asked <= int((~known).sum()) // 2


def test_status_marks_the_known_pairs_among_the_ids() -> None:
    ids = np.array([30, 10, 20], dtype=np.int64)
    known = verdict._Known(np.array([10, 10, 20, 5]), np.array([20, 30, 30, 10]), np.array([True, False, True, True]))
    status = verdict._status(ids, known)
    assert status[1, 2] == status[2, 1] == 1  # 10-20 passes
    assert status[1, 0] == status[0, 1] == 0  # 10-30 fails
    assert status[2, 0] == status[0, 2] == 1  # 20-30 passes
    assert (np.diag(status) == verdict.UNKNOWN).all()  # 5 is not among the ids


def test_a_refresh_of_every_image_returns_the_pairs_as_the_table_holds_them(tmp_path: Path) -> None:
    db_path = tmp_path / "index.db"
    scan(db_path, {"data": [DATA / "chess_coco"], "more": [DATA / "coco8"]}, workers=1)
    db = open_db(db_path)
    db.execute("INSERT INTO near_stale (dhash) SELECT DISTINCT dhash FROM images WHERE dhash IS NOT NULL")
    with db.atomic():
        refreshed = near_pairs.update(db)
    assert refreshed.stored is not None
    pairs, grades = refreshed.stored
    read_pairs, read_grades = near_pairs._stored_pairs(db, near_pairs.CEILING)
    assert len(pairs.a) > 0
    for mine, read in [
        (pairs.a, read_pairs.a),
        (pairs.b, read_pairs.b),
        (pairs.distance, read_pairs.distance),
        (grades.distance_256, read_grades.distance_256),
        (grades.change, read_grades.change),
        (grades.background, read_grades.background),
    ]:
        assert mine.dtype == read.dtype
        assert np.array_equal(mine, read, equal_nan=mine.dtype.kind == "f")
    assert grades.kind.tolist() == read_grades.kind.tolist()
    db.close()


def labels(*boxes: tuple[int, float, float, float, float]) -> label_check.ImageLabels:
    found = label_check.ImageLabels(Counter(), {})
    for c, *box in boxes:
        found.classes[c] += 1
        found.boxes.setdefault(c, []).append((box[0], box[1], box[2], box[3]))
    return found


def test_differ_says_what_compare_finds() -> None:
    sets = [
        None,
        labels(),
        labels((0, 0.5, 0.5, 0.2, 0.2)),
        labels((0, 0.52, 0.5, 0.2, 0.2)),
        labels((0, 0.8, 0.8, 0.2, 0.2)),
        labels((1, 0.5, 0.5, 0.2, 0.2)),
        labels((0, 0.5, 0.5, 0.2, 0.2), (0, 0.1, 0.1, 0.1, 0.1)),
    ]
    for a in sets:
        for b in sets:
            assert label_check.differ(a, b) == (label_check.compare(a, b) is not None)


@pytest.mark.parametrize("scale", [1.0, 37.3, 1e-3])
def test_pooled_cells_equal_numpys_mean_over_each_block_to_the_bit(scale: float) -> None:
    """verify pools 2x2 cells with four additions: the values (and so every verdict near a
    threshold) are exactly those of NumPy's mean over the block's two axes."""
    grids = (np.random.default_rng(7).normal(size=(500, 32, 32)) * scale).astype(np.float32)
    plain = grids.reshape(500, 16, 2, 16, 2).mean(axis=(2, 4))
    assert np.array_equal(verify._pooled(grids), plain)


def test_a_pairs_comparison_does_not_depend_on_the_pairs_beside_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each pair's change, background and place are the same to the bit whether it is compared
    alone, in a chunk of others, or on one of several threads: an incremental refresh, which
    compares other batches than a clean scan, stores the same four decimals."""
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, size=(60, 32, 32)).astype(np.float32)
    signatures = np.concatenate([base, np.clip(base + rng.normal(0, 9, size=base.shape), 0, 255).astype(np.float32)])
    ra, rb = rng.integers(0, 120, size=3000), rng.integers(0, 120, size=3000)
    cells = verify.cells(signatures)
    whole = verify._compare_rows(signatures, cells, ra, rb, 4096)
    assert (whole.background > verify.ALIGN_ABOVE).sum() > 100  # lined up as well as compared
    monkeypatch.setattr(verify, "default_workers", lambda: 4)
    split = verify.compare_rows(signatures, cells, ra, rb)
    parts = [
        verify._compare_rows(signatures, cells, ra[s], rb[s], 700)
        for s in (slice(0, 1), slice(1, 1234), slice(1234, None))
    ]
    joined = verify.Comparison(
        np.concatenate([p.change for p in parts]),
        np.concatenate([p.background for p in parts]),
        np.concatenate([p.where for p in parts if p.where is not None]),
    )
    for got in (split, joined):
        assert np.array_equal(got.change, whole.change)
        assert np.array_equal(got.background, whole.background)
        assert got.where is not None and whole.where is not None
        assert np.array_equal(got.where, whole.where)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=60), st.booleans())
def test_unique_pairs_are_numpys_unique_rows(pairs: list[tuple[int, int]], huge: bool) -> None:
    """The pairs a refresh writes and compares, deduplicated on one integer per pair, are NumPy's
    unique rows in the same order, each pair pointing at its row (ids past 2^31 too)."""
    shift = (1 << 40) if huge else 0
    a = np.array([x + shift for x, _ in pairs], dtype=np.int64)
    b = np.array([y + shift for _, y in pairs], dtype=np.int64)
    first, second, back = near_pairs.unique_pairs(a, b)
    rows = np.unique(np.stack([a, b], axis=1).reshape(-1, 2), axis=0)
    assert first.tolist() == rows[:, 0].tolist() and second.tolist() == rows[:, 1].tolist()
    assert first[back].tolist() == a.tolist() and second[back].tolist() == b.tolist()


def test_pairs_written_in_bulk_keep_their_index_and_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refresh writing many pairs builds the index on b after them: the same rows, the index
    there and used when the pairs of one image are looked up."""
    folders = {"data": [DATA / "chess_coco"], "more": [DATA / "coco8"]}
    query = "SELECT * FROM near_pairs ORDER BY a, b"
    scan(tmp_path / "row.db", folders, workers=1)
    monkeypatch.setattr(near_pairs, "BULK_PAIRS", 1)
    scan(tmp_path / "bulk.db", folders, workers=1)
    row, bulk = open_db(tmp_path / "row.db"), open_db(tmp_path / "bulk.db")
    assert len(bulk.execute(query).fetchall()) > 10
    assert bulk.execute(query).fetchall() == row.execute(query).fetchall()
    plan = " ".join(str(r) for r in bulk.execute("EXPLAIN QUERY PLAN SELECT a FROM near_pairs WHERE b = 5"))
    assert "near_pairs_b" in plan
    row.close()
    bulk.close()
