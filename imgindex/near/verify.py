"""Verification of a near pair: where two images differ, not only how much.

Every image stores a signature: its grey levels, upright, box-resized to 32x32 in the full
image's coordinates (imgindex.extract.measures.signature). Two signatures are compared in four
steps:

1. Tone: each is standardised to mean 0 and standard deviation 1, so brightness, contrast and
   grey copies of a colour photo compare equal.
2. Geometry: a light crop or a change of aspect moves content across the grid. For each axis the
   scale (1 down to 0.94) and offset (start, centre, end), or the shift of a window of the same
   size (up to 3 % of the axis), that best line up the two images' mean profiles are chosen (no
   resampling unless it lines them up 10 % better), one image is resampled onto the other's
   grid, and the direction (a onto b or b onto a) whose profiles line up better is kept.
3. Where: the aligned difference is averaged over 2x2 cells (16x16), which cancels the small
   alternating errors of resampling and re-encoding but keeps a solid object that moved.
4. Verdict: ``change`` is the largest cell of that difference, ``background`` its 75th percentile.
   Above MAX_BACKGROUND the images differ everywhere: not the same picture at all (unrelated
   photos differ by more than 1 standard deviation in most cells). A re-encode, resize, recolour or light crop differs a little everywhere (low change, or change
   close to background); a different photo of one scene differs a lot in one place and little
   elsewhere: change > SCENE_CHANGE and change > SCENE_RATIO * background. ``where`` is the cell
   of the largest difference: a difference that stands out (``localised``) on a labelled object
   makes a similar scene of a pair whose labels agree (imgindex.near.verdict).

The thresholds are measured by scripts/bench_near_accuracy.py on planted copies of coco128 photos
and on every pair of the chess-board photos within 8 dHash bits (one board, a fixed tripod,
pieces moved between shots).
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from ..executors.local import default_workers

SIDE = 32  # signature side (imgindex.extract.measures.SIGNATURE_SIDE)
SCALES = (1.0, 0.99, 0.98, 0.97, 0.96, 0.95, 0.94)  # crops of up to 6 % per axis are lined up
SHIFTS = (-0.03, -0.015, 0.015, 0.03)  # and windows of one size shifted by up to 3 % of the axis
SCENE_CHANGE = 0.8  # in standard deviations of the image's grey levels
SCENE_RATIO = 8.0
CLEAR_COPY = 0.1  # below this change the pixels agree everywhere: labels cannot make it a scene
MAX_BACKGROUND = 0.5  # a typical cell differing more: not the same picture (unrelated photos: > 1)
ALIGN_ABOVE = 0.1  # a pair differing more than this in a typical cell is tried lined up
IDENTITY_MARGIN = 1.1  # another resampler must line the profiles up 10 % better than none
BACKGROUND_RANK = (SIDE // 2) ** 2 * 3 // 4  # the 75th percentile of the 16x16 cells
VERSION = "signature-v3"

F32 = NDArray[np.float32]


@dataclass(frozen=True)
class Comparison:
    """Per pair: the largest local difference and the typical one (standard deviations), and
    where the largest is: the index of its cell in the 16x16 grid, row-major (-1: not compared)."""

    change: NDArray[np.float64]
    background: NDArray[np.float64]
    where: NDArray[np.int64] | None = None

    @property
    def localised(self) -> NDArray[np.bool_]:
        """A difference standing out from the rest of the picture, however small."""
        return (self.change > CLEAR_COPY) & (self.change > SCENE_RATIO * self.background)

    @property
    def scene(self) -> NDArray[np.bool_]:
        """A lot in one place, little elsewhere: a different photo of the same scene."""
        return (self.change > SCENE_CHANGE) & (self.change > SCENE_RATIO * self.background)

    @property
    def unrelated(self) -> NDArray[np.bool_]:
        """Different everywhere: not the same picture."""
        return self.background > MAX_BACKGROUND

    @property
    def clear_copy(self) -> NDArray[np.bool_]:
        return self.change <= CLEAR_COPY


def decode(blobs: list[bytes | None]) -> tuple[F32, NDArray[np.bool_]]:
    """(signatures as (n, 32, 32) floats, which were present)."""
    size = SIDE * SIDE
    present = np.array([b is not None and len(b) == size for b in blobs], dtype=bool)
    raw = b"".join(b if ok and b is not None else bytes(size) for b, ok in zip(blobs, present))
    grids = np.frombuffer(raw, dtype=np.uint8).reshape(-1, SIDE, SIDE).astype(np.float32)
    return grids, present


@lru_cache(maxsize=1)
def _resamplers() -> F32:
    """(k, 32, 32) linear resampling matrices, one per (scale, offset) of an axis."""
    options = [(1.0, 0.0)] + [(s, o * (1 - s) / 2) for s in SCALES[1:] for o in (0, 1, 2)]
    options += [(1.0, shift) for shift in SHIFTS]
    return np.stack([_resampler(scale, start) for scale, start in options]).astype(np.float32)


def _resampler(scale: float, start: float) -> NDArray[np.float64]:
    """Matrix taking SIDE cells to SIDE samples of the window [start, start + scale] of them."""
    pos = (start + (np.arange(SIDE) + 0.5) / SIDE * scale) * SIDE - 0.5
    pos = np.clip(pos, 0, SIDE - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, SIDE - 1)
    frac = pos - lo
    m = np.zeros((SIDE, SIDE))
    m[np.arange(SIDE), lo] += 1 - frac
    m[np.arange(SIDE), hi] += frac
    return m


def _standard(x: F32, axes: tuple[int, ...]) -> F32:
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    return (x - mean) / np.maximum(std, 1e-3)


def _profiles(signatures: F32, rows: NDArray[np.intp]) -> tuple[F32, F32, NDArray[np.intp]]:
    """The row and column profiles of the distinct images among rows, once each: standardised as
    they are, (u, 2, 32), and through every resampler, (u, 2, k, 32); and each row's image."""
    distinct, image = np.unique(rows, return_inverse=True)
    grids = signatures[distinct]
    plain = np.stack([grids.mean(axis=2), grids.mean(axis=1)], axis=1)
    options = _resamplers()
    warped = (plain @ options.reshape(-1, SIDE).T).reshape(len(distinct), 2, len(options), SIDE)
    warped -= warped.mean(axis=3, keepdims=True)
    warped /= np.maximum(np.sqrt((warped * warped).mean(axis=3, keepdims=True)), 1e-3)
    return _standard(plain, (-1,)), warped, image.ravel()


