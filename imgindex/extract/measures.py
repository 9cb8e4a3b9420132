"""Per-image measures: each takes the image decoded once (an Analysis) and returns columns of
``images``. To add one, write a function here, list it in MEASURES, add its columns in a schema
migration (schema/*.sql), document them in the README and raise ``EXTRACTOR`` (imgindex.extract)
so that existing rows are extracted again.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar, overload

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .decode import DRAFT_FORMATS, decode, to_rgb8, upright
from .dhash import BlockGrid, full_dhash

Row = dict[str, Any]
Floats = NDArray[np.float64]
Counts = NDArray[np.int64]
T = TypeVar("T")

ANALYSIS_SIDE = 64  # shorter side of the analysis image, about (never reduced below it)
HISTOGRAM_BINS = 16
# (256, 2): level, level squared. Integers: sums of counts times these are exact, as in floats
# (every partial sum a whole number under 2**53), so the moments divide the same sums either way.
LEVELS = np.stack([np.arange(256, dtype=np.int64), np.arange(256, dtype=np.int64) ** 2], axis=1)
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, as Pillow's "L" conversion


def statistics(counts: Counts, n: int) -> Row:
    """Mean luma, per-channel mean and std and a coarse histogram, from an 8-bit RGB image's
    histogram (3 x 256 pixel counts) and its number of pixels ``n``."""
    hist = counts.reshape(3, 256)
    n = max(n, 1)
    moments = hist @ LEVELS / n  # (3, 2): mean and mean square per channel
    row: Row = {"brightness": round(float(LUMA @ moments[:, 0]), 3), "histogram": histogram_json(hist / n)}
    for band, (mean, square) in zip("rgb", moments.tolist()):
        # Three standard deviations in Python floats: the same IEEE operations as NumPy's on
        # three-element arrays (square - mean * mean is never -0.0), a fifth of their calls' cost.
        row[f"mean_{band}"] = round(mean, 3)
        row[f"std_{band}"] = round(math.sqrt(max(square - mean * mean, 0.0)), 3)
    return row


def pixel_hash(size: tuple[int, int], pixels: bytes) -> str:
    """128 bits of the SHA-256 of an image's size and pixels."""
    digest = hashlib.sha256(f"{size[0]}x{size[1]}:".encode())
    digest.update(pixels)
    return digest.hexdigest()[:32]


def histogram_json(shares: Floats) -> str:
    """Share of pixels in each of 16 equal bins, per channel, from a 3x256 histogram of shares."""
    coarse = shares.reshape(3, HISTOGRAM_BINS, 256 // HISTOGRAM_BINS).sum(axis=2).round(5).tolist()
    red, green, blue = (",".join(map(repr, bins)) for bins in coarse)  # as JSON writes floats
    return f'{{"r":[{red}],"g":[{green}],"b":[{blue}]}}'


class shared(Generic[T]):
    """An Analysis attribute computed when a measure first asks, then kept in the instance's
    ``__dict__``, where every later lookup finds it without calling anything. As
    functools.cached_property, without its lock (taken on every first access before Python 3.12:
    over a microsecond each, ten times an image); an Analysis is never shared between threads."""

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self.compute, self.name, self.__doc__ = compute, compute.__name__, compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> shared[T]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...
    def __get__(self, instance: object | None, owner: type | None = None) -> T | shared[T]:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.compute(instance)
        return value


@dataclass
class Analysis:
    """One image, decoded once, as every measure sees it.

    ``rgb`` is the decoded image in 8-bit RGB (a JPEG at its draft scale), ``small`` the analysis
    image (shorter side about ANALYSIS_SIDE), ``grid`` resizes of the full image computed from
    ``small``'s block means; all as stored, ``orientation`` says how they are displayed. The
    analysis image's pixels, grey image and histograms are made once, when a measure first asks,
    and shared by every measure after it."""

    rgb: Image.Image
    small: Image.Image
    grid: BlockGrid
    orientation: int | None
    drafted: bool

    @shared
    def pixels(self) -> bytes:
        """The analysis image's RGB bytes, as stored."""
        return self.small.tobytes()

    @shared
    def planes(self) -> NDArray[np.uint8]:
        """The analysis image's pixels, (height, width, 3), on ``pixels``."""
        return np.frombuffer(self.pixels, dtype=np.uint8).reshape(self.small.height, self.small.width, 3)

    @shared
    def luma(self) -> Image.Image:
        """The analysis image in grey (Pillow's L conversion), converted once for every measure."""
        return self.small.convert("L")

    @shared
    def luma_levels(self) -> NDArray[np.uint8]:
        """The grey image's levels, (height, width), on its bytes."""
        return np.frombuffer(self.luma.tobytes(), dtype=np.uint8).reshape(self.luma.height, self.luma.width)

    @shared
    def levels(self) -> NDArray[np.int32]:
        """The grey image's levels as integers: sums of their squares are exact."""
        return self.luma_levels.astype(np.int32)

    @shared
    def gray(self) -> Floats:
        """The analysis image in grey levels, as floats."""
        return self.levels.astype(np.float64)

    @shared
    def luma_counts(self) -> Counts:
        """How many of the analysis image's pixels have each grey level (256 counts)."""
        return np.bincount(self.luma_levels.ravel(), minlength=256)

    @shared
    def colour_counts(self) -> Counts:
        """How many of the analysis image's pixels have each level, per channel (3 x 256 counts):
        Pillow's histogram, read by np.fromiter (a third of np.array's time on a list of ints)."""
        return np.fromiter(self.small.histogram(), dtype=np.int64, count=3 * 256)

    @shared
    def shown(self) -> Image.Image:
        """The analysis image as displayed (its EXIF orientation applied; itself when upright)."""
        (shown,) = upright(self.small, orientation=self.orientation)
        return shown

    @shared
    def shown_pixels(self) -> bytes:
        """``shown``'s RGB bytes."""
        return self.pixels if self.shown is self.small else self.shown.tobytes()


def colour(analysis: Analysis) -> Row:
    """brightness, mean_*, std_* and histogram of the analysis image."""
    small = analysis.small
    return statistics(analysis.colour_counts, small.width * small.height)


def hashes(analysis: Analysis) -> Row:
    """dhash (ImageHash's), dhash_256 and pixel_hash of the image as displayed."""
    gray = analysis.gray
    exact = not analysis.drafted
    return {
        "dhash": full_dhash(analysis.rgb, analysis.orientation) if exact else analysis.grid.dhash(gray, 8),
        "dhash_256": analysis.grid.dhash(gray, 16),
        "pixel_hash": pixel_hash(analysis.shown.size, analysis.shown_pixels),
    }


SIGNATURE_SIDE = 32  # the verification signature: grey levels on a 32x32 grid, 1,024 bytes


WINDOW_SHARE = 0.95  # the windows of window_hashes: 95 % of each axis, at the corners and centre
WINDOW_ANCHORS = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.5, 0.5))


