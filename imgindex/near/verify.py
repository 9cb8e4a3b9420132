"""Verification of a near pair: where two images differ, not only how much.

Every image stores a signature: its grey levels, upright, box-resized to 32x32
(imgindex.extract.measures.signature). Two signatures are compared in four steps:

1. Tone: each is standardised to mean 0 and standard deviation 1, so brightness, contrast and
   grey copies of a colour photo compare equal.
2. Geometry: a light crop or a change of aspect moves content across the grid. For each axis the
   scale (1 down to 0.94) and offset (start, centre, end) that best line up the two images' mean
   profiles are chosen (no resampling unless it lines them up 10 % better), one image is
   resampled onto the other's grid, and the direction (a onto b or b onto a) whose profiles line
   up better is kept.
3. Where: the aligned difference is averaged over 2x2 cells (16x16), which cancels the small
   alternating errors of resampling and re-encoding but keeps a solid object that moved.
4. Verdict: ``change`` is the largest cell of that difference, ``background`` its 75th percentile.
   Above MAX_BACKGROUND the images differ everywhere: not the same picture at all (unrelated
   photos differ by more than 1 standard deviation in most cells). A re-encode, resize, recolour or light crop differs a little everywhere (low change, or change
   close to background); a different photo of one scene differs a lot in one place and little
   elsewhere: change > SCENE_CHANGE and change > SCENE_RATIO * background.

The thresholds are measured by scripts/bench_near_accuracy.py on planted copies of coco128 photos
and on every pair of the chess-board photos within 8 dHash bits (one board, a fixed tripod,
pieces moved between shots).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

SIDE = 32  # signature side (imgindex.extract.measures.SIGNATURE_SIDE)
SCALES = (1.0, 0.99, 0.98, 0.97, 0.96, 0.95, 0.94)  # crops of up to 6 % per axis are lined up
SCENE_CHANGE = 0.8  # in standard deviations of the image's grey levels
SCENE_RATIO = 8.0
CLEAR_COPY = 0.1  # below this change the pixels agree everywhere: labels cannot make it a scene
MAX_BACKGROUND = 0.5  # a typical cell differing more: not the same picture (unrelated photos: > 1)
ALIGN_ABOVE = 0.1  # a pair differing more than this in a typical cell is tried lined up
IDENTITY_MARGIN = 1.1  # another resampler must line the profiles up 10 % better than none
BACKGROUND_RANK = (SIDE // 2) ** 2 * 3 // 4  # the 75th percentile of the 16x16 cells
VERSION = "signature-v1"

F32 = NDArray[np.float32]


@dataclass(frozen=True)
class Comparison:
    """Per pair: the largest local difference and the typical one (standard deviations)."""

    change: NDArray[np.float64]
    background: NDArray[np.float64]

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


def _best_resamplers(src: F32, dst: F32) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """Per pair, the resampler that best lines src's profile (n, 32) up with dst's, and its error.
    The identity is kept unless another is clearly better (noise does not move an image)."""
    warped = np.einsum("kij,nj->nki", _resamplers(), src)
    error = np.abs(_standard(warped, (-1,)) - _standard(dst, (-1,))[:, None, :]).mean(axis=-1)
    best = error.argmin(axis=1)
    lowest = error[np.arange(len(best)), best]
    keep = error[:, 0] <= IDENTITY_MARGIN * lowest + 1e-3
    best[keep] = 0
    return best, np.where(keep, error[:, 0], lowest)


def _aligned(src: F32, dst: F32) -> tuple[F32, NDArray[np.float32]]:
    """src resampled onto dst's grid by the best resamplers of its row and column profiles (the
    identity costs nothing), and how well the profiles line up."""
    m = _resamplers()
    rows, row_error = _best_resamplers(src.mean(axis=2), dst.mean(axis=2))
    cols, col_error = _best_resamplers(src.mean(axis=1), dst.mean(axis=1))
    out = src.copy()
    moved = np.flatnonzero(rows)
    out[moved] = m[rows[moved]] @ out[moved]
    moved = np.flatnonzero(cols)
    out[moved] = out[moved] @ m[cols[moved]].transpose(0, 2, 1)
    return out, row_error + col_error


def _pooled(x: F32) -> F32:
    return x.reshape(len(x), SIDE // 2, 2, SIDE // 2, 2).mean(axis=(2, 4))


def cells(signatures: F32) -> F32:
    """Each signature standardised and averaged over 2x2 cells: (n, 256). Per image, so a scan
    computes it once for all the pairs an image is in."""
    return _pooled(_standard(signatures, (1, 2))).reshape(len(signatures), (SIDE // 2) ** 2)


def _measure(x: F32, y: F32) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(change, background) of signatures on one grid: standardised, pooled, their difference."""
    return _cell_measure(cells(x), cells(y))


def _cell_measure(x: F32, y: F32) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    diff = np.abs(x - y)
    return diff.max(axis=1), np.partition(diff, BACKGROUND_RANK, axis=1)[:, BACKGROUND_RANK]


def _lined_up(a: F32, b: F32) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """_measure after one image is resampled onto the other (the direction whose profiles line up
    better)."""
    a_on_b, a_error = _aligned(a, b)
    b_on_a, b_error = _aligned(b, a)
    first = (a_error <= b_error)[:, None, None]
    return _measure(np.where(first, a_on_b, b_on_a), np.where(first, b, a))


def compare(a: F32, b: F32, a_cells: F32 | None = None, b_cells: F32 | None = None) -> Comparison:
    """Compare signatures a[k] and b[k] for every k (see the module docstring); ``*_cells``: their
    cells() when already computed. Pairs that already agree on the grid as it is (background up to
    ALIGN_ABOVE) are not resampled; the others are, and keep whichever measure differs less."""
    if len(a) == 0:
        empty = np.zeros(0)
        return Comparison(empty, empty)
    a_cells = cells(a) if a_cells is None else a_cells
    b_cells = cells(b) if b_cells is None else b_cells
    change, background = _cell_measure(a_cells, b_cells)
    todo = np.flatnonzero(background > ALIGN_ABOVE)
    if len(todo):
        moved_change, moved_background = _lined_up(a[todo], b[todo])
        better = moved_background < background[todo]
        change[todo[better]], background[todo[better]] = moved_change[better], moved_background[better]
    return Comparison(change.astype(np.float64), background.astype(np.float64))


def compare_rows(
    signatures: F32, image_cells: F32, ra: NDArray[np.intp], rb: NDArray[np.intp], chunk: int = 4096
) -> Comparison:
    """compare() of signatures[ra[k]] and signatures[rb[k]], in chunks of pairs so that memory
    stays bounded for many candidate pairs; image_cells = cells(signatures)."""
    parts = [
        compare(signatures[x], signatures[y], image_cells[x], image_cells[y])
        for x, y in ((ra[k : k + chunk], rb[k : k + chunk]) for k in range(0, len(ra), chunk))
    ]
    if not parts:
        return compare(signatures[:0], signatures[:0])
    return Comparison(np.concatenate([p.change for p in parts]), np.concatenate([p.background for p in parts]))