def _best_resamplers(warped: F32, dst: F32) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """Per pair, the resampler that best lines the source profile up with dst (n, 32), given the
    source's profile through every resampler, standardised (n, k, 32); and its error. The
    identity is kept unless another is clearly better (noise does not move an image)."""
    error = np.abs(warped - dst[:, None, :]).mean(axis=2)
    best = error.argmin(axis=1)
    lowest = error[np.arange(len(best)), best]
    keep = error[:, 0] <= IDENTITY_MARGIN * lowest + 1e-3
    best[keep] = 0
    return best, np.where(keep, error[:, 0], lowest)


def _resample(src: F32, rows: NDArray[np.intp], cols: NDArray[np.intp]) -> F32:
    """src[k] with the resamplers rows[k] (down its rows) and cols[k] (across its columns):
    one 32x32 matrix product per pair and axis, so that a pair's values are the same to the bit
    whichever other pairs it is computed with (a product over many pairs at once takes other
    summation orders as the batch's size changes, and moved a stored comparison's fourth decimal)."""
    m = _resamplers()
    return np.matmul(np.matmul(m[rows], src), m[cols].transpose(0, 2, 1))


def _pooled(x: F32) -> F32:
    """Each 2x2 block's mean: summed pairwise, (a + b) + (c + d), as NumPy's mean over the block's
    two axes sums them, so the values are the same to the bit (16 times faster)."""
    top = x[:, 0::2, 0::2] + x[:, 0::2, 1::2]
    bottom = x[:, 1::2, 0::2] + x[:, 1::2, 1::2]
    return (top + bottom) * np.float32(0.25)


def cells(signatures: F32) -> F32:
    """Each signature standardised and averaged over 2x2 cells: (n, 256). Per image, so a scan
    computes it once for all the pairs an image is in."""
    return _pooled(_standard(signatures, (1, 2))).reshape(len(signatures), (SIDE // 2) ** 2)


Measure = tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.intp]]  # change, background, where


def _measure(x: F32, y: F32) -> Measure:
    """(change, background, where) of signatures on one grid: standardised, pooled, their difference."""
    return _cell_measure(cells(x), cells(y))


def _cell_measure(x: F32, y: F32) -> Measure:
    diff = np.abs(x - y)
    where = diff.argmax(axis=1)
    change = np.take_along_axis(diff, where[:, None], axis=1)[:, 0]
    return change, np.partition(diff, BACKGROUND_RANK, axis=1)[:, BACKGROUND_RANK], where


