"""Verification of a near pair: where two images differ, not only how much.

Every image stores a signature: its grey levels, upright, box-resized to 32x32
(imgindex.extract.measures.signature). Two signatures are compared in four steps:

1. Tone: each is standardised to mean 0 and standard deviation 1, so brightness, contrast and
   grey copies of a colour photo compare equal.
2. Geometry: a light crop or a change of aspect moves content across the grid. For each axis the
   scale (1 down to 0.94) and offset (start, centre, end) that best line up the two images' mean
   profiles are chosen, one image is resampled onto the other's grid, and the direction (a onto b
   or b onto a) with the smaller median difference is kept.
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


def _best_resampler(src: F32, dst: F32) -> NDArray[np.intp]:
    """Per pair, the resampler that best lines src's profile (n, 32) up with dst's."""
    warped = np.einsum("kij,nj->nki", _resamplers(), src)
    error = np.abs(_standard(warped, (-1,)) - _standard(dst, (-1,))[:, None, :]).mean(axis=-1)
    return np.asarray(error.argmin(axis=1))


def _onto(src: F32, dst: F32) -> tuple[F32, F32]:
    """src resampled onto dst's grid, both standardised."""
    m = _resamplers()
    rows, cols = (
        _best_resampler(src.mean(axis=2), dst.mean(axis=2)),
        _best_resampler(src.mean(axis=1), dst.mean(axis=1)),
    )
    warped = m[rows] @ src @ m[cols].transpose(0, 2, 1)
    return _standard(warped, (1, 2)), _standard(dst, (1, 2))


def _pooled(x: F32) -> F32:
    return x.reshape(len(x), SIDE // 2, 2, SIDE // 2, 2).mean(axis=(2, 4))


def compare(a: F32, b: F32) -> Comparison:
    """Compare signatures a[k] and b[k] for every k (see the module docstring)."""
    if len(a) == 0:
        empty = np.zeros(0)
        return Comparison(empty, empty)
    diffs = []
    for src, dst in ((a, b), (b, a)):
        x, y = _onto(src, dst)
        diffs.append((np.abs(_pooled(x) - _pooled(y)).reshape(len(a), -1), np.abs(x - y).reshape(len(a), -1)))
    first = np.median(diffs[0][1], axis=1) <= np.median(diffs[1][1], axis=1)
    pooled = np.where(first[:, None], diffs[0][0], diffs[1][0])
    return Comparison(pooled.max(axis=1).astype(np.float64), np.percentile(pooled, 75, axis=1).astype(np.float64))


def compare_chunked(a: F32, b: F32, chunk: int = 4096) -> Comparison:
    """compare() in chunks of pairs, so memory stays bounded for many candidate pairs."""
    parts = [compare(a[k : k + chunk], b[k : k + chunk]) for k in range(0, len(a), chunk)]
    if not parts:
        return compare(a, b)
    return Comparison(np.concatenate([p.change for p in parts]), np.concatenate([p.background for p in parts]))
