"""Copy small real label fixtures (besides tests/data/coco8, which holds coco8 whole) from the shared data folder into tests/data/.

Run once from the repository root: python scripts/vendor_label_fixtures.py [SHARED_DATA_DIR]
Files are copied byte for byte, except the COCO JSON, which is cut down to the copied images.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

DEST = Path(__file__).resolve().parent.parent / "tests" / "data"


def copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def smallest(folder: Path, n: int, pattern: str = "*.jpg") -> list[Path]:
    return sorted(folder.glob(pattern), key=lambda p: (p.stat().st_size, p.name))[:n]


def note(dst: Path, src: Path, extra: str) -> None:
    text = (src / "README.txt").read_text()
    (dst / "README.txt").write_text(f"{extra}\n\nREADME of the full dataset follows.\n\n{text}")


def rubyrizz(shared: Path) -> None:
    src, dst = shared / "rubyrizz_yolo", DEST / "rubyrizz_yolo"
    for split, n in (("train", 2), ("valid", 2), ("test", 1)):
        for img in smallest(src / split / "images", n):
            copy(img, dst / split / "images" / img.name)
            lbl = src / split / "labels" / (img.stem + ".txt")
            copy(lbl, dst / split / "labels" / lbl.name)
    for name in ("data.yaml", "README.dataset.txt", "README.roboflow.txt"):
        copy(src / name, dst / name)
    note(dst, src, "Subset for tests: the smallest images of each split (train 2, valid 2, test 1).")


def chess(shared: Path) -> None:
    src, dst = shared / "chess_pieces_coco", DEST / "chess_coco"
    stray = "f1ea0167087976926d4fe0aa36b961ce_jpg.rf.245c4d4e37e289bbd69b90b60e6ee9bc.jpg"
    for split in ("train", "valid", "test"):
        picked = smallest(src / split, 2 if split == "train" else 3)
        if split == "train":
            picked.append(src / split / stray)  # holds the one box of the stray class "bishop"
        names = {p.name for p in picked}
        for img in picked:
            copy(img, dst / split / img.name)
        data = json.loads((src / split / "_annotations.coco.json").read_text())
        data["images"] = [i for i in data["images"] if i["file_name"] in names]
        ids = {i["id"] for i in data["images"]}
        data["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
        (dst / split).mkdir(parents=True, exist_ok=True)
        (dst / split / "_annotations.coco.json").write_text(json.dumps(data, indent=1))
    for name in ("README.dataset.txt", "README.roboflow.txt"):
        copy(src / name, dst / name)
    note(
        dst,
        src,
        "Subset for tests: 3 images per split (the smallest; in train the image with the "
        "stray 'bishop' box); each _annotations.coco.json cut down to those images.",
    )


RESHOTS = (  # one knight, turned on its square between the shots; the labels are alike
    "23988893ef7381fece6d1ef32ef5428f_jpg.rf.c5e09b6b2996b5453a95e7facd4b4683.jpg",
    "3796db002cba7265bd32b0161ddd9127_jpg.rf.d39211b0dcef15258c6b963af339174e.jpg",
)


def chess_reshots(shared: Path) -> None:
    src, dst = shared / "chess_pieces_coco" / "train", DEST / "chess_reshots"
    for name in RESHOTS:
        copy(src / name, dst / name)
    data = json.loads((src / "_annotations.coco.json").read_text())
    data["images"] = [i for i in data["images"] if i["file_name"] in RESHOTS]
    ids = {i["id"] for i in data["images"]}
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
    (dst / "_annotations.coco.json").write_text(json.dumps(data, indent=1))
    note(
        dst,
        src.parent,
        "Subset for tests: two train photos of the board with one black knight, turned on its square "
        "between the shots (the labels are alike: one box each, of one class, IoU > 0.5); the "
        "_annotations.coco.json cut down to them.",
    )


def bccd(shared: Path) -> None:
    src, dst = shared / "bccd_voc", DEST / "bccd_voc"
    keep = {
        "train": ["BloodImage_00038", "BloodImage_00343", "BloodImage_00000"],
        "val": ["BloodImage_00037", "BloodImage_00338"],
        "test": [],
    }
    test_ids = (src / "ImageSets/Main/test.txt").read_text().split()
    keep["test"] = test_ids[:2]
    for split, ids in keep.items():
        for i in ids:
            copy(src / "JPEGImages" / f"{i}.jpg", dst / "JPEGImages" / f"{i}.jpg")
            copy(src / "Annotations" / f"{i}.xml", dst / "Annotations" / f"{i}.xml")
        (dst / "ImageSets/Main").mkdir(parents=True, exist_ok=True)
        (dst / "ImageSets/Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    copy(src / "LICENSE", dst / "LICENSE")
    note(
        dst,
        src,
        "Subset for tests: train 00000, 00038, 00343 (zero-area box); val 00037 (near-duplicate "
        "of 00038), 00338 (zero-area box); test: first 2 ids of test.txt. ImageSets lists cut to them.",
    )


def raccoon(shared: Path) -> None:
    src, dst = shared / "raccoon_voc", DEST / "raccoon_voc"
    for stem in ("raccoon-150", "raccoon-151", "raccoon-39"):
        copy(src / "images" / f"{stem}.jpg", dst / "images" / f"{stem}.jpg")
        copy(src / "annotations" / f"{stem}.xml", dst / "annotations" / f"{stem}.xml")
    copy(src / "LICENSE", dst / "LICENSE")
    note(dst, src, "Subset for tests: raccoon-150 (grayscale), raccoon-151, raccoon-39 with their VOC xml.")


def main() -> None:
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data"
    for vendor in (rubyrizz, chess, chess_reshots, bccd, raccoon):
        vendor(shared)


if __name__ == "__main__":
    main()