def _lined_up(signatures: F32, image_cells: F32, ra: NDArray[np.intp], rb: NDArray[np.intp]) -> Measure:
    """_measure of signatures[ra[k]] and signatures[rb[k]] after one is resampled onto the other:
    the direction (a onto b, or b onto a) and the resamplers whose row and column profiles line
    up best."""
    plain, warped, image = _profiles(signatures, np.concatenate([ra, rb]))
    ia, ib = image[: len(ra)], image[len(ra) :]
    ab_rows, ab_row_error = _best_resamplers(warped[ia, 0], plain[ib, 0])
    ab_cols, ab_col_error = _best_resamplers(warped[ia, 1], plain[ib, 1])
    ba_rows, ba_row_error = _best_resamplers(warped[ib, 0], plain[ia, 0])
    ba_cols, ba_col_error = _best_resamplers(warped[ib, 1], plain[ia, 1])
    first = ab_row_error + ab_col_error <= ba_row_error + ba_col_error
    src, dst = np.where(first, ra, rb), np.where(first, rb, ra)
    rows, cols = np.where(first, ab_rows, ba_rows), np.where(first, ab_cols, ba_cols)
    return _cell_measure(_resampled_cells(signatures, image_cells, src, rows, cols), image_cells[dst])


def _resampled_cells(
    signatures: F32, image_cells: F32, src: NDArray[np.intp], rows: NDArray[np.intp], cols: NDArray[np.intp]
) -> F32:
    """cells() of signatures[src[k]] resampled by rows[k] and cols[k]; the identity costs nothing."""
    out = image_cells[src]
    moved = np.flatnonzero((rows > 0) | (cols > 0))
    if len(moved):
        out[moved] = cells(_resample(signatures[src[moved]], rows[moved], cols[moved]))
    return out


def compare_rows(
    signatures: F32, image_cells: F32, ra: NDArray[np.intp], rb: NDArray[np.intp], chunk: int = 4096
) -> Comparison:
    """Compare signatures[ra[k]] and signatures[rb[k]] for every k; image_cells = cells(signatures),
    computed once per image. Pairs that already agree on the grid as it is (background up to
    ALIGN_ABOVE) are not resampled; the others are, and keep whichever measure differs less.
    In chunks of pairs, so that memory stays bounded; many pairs are split between threads (NumPy
    lets go of the interpreter while it computes): a pair's measure is the same to the bit whichever
    thread and chunk compute it (see _resample)."""
    parts = min(default_workers(), MAX_THREADS, len(ra) // PAIRS_PER_THREAD)
    if parts < 2:
        return _compare_rows(signatures, image_cells, ra, rb, chunk)
    bounds = np.linspace(0, len(ra), parts + 1).astype(int)
    spans = [slice(lo, hi) for lo, hi in itertools.pairwise(bounds.tolist())]
    with ThreadPoolExecutor(parts) as pool:
        done = list(pool.map(lambda s: _compare_rows(signatures, image_cells, ra[s], rb[s], chunk), spans))
    where = np.concatenate([c.where for c in done if c.where is not None])
    return Comparison(np.concatenate([c.change for c in done]), np.concatenate([c.background for c in done]), where)


PAIRS_PER_THREAD = 512  # fewer pairs than this are compared on one thread
MAX_THREADS = 4


def _compare_rows(
    signatures: F32, image_cells: F32, ra: NDArray[np.intp], rb: NDArray[np.intp], chunk: int
) -> Comparison:
    change = np.zeros(len(ra), dtype=np.float32)
    background = np.zeros(len(ra), dtype=np.float32)
    where = np.zeros(len(ra), dtype=np.int64)
    for k in range(0, len(ra), chunk):
        span = slice(k, k + chunk)
        change[span], background[span], where[span] = _cell_measure(image_cells[ra[span]], image_cells[rb[span]])
    todo = np.flatnonzero(background > ALIGN_ABOVE)
    for k in range(0, len(todo), chunk):
        part = todo[k : k + chunk]
        moved_change, moved_background, moved_where = _lined_up(signatures, image_cells, ra[part], rb[part])
        kept = moved_background < background[part]
        better = part[kept]
        change[better], background[better], where[better] = (
            moved_change[kept],
            moved_background[kept],
            moved_where[kept],
        )
    return Comparison(change.astype(np.float64), background.astype(np.float64), where)
