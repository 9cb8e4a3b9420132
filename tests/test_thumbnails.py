"""Thumbnails of the awkward images datasets hold: they must come out upright, RGB, bounded."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgindex.serve.thumbnails import clamp_side, make_thumbnail, mime_type

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
