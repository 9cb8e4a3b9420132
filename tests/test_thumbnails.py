"""Thumbnails of the awkward images datasets hold: they must come out upright, RGB, bounded."""

from __future__ import annotations

import asyncio
import io
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from datasette.app import Datasette
from PIL import Image

from imgindex.scan import scan
from imgindex.serve import thumbnails
from imgindex.serve.thumbnails import ThumbnailCache, TooLarge, clamp_side, make_thumbnail, mime_type, placeholder

REAL = Path(__file__).parent / "data" / "coco8" / "images" / "train" / "000000000009.jpg"


def thumb(path: Path, side: int = 160) -> Image.Image:
    picture = Image.open(io.BytesIO(make_thumbnail(path, side)))
    assert picture.format == "JPEG" and picture.mode == "RGB"
    return picture


def test_real_jpeg_keeps_its_aspect_ratio() -> None:
    with Image.open(REAL) as original:
        width, height = original.size
    picture = thumb(REAL)
    assert max(picture.size) == 160
    assert abs(picture.width / picture.height - width / height) < 0.02


def test_exif_rotated_image_is_shown_upright(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed portrait
    Image.new("RGB", (200, 100), "red").save(path, exif=exif)
    assert thumb(path).size == (80, 160)


@pytest.mark.parametrize(
    "name, image",
    [
        ("deep.png", Image.fromarray(np.full((40, 60), 60000, dtype=np.uint16))),
        ("alpha.png", Image.new("RGBA", (60, 40), (0, 0, 255, 0))),
        ("palette.gif", Image.new("P", (60, 40), 3)),
        ("cmyk.jpg", Image.new("CMYK", (60, 40), (0, 255, 255, 0))),
        ("grey.png", Image.new("L", (60, 40), 128)),
    ],
)
def test_unusual_modes_become_rgb(tmp_path: Path, name: str, image: Image.Image) -> None:
    path = tmp_path / name
    image.save(path)
    picture = thumb(path)
    assert picture.size == (60, 40)  # never enlarged


def test_sixteen_bit_keeps_its_brightness(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((40, 60), 60000, dtype=np.uint16)).save(path)
    assert np.asarray(thumb(path)).mean() == pytest.approx(60000 / 256, abs=2)


def test_transparent_pixels_are_flattened_on_light_grey(tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    Image.new("RGBA", (60, 40), (0, 0, 255, 0)).save(path)
    assert np.asarray(thumb(path)).mean(axis=(0, 1)) == pytest.approx([238, 238, 238], abs=3)


def test_animated_gif_shows_its_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (30, 30), colour) for colour in ("white", "black")]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert np.asarray(thumb(path)).mean() > 240


def test_side_from_the_query_string_is_clamped() -> None:
    assert [clamp_side(v) for v in (None, "", "x", "8", "200", "99999")] == [160, 160, 160, 32, 200, 512]


def test_only_browser_safe_types_are_named() -> None:
    assert mime_type("JPEG") == "image/jpeg" and mime_type("PNG") == "image/png"
    assert mime_type(None) is None and mime_type("PPM") is None


def test_a_decode_above_the_pixel_budget_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (3000, 2000), "blue").save(path)
    with pytest.raises(TooLarge, match="6,000,000 decoded pixels"):
        make_thumbnail(path, 160, max_pixels=5_000_000)
    assert Image.open(io.BytesIO(make_thumbnail(path, 160, max_pixels=6_000_000))).size == (160, 107)


def test_a_large_jpeg_is_measured_at_its_reduced_decode(tmp_path: Path) -> None:
    path = tmp_path / "large.jpg"
    Image.new("RGB", (4000, 4000), "green").save(path)  # 16 million pixels, decoded at 1/8: 500x500
    assert Image.open(io.BytesIO(make_thumbnail(path, 160, max_pixels=250_000))).size == (160, 160)


def test_the_placeholder_is_a_jpeg_of_the_side_asked() -> None:
    assert Image.open(io.BytesIO(placeholder(200))).size == (200, 200)


def test_the_cache_keeps_at_most_its_bytes() -> None:
    cache = ThumbnailCache(max_bytes=1000)
    for number in range(10):
        cache.put(("file", number), bytes(300))
    assert cache.size <= 1000
    assert cache.get(("file", 9)) is not None and cache.get(("file", 0)) is None
    cache.put(("huge",), bytes(2000))  # larger than the whole cache: not kept
    assert cache.get(("huge",)) is None


def test_the_server_decodes_at_most_the_configured_number_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "train"
    shutil.copytree(REAL.parent, folder)
    db = tmp_path / "index.db"
    scan(db, {"train": [folder]}, workers=1)
    running, most = 0, 0
    lock = threading.Lock()
    real = thumbnails.make_thumbnail

    def slow(source: Any, side: int, max_pixels: int) -> bytes:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)
        with lock:
            running -= 1
        return real(source, side, max_pixels)

    monkeypatch.setattr(thumbnails, "make_thumbnail", slow)

    async def fetch_all() -> list[int]:
        datasette = Datasette([str(db)], metadata={"plugins": {"imgindex": {"thumbnail_concurrency": 2}}})
        urls = [f"/-/imgindex/image/{i}/thumbnail?size={100 + i + 10 * n}" for i in range(1, 5) for n in range(2)]
        responses = await asyncio.gather(*(datasette.client.get(url) for url in urls))
        return [r.status_code for r in responses]

    assert asyncio.run(fetch_all()) == [200] * 8
    assert most == 2