def signature(analysis: Analysis) -> Row:
    """The image as displayed, grey, box-resized to SIGNATURE_SIDE squared in the full image's
    coordinates (a partial last block of the analysis image weighs only what it covers, so a copy
    cropped or resized to another size lines up): what near pairs are verified with
    (imgindex.near.verify looks at where two images differ, cell by cell); and the window hashes
    of that grid, what finds crops (imgindex.near.pairs)."""
    side = SIGNATURE_SIDE
    levels = analysis.grid.box(analysis.gray, side, side)
    return {"signature": levels.astype(np.uint8).tobytes(), "window_hashes": window_hashes(levels)}


def window_hashes(grid: Floats) -> bytes:
    """Six 64-bit difference hashes of a signature grid, big-endian: of the whole grid, then of
    windows of WINDOW_SHARE of each axis at the four corners and the centre. A copy cropped by up
    to about 5 % has a whole-grid hash close to one of its source's window hashes, where its dHash
    may be 10 to 20 bits away."""
    rows, cols = _window_matrices(grid.shape[0])
    sampled = _round6((rows @ grid) @ cols.transpose(0, 2, 1))  # (6, 8, 9); flat areas tie exactly
    bits = (sampled[:, :, 1:] > sampled[:, :, :-1]).reshape(len(sampled), 64)
    return np.packbits(bits, axis=1).tobytes()


def _round6(values: Floats) -> Floats:
    """``np.round(values, 6)``, in place: the same steps (times 1e6, rint, over 1e6) as NumPy's
    round takes, hence the same values, without its dispatch and two temporary arrays."""
    values *= 1e6
    np.rint(values, out=values)
    values /= 1e6
    return values


@lru_cache(maxsize=2)
def _window_matrices(side: int) -> tuple[Floats, Floats]:
    """Box-averaging matrices (6, 8, side) and (6, 9, side) of the whole grid and each window."""
    windows = [(0.0, 0.0, 1.0)] + [
        (ax * (1 - WINDOW_SHARE), ay * (1 - WINDOW_SHARE), WINDOW_SHARE) for ax, ay in WINDOW_ANCHORS
    ]
    rows = np.stack([_box_matrix(8, side, y, share) for _, y, share in windows])
    cols = np.stack([_box_matrix(9, side, x, share) for x, _, share in windows])
    return rows, cols


