"""What the index stores about single files: hashes pinned to ImageHash, formats, edge cases."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import imagehash
import numpy as np
import pytest
from conftest import DATA
from PIL import Image, ImageOps

from imgindex.extract import DRAFT_MIN_SIDE, BlockGrid, decode, extract
from imgindex.store import hamming_hex as hamming

DEDUP = DATA / "imagededup"


def test_dhash_of_imagehash_png_is_imagehash_published_value() -> None:
    row = extract(str(DATA / "imagehash" / "imagehash.png"))
    assert row["error"] is None
    assert row["dhash"] == "0026273b2b19550e"
    assert str(imagehash.hex_to_hash(row["dhash"])) == "0026273b2b19550e"
    assert (row["format"], row["mode"], row["width"], row["height"]) == ("PNG", "RGBA", 1200, 600)


def test_resized_and_grey_copies_share_the_dhash_flipped_and_rotated_do_not() -> None:
    base = extract(str(DEDUP / "ukbench00120.jpg"))["dhash"]
    assert base == "2b69707551f1b87a"
    assert extract(str(DEDUP / "ukbench00120_resize.jpg"))["dhash"] == base
    assert extract(str(DEDUP / "ukbench00120_gray.jpg"))["dhash"] == base
    assert extract(str(DEDUP / "ukbench00120_hflip.jpg"))["dhash"] != base
    assert extract(str(DEDUP / "ukbench00120_rotation.jpg"))["dhash"] != base


def test_format_is_read_from_content_not_extension() -> None:
    row = extract(str(DEDUP / "ukbench09380.bmp"))
    assert row["format"] == "JPEG" and row["error"] is None


def test_exif_orientation_and_stored_size() -> None:
    row = extract(str(DEDUP / "ukbench09268.jpg"))
    assert row["orientation"] == 6
    assert (row["width"], row["height"]) == (640, 480)


def test_animated_palette_gif_counts_frames() -> None:
    row = extract(str(DEDUP / "giphy.gif"))
    assert row["mode"] == "P" and row["frames"] > 1 and row["error"] is None


def test_corrupt_jpeg_gets_an_error_not_an_exception() -> None:
    row = extract(str(DEDUP / "ukbench09268_corrupt.jpg"))
    assert row["error"]
    assert row.get("dhash") is None
    assert row["sha256"]  # the bytes were still hashed


def test_statistics_of_a_known_image(tmp_path: Path) -> None:
    arr = np.zeros((100, 200, 3), dtype=np.uint8)
    arr[:, :100] = (255, 0, 0)  # left half red, right half black
    path = tmp_path / "half.png"
    Image.fromarray(arr).save(path)
    row = extract(str(path))
    assert row["mean_r"] == pytest.approx(127.5, abs=1)
    assert row["mean_g"] == 0 and row["mean_b"] == 0
    assert row["brightness"] == pytest.approx(0.299 * 255 / 2, abs=1)
    assert row["channels"] == 3 and row["width"] == 200 and row["height"] == 100


def _save(img: Image.Image, path: Path, **kw: object) -> Path:
    img.save(path, **kw)
    return path


def _gradient(mode: str = "RGB", size: tuple[int, int] = (320, 240)) -> Image.Image:
    x = np.linspace(0, 255, size[0], dtype=np.float32)
    y = np.linspace(0, 255, size[1], dtype=np.float32)[:, None]
    rgb = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb, "RGB").convert(mode)


def test_cmyk_jpeg_is_read(tmp_path: Path) -> None:
    row = extract(str(_save(_gradient("CMYK"), tmp_path / "cmyk.jpg")))
    assert row["error"] is None and row["mode"] == "CMYK" and row["channels"] == 4


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = (np.arange(256 * 256, dtype=np.uint32).reshape(256, 256)).astype(np.uint16)
    row = extract(str(_save(Image.fromarray(ramp), tmp_path / "deep.png")))
    assert row["error"] is None and row["mode"].startswith("I")
    assert 100 < row["brightness"] < 155  # a clipping conversion would give ~254
    assert row["dhash"] != "0000000000000000"


def test_palette_png(tmp_path: Path) -> None:
    row = extract(str(_save(_gradient("P"), tmp_path / "pal.png")))
    assert row["error"] is None and row["mode"] == "P"


@pytest.mark.parametrize(
    "name, content, expect",
    [
        ("empty.jpg", b"", "empty file (0 bytes)"),
        ("notes.png", b"just some text\n", "not an image"),
    ],
)
def test_files_that_are_not_images(tmp_path: Path, name: str, content: bytes, expect: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert expect in extract(str(path))["error"]


def test_truncated_jpeg(tmp_path: Path) -> None:
    buf = io.BytesIO()
    _gradient().save(buf, "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    row = extract(str(path))
    assert "truncated" in row["error"]
    assert row["width"] == 320  # the header was read before the data ran out


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a size; no real pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(40000, 40000))
    assert "decompression bomb" in extract(str(path))["error"]


def test_vanished_file(tmp_path: Path) -> None:
    assert extract(str(tmp_path / "gone.jpg"))["error"] == "file vanished during the scan"


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_copy_hashes_like_the_upright_image(tmp_path: Path, orientation: int) -> None:
    """A copy whose pixels are stored turned, with the EXIF tag that turns them back, is the same picture."""
    upright = Image.open(DEDUP / "ukbench00120.jpg")
    undo = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = tmp_path / f"turned{orientation}.png"
    upright.transpose(undo).save(stored, exif=exif)
    plain = tmp_path / "plain.png"
    upright.save(plain)
    turned_row, plain_row = extract(str(stored)), extract(str(plain))
    assert turned_row["orientation"] == orientation
    assert turned_row["dhash"] == plain_row["dhash"] == str(imagehash.dhash(upright))
    # the 256-bit hash is taken from block means, whose grid starts at the stored corner
    assert hamming(turned_row["dhash_256"], plain_row["dhash_256"]) <= 4


def test_block_resize_of_full_pixels_follows_pillows_lanczos() -> None:
    """With one full pixel per analysis pixel the block resize is Pillow's Lanczos resize, up to
    the rounding of Pillow's fixed-point passes."""
    rng = np.random.default_rng(7)
    for _ in range(60):
        width, height = (int(v) for v in rng.integers(12, 400, 2))
        coarse = rng.integers(0, 256, (height // 5 + 1, width // 5 + 1), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR)
        expected = np.asarray(image.resize((9, 8), Image.Resampling.LANCZOS), dtype=np.float64)
        got = BlockGrid((width, height), 1, None).resize(np.asarray(image, dtype=np.float64), 9, 8)
        assert np.abs(got - expected).max() <= 2, (width, height)


def test_jpeg_dhash_agrees_with_imagehash_on_a_full_decode() -> None:
    """JPEGs are never decoded in full, yet their dHash is mostly ImageHash's own."""
    bits = []
    for path in sorted(DATA.rglob("*.jpg")):
        row = extract(str(path))
        if row["error"] is None and row["format"] == "JPEG":
            reference = str(imagehash.dhash(ImageOps.exif_transpose(Image.open(path))))
            bits.append(hamming(row["dhash"], reference))
    assert len(bits) >= 50
    assert sum(b == 0 for b in bits) / len(bits) >= 0.75
    assert sum(bits) / len(bits) <= 0.4 and max(bits) <= 6


@pytest.mark.parametrize("orientation", range(2, 9))
def test_exif_turned_jpeg_hashes_like_the_upright_jpeg(tmp_path: Path, orientation: int) -> None:
    """The same photo stored turned, with the EXIF tag that turns it back: the block grid starts at
    the stored corner, so the hashes may differ by a bit or two, never by the turn."""
    upright_image = Image.open(DATA / "coco8" / "images" / "train" / "000000000009.jpg")
    undo = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = tmp_path / f"turned{orientation}.jpg"
    upright_image.transpose(undo).save(stored, quality=95, exif=exif)
    plain = tmp_path / "plain.jpg"
    upright_image.save(plain, quality=95)
    turned_row, plain_row = extract(str(stored)), extract(str(plain))
    assert turned_row["orientation"] == orientation and turned_row["format"] == "JPEG"
    assert hamming(turned_row["dhash"], plain_row["dhash"]) <= 2
    assert hamming(turned_row["dhash_256"], plain_row["dhash_256"]) <= 12
    assert ImageOps.exif_transpose(Image.open(stored)).size == upright_image.size


@pytest.mark.parametrize("size", [(640, 480), (640, 427), (2048, 1371), (320, 240), (500, 333), (100, 60), (40, 33)])
def test_jpeg_decodes_at_the_smallest_scale_that_serves(tmp_path: Path, size: tuple[int, int]) -> None:
    """1/8 whenever the shorter side stays at least DRAFT_MIN_SIDE, for any size (not only multiples of 8)."""
    path = tmp_path / "photo.jpg"
    _gradient(size=size).save(path, quality=90)
    expected = next((s for s in (8, 4, 2) if min(size) >= s * DRAFT_MIN_SIDE), 1)
    with Image.open(path) as im:
        block = decode(im)
        decoded = im.size
    assert block == expected
    assert decoded == (-(-size[0] // expected), -(-size[1] // expected))


def _area_mean(gray: np.ndarray, side: int) -> np.ndarray:
    """gray averaged over a side x side grid of equal areas (pixels split at cell edges)."""

    def weights(n: int) -> np.ndarray:
        edges = np.arange(side + 1) * (n / side)
        pixel = np.arange(n)[:, None]
        overlap = np.clip(np.minimum(pixel + 1, edges[None, 1:]) - np.maximum(pixel, edges[None, :-1]), 0, None)
        return overlap / overlap.sum(axis=0, keepdims=True)

    return weights(gray.shape[0]).T @ gray @ weights(gray.shape[1])


@pytest.mark.parametrize("cut", ["crop", "resize"])
def test_signature_is_the_whole_picture_when_its_size_is_no_multiple_of_the_draft_block(
    tmp_path: Path, cut: str
) -> None:
    """A JPEG drafted at 1/8 whose width and height are no multiple of 8 ends in a partial block:
    the signature still averages equal areas of the picture, so a copy cut to another size lines
    up with its source (the partial block taken as a whole one moved the grid by up to half a cell)."""
    for source in sorted((DATA / "coco8" / "images").glob("*/*.jpg"))[:4]:
        with Image.open(source) as im:
            rgb = im.convert("RGB")
        w, h = rgb.size
        copy = rgb.crop((0, 0, w - 13, h - 10)) if cut == "crop" else rgb.resize((w // 2 + 1, h // 2 + 1))
        path = tmp_path / f"{source.stem}.jpg"
        copy.save(path, quality=95)
        signature = np.frombuffer(extract(str(path))["signature"], dtype=np.uint8).reshape(32, 32)
        with Image.open(path) as im:
            full = np.asarray(im.convert("L"), dtype=np.float64)
        error = np.abs(signature - _area_mean(full, 32))
        assert error.mean() < 4.0 and error.max() < 32, (source.name, error.mean(), error.max())
