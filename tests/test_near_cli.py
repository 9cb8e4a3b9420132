"""Near-duplicates end to end: `imgindex scan` keeps near_pairs, `imgindex duplicates --max-distance`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, invoke, run_imgindex, shifted_crops, sql_rows
from PIL import Image, ImageEnhance

from imgindex.near import pairs as near_index

COCO8 = DATA / "coco8" / "images"
COCO128 = DATA / "coco128_sample" / "images" / "train2017"
DEDUP = DATA / "imagededup"


def duplicates(db: Path, *args: str) -> dict[str, Any]:
    return json.loads(invoke("duplicates", "--db", str(db), "--json", *args).output)


def pair_paths(db: Path, where: str = "1") -> set[tuple[str, str, int, str]]:
    """near_pairs as (file name, file name, distance, kind), names sorted within a pair."""
    rows = sql_rows(
        db,
        "select ia.path pa, ib.path pb, p.distance, p.kind from near_pairs p "
        f"join images ia on ia.id = p.a join images ib on ib.id = p.b where {where}",
    )
    return {(*sorted((Path(r["pa"]).name, Path(r["pb"]).name)), r["distance"], r["kind"]) for r in rows}  # type: ignore[misc]


def names(groups: list[list[str]]) -> list[list[str]]:
    return [[Path(p).name for p in g] for g in groups]


def test_reencoded_coco_copies_are_found_across_splits(db: Path) -> None:
    invoke("scan", "--db", str(db), f"train={COCO128}", f"val={COCO8 / 'val'}", "-q")
    doc = duplicates(db, "--max-distance", "8")
    (inter,) = doc["intersections"]
    assert inter["splits"] == ["train", "val"]
    assert names(inter["groups"]) == [
        ["000000000036.jpg", "000000000036.jpg"],
        ["000000000049.jpg", "000000000049.jpg"],
    ]
    assert [k["kind"] for k in inter["kinds"]] == ["copy", "copy"]  # different bytes
    assert doc["splits"]["val"]["groups"] == [] and doc["splits"]["train"]["images"] == 16


def test_resized_and_grey_copies_group_but_flips_do_not(db: Path) -> None:
    invoke("scan", "--db", str(db), f"dd={DEDUP}", "-q")
    groups = names(duplicates(db, "--max-distance", "8")["splits"]["dd"]["groups"])
    assert ["ukbench00120.jpg", "ukbench00120_gray.jpg", "ukbench00120_resize.jpg"] in groups
    assert ["ukbench09380.bmp", "ukbench09380.webp"] in groups
    flat = [n for g in groups for n in g]
    assert "ukbench00120_hflip.jpg" not in flat and "ukbench00120_rotation.jpg" not in flat


def test_kinds_and_largest_distance(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    src = COCO8 / "train" / "000000000009.jpg"
    shutil.copy(src, folder / "a.jpg")
    shutil.copy(src, folder / "a_copy.jpg")  # byte-identical
    with Image.open(src) as im:
        im.save(folder / "a.png")
        im.save(folder / "a_fast.png", compress_level=1)  # same pixels as a.png, other bytes
        ImageEnhance.Brightness(im).enhance(1.1).save(folder / "b_bright.jpg", quality=90)
    shutil.copy(COCO8 / "train" / "000000000025.jpg", folder / "other.jpg")
    invoke("scan", "--db", str(db), f"s={folder}", "-q")
    assert duplicates(db, "--max-distance", "0")["splits"]["s"]["kinds"][0]["kind"] != "byte-identical"
    doc = duplicates(db, "--max-distance", "8")["splits"]["s"]
    assert names(doc["groups"]) == [["a.jpg", "a.png", "a_copy.jpg", "a_fast.png", "b_bright.jpg"]]
    (kind,) = doc["kinds"]
    assert kind["kind"] == "copy" and 0 < kind["max_distance"] <= 8
    pairs = pair_paths(db)
    assert ("a.jpg", "a_copy.jpg", 0, "byte-identical") in pairs
    assert ("a.png", "a_fast.png", 0, "pixel-identical") in pairs
    assert ("a.jpg", "b_bright.jpg", 1, "copy") in pairs


def test_near_pairs_follow_adds_changes_and_deletes(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "train"
    shutil.copytree(COCO8 / "train", folder)
    invoke("scan", "--db", str(db), f"train={folder}", "-q")
    assert pair_paths(db, "p.kind != 'rejected'") == set()

    with Image.open(folder / "000000000030.jpg") as im:  # add a re-encoded copy
        im.save(folder / "copy30.jpg", quality=60)
    invoke("scan", "--db", str(db), f"train={folder}", "-q")
    [(a, b, distance, kind)] = pair_paths(db)
    assert (a, b, kind) == ("000000000030.jpg", "copy30.jpg", "copy") and distance <= 2

    with Image.open(folder / "000000000030.jpg") as im:  # change the copy: now a mirror image
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "copy30.jpg", quality=60)
    with Image.open(folder / "000000000034.jpg") as im:  # and add a copy of another image
        im.resize((320, 240)).save(folder / "small34.png")
    invoke("scan", "--db", str(db), f"train={folder}", "-q")
    assert {(a, b) for a, b, _, kind in pair_paths(db) if kind != "rejected"} == {("000000000034.jpg", "small34.png")}

    (folder / "000000000034.jpg").unlink()
    invoke("scan", "--db", str(db), f"train={folder}", "-q")
    incremental = pair_paths(db)
    assert not any("000000000034.jpg" in p for p in incremental)

    fresh = tmp_path / "fresh.db"  # the same folder indexed from scratch gives the same pairs
    invoke("scan", "--db", str(fresh), f"train={folder}", "-q")
    assert pair_paths(fresh) == incremental
    assert sql_rows(db, "select count(*) n from near_stale") == [{"n": 0}]


def flat(path: Path, colour: tuple[int, int, int], size: tuple[int, int]) -> None:
    Image.new("RGB", size, colour).save(path)


def test_flat_images_are_not_one_giant_group(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "flat"
    folder.mkdir()
    for colour, rgb in {"white": (255, 255, 255), "blue": (20, 60, 200), "black": (0, 0, 0)}.items():
        for w in (40, 90, 160):
            flat(folder / f"{colour}_{w}.png", rgb, (w, w * 3 // 4))
    shutil.copy(COCO8 / "val" / "000000000036.jpg", folder / "photo.jpg")
    invoke("scan", "--db", str(db), f"flat={folder}", "-q")
    assert sql_rows(db, "select count(distinct dhash) n from images where path like '%.png'") == [{"n": 1}]
    groups = names(duplicates(db, "--max-distance", "8")["splits"]["flat"]["groups"])
    assert groups == [
        ["black_160.png", "black_40.png", "black_90.png"],
        ["blue_160.png", "blue_40.png", "blue_90.png"],
        ["white_160.png", "white_40.png", "white_90.png"],
    ]
    low = sql_rows(db, "select i.rel_path from near_images n join images i using (id) where n.low_information")
    assert sorted(r["rel_path"] for r in low) == sorted(p.name for p in folder.glob("*.png"))


def test_a_hash_shared_by_many_images_is_stored_as_a_star(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for k in range(70):  # more than near_index.MAX_GROUP identical dHashes
        flat(folder / f"w{k:02d}.png", (250, 250, 250), (8 + k, 8))
    invoke("scan", "--db", str(db), f"many={folder}", "-q")
    assert sql_rows(db, "select count(*) n, max(distance) d from near_pairs") == [{"n": 69, "d": 0}]
    (group,) = duplicates(db, "--max-distance", "8")["splits"]["many"]["groups"]
    assert len(group) == 70
    (folder / "w00.png").unlink()  # the star's centre goes: the rest is re-linked
    invoke("scan", "--db", str(db), f"many={folder}", "-q")
    assert sql_rows(db, "select count(*) n from near_pairs") == [{"n": 68}]
    assert len(duplicates(db, "--max-distance", "8")["splits"]["many"]["groups"][0]) == 69


def test_distance_above_the_stored_ceiling_and_out_of_range(db: Path) -> None:
    invoke("scan", "--db", str(db), f"dd={DEDUP}", "-q")
    stored = duplicates(db, "--max-distance", "8")["splits"]["dd"]["groups"]
    wide = duplicates(db, "--max-distance", "16")["splits"]["dd"]["groups"]
    assert all(any(set(s) <= set(w) for w in wide) for s in stored)
    result = invoke("duplicates", "--db", str(db), "--max-distance", "17", ok=False)
    assert result.exit_code == 2 and "0<=x<=16" in result.output


def test_subprocess_duplicates_and_hamming_function(db: Path) -> None:
    invoke("scan", "--db", str(db), f"train={COCO128}", f"val={COCO8 / 'val'}", "-q")
    proc = run_imgindex("duplicates", "--db", str(db), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["max_distance"] == 8 and len(doc["intersections"][0]["groups"]) == 2
    text = run_imgindex("duplicates", "--db", str(db)).stdout
    assert "train & val: There are 2 duplicates between train and val appearing 2 times" in text
    proc = run_imgindex(
        "sql",
        "--db",
        str(db),
        "--json",
        "select p.distance, hamming(a.dhash, b.dhash) h from near_pairs p "
        "join images a on a.id = p.a join images b on b.id = p.b",
    )
    rows = json.loads(proc.stdout)
    assert rows and all(r["distance"] == r["h"] for r in rows)


@pytest.mark.parametrize("k", [0, 4])
def test_python_api_matches_cli(db: Path, k: int) -> None:
    from imgindex import store
    from imgindex.near import groups as dup

    invoke("scan", "--db", str(db), f"dd={DEDUP}", "-q")
    assert dup.find_duplicates(store.open_db(db), k) == duplicates(db, "--max-distance", str(k))


def test_duplicates_on_a_read_only_connection(db: Path, tmp_path: Path) -> None:
    from imgindex import store
    from imgindex.near import groups as dup

    invoke("scan", "--db", str(db), f"train={COCO128}", f"val={COCO8 / 'val'}", "-q")
    expected = duplicates(db, "--max-distance", "8")
    assert dup.find_duplicates(store.open_readonly(db), 8) == expected


def test_a_dense_cluster_stores_each_images_nearest_partners_and_stays_one_group(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = len(shifted_crops(tmp_path / "scene", 5, 3))
    invoke("scan", "--db", str(tmp_path / "full.db"), f"s={tmp_path / 'scene'}", "-q")
    full = duplicates(tmp_path / "full.db", "--max-distance", "8")["splits"]["s"]
    assert len(full["groups"]) == 1 and len(full["groups"][0]) == n

    monkeypatch.setattr(near_index, "MAX_PARTNERS", 3)
    invoke("scan", "--db", str(db), f"s={tmp_path / 'scene'}", "-q")
    value_pairs = (
        "select count(distinct min(x.dhash, y.dhash) || max(x.dhash, y.dhash)) n from near_pairs p "
        "join images x on x.id = p.a join images y on y.id = p.b where p.distance > 0"
    )
    values = sql_rows(db, "select count(distinct dhash) n from images")[0]["n"]
    stored, everything = sql_rows(db, value_pairs)[0]["n"], sql_rows(tmp_path / "full.db", value_pairs)[0]["n"]
    assert stored <= 3 * values < everything  # bounded per dHash, and the cap did drop pairs
    listed = sql_rows(
        db,
        "select x.id, min(p.distance) nearest, count(distinct y.dhash) partners from images x "
        "join near_pairs p on x.id in (p.a, p.b) join images y on y.id = p.a + p.b - x.id "
        "where p.distance > 0 group by x.id",
    )
    truth = sql_rows(
        db,
        "select x.id, min(hamming(x.dhash, y.dhash)) nearest, count(distinct y.dhash) partners from images x "
        "join images y on y.dhash != x.dhash and hamming(x.dhash, y.dhash) <= 8 group by x.id",
    )
    assert len(listed) == len(truth) == n
    for got, want in zip(listed, truth):  # each image: its nearest partner, and 3 partner dHashes or more
        assert got["nearest"] == want["nearest"] and got["partners"] >= min(3, want["partners"])
    assert duplicates(db, "--max-distance", "8")["splits"]["s"] == full