def _box_matrix(out: int, side: int, start: float, share: float) -> Floats:
    """Matrix averaging side cells into out samples of the window [start, start + share] of them."""
    edges = (start + np.arange(out + 1) / out * share) * side
    lo, hi = edges[:-1, None], edges[1:, None]
    cells = np.arange(side)[None, :]
    overlap = np.clip(np.minimum(hi, cells + 1) - np.maximum(lo, cells), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def _reduced(im: Image.Image, factor: int) -> Image.Image:
    return im.reduce(factor) if factor > 1 else im


NEAR_BLACK = 25  # grey levels at most this are near-black (about 0.1 of white)
NEAR_WHITE = 230  # and at least this near-white (0.9 of white)
PERCENTILES = np.array([0.05, 0.95]) - 1e-9  # brightness_p5, brightness_p95


def exposure(analysis: Analysis) -> Row:
    """How the analysis image's grey levels spread: their standard deviation, 5th and 95th
    percentiles, the shares of near-black and near-white pixels, and their entropy in bits (0 for
    one flat level, 8 when all 256 levels are equally common)."""
    luma = analysis.luma
    counts = analysis.luma_counts
    n = luma.width * luma.height
    cumulative = counts.cumsum() / n
    mean, square = counts @ LEVELS / n
    p5, p95 = cumulative.searchsorted(PERCENTILES)
    return {
        "luma_std": round(float(np.sqrt(max(square - mean * mean, 0.0))), 3),
        "brightness_p5": int(p5),
        "brightness_p95": int(p95),
        "dark_share": round(float(cumulative[NEAR_BLACK]), 5),
        "light_share": round(float(1.0 - cumulative[NEAR_WHITE - 1]), 5),
        "entropy": round(luma.entropy(), 4),
    }


def chroma(analysis: Analysis) -> Row:
    """Mean over the analysis image's pixels of the spread of their channels (largest minus
    smallest, in levels 0..255): 0 for a grey image, whatever its mode."""
    red, green, blue = analysis.planes.reshape(-1, 3).T
    spread = np.maximum(red, green)
    np.maximum(spread, blue, out=spread)
    spread -= np.minimum(np.minimum(red, green), blue)  # in place: one temporary array fewer
    # A sum of whole levels, exact as an integer as in mean's floats; the one division rounds alike.
    return {"chroma": round(int(np.add.reduce(spread, dtype=np.int64)) / spread.size, 3)}


FLAT = 0.05  # RMS neighbour difference (grey levels) at half scale below which an image is flat


def sharpness(analysis: Analysis) -> Row:
    """``detail``: the RMS difference of neighbouring grey levels of the analysis image (how much
    structure it holds, in grey levels: a flat or smoothly shaded image has little). ``sharpness``:
    that over the same on the image box-halved, how much of the contrast lies at the finest scale.
    About 0.7 to 1.1 for sharp photos, towards 0.5 for an image with no detail finer than a few
    pixels, NULL for a flat image. The analysis image has a shorter side of 48 to 127 pixels
    whatever the file's size (a JPEG's 1/8 draft), so a blur is judged relative to the picture."""
    levels = analysis.levels
    if min(levels.shape) < 4:
        return {"sharpness": None, "detail": None}
    rows, cols = levels.shape[0] // 2 * 2, levels.shape[1] // 2 * 2
    pairs = levels[0:rows:2, :cols] + levels[1:rows:2, :cols]
    coarse = _gradient_rms(pairs[:, 0::2] + pairs[:, 1::2]) / 4.0  # of the 2x2 block means
    fine = _gradient_rms(levels)
    return {"sharpness": round(fine / coarse, 4) if coarse > FLAT else None, "detail": round(fine, 3)}


def _gradient_rms(levels: NDArray[np.int32]) -> float:
    """RMS difference of neighbouring values, summed as integers (exact, whatever the order)."""
    across, down = levels[:, 1:] - levels[:, :-1], levels[1:, :] - levels[:-1, :]
    energy = _squares(across.ravel()) + _squares(down.ravel())
    return math.sqrt(energy / (across.size + down.size))


def _squares(values: NDArray[np.int32]) -> int:
    """Sum of the squares of differences of grey levels, exact: in 64-bit integers (a long, noisy
    analysis image sums past 2**31). np.dot of two flat vectors: a third of einsum's time."""
    wide = values.astype(np.int64)
    return int(np.dot(wide, wide))


Measure = Callable[[Analysis], Row]
MEASURES: list[Measure] = [colour, hashes, signature, exposure, chroma, sharpness]


def analyse(im: Image.Image, orientation: int | None) -> Row:
    """Every measure of an opened image, decoded once (see imgindex.extract)."""
    full = im.size
    drafted = im.format in DRAFT_FORMATS
    block = decode(im)
    rgb = to_rgb8(im)
    factor = max(1, min(rgb.size) // ANALYSIS_SIDE)
    small = _reduced(rgb, factor)
    analysis = Analysis(rgb, small, BlockGrid(full, block * factor, orientation), orientation, drafted)
    row: Row = {}
    for measure in MEASURES:
        row.update(measure(analysis))
    return row
