"""Difference hashes: ImageHash's on a full decode, or a Lanczos resize computed from JPEG block means."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .decode import TRANSPOSED, orient_array, upright

Floats = NDArray[np.float64]


def full_dhash(rgb: Image.Image, orientation: int | None) -> str:
    """ImageHash's dHash of a fully decoded image (as 8-bit RGB) as displayed: grey, Lanczos to 9x8."""
    (gray,) = upright(rgb.convert("L"), orientation=orientation)
    small = np.asarray(gray.resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    return bits_hex(small)


class BlockGrid:
    """Lanczos resizes of the full image computed from an analysis image of block means.

    ``full`` is the stored size of the full image, ``block`` how many full pixels one analysis
    pixel spans per axis; resizes come out upright (EXIF orientation applied)."""

    def __init__(self, full: tuple[int, int], block: int, orientation: int | None) -> None:
        self.full, self.block, self.orientation = full, block, orientation or 1

    def resize(self, gray: Floats, cols: int, rows: int) -> Floats:
        """The upright image resized to cols x rows, rounded to whole grey levels."""
        return self._through(block_weights, gray, cols, rows)

    def box(self, gray: Floats, cols: int, rows: int) -> Floats:
        """The upright image box-resized to cols x rows: each output the mean of the full image's
        pixels it covers, from the blocks' overlap with it (a last, partial block weighs what it
        covers), rounded to whole grey levels."""
        return self._through(box_weights, gray, cols, rows)

    def _through(self, weights: Callable[[int, int, int, int], Floats], gray: Floats, cols: int, rows: int) -> Floats:
        """gray through one weights matrix per axis (full size, outputs, block, blocks), upright."""
        if self.orientation in TRANSPOSED:
            cols, rows = rows, cols
        across = weights(self.full[0], cols, self.block, gray.shape[1])
        down = weights(self.full[1], rows, self.block, gray.shape[0])
        stored = down.T @ gray @ across
        stored += 0.5  # floor(x + 0.5) in place: no temporary arrays
        return orient_array(np.floor(stored, out=stored), self.orientation)

    def dhash(self, gray: Floats, hash_size: int) -> str:
        return bits_hex(self.resize(gray, hash_size + 1, hash_size))


@lru_cache(maxsize=1024)  # some 10 KB a matrix: at most about 15 MB per process
def block_weights(full: int, out: int, block: int, blocks: int) -> Floats:
    """(blocks, out) matrix: the weights of a Lanczos (a=3) resize from ``full`` pixels to ``out``,
    summed over each run of ``block`` pixels (the last run may be shorter), each output's weights
    normalised to sum 1.

    The kernel is laid out as Pillow lays it: output i is centred at (i + 0.5) * full / out, and
    the kernel is widened by that scale when shrinking. A run's weight is the kernel's integral
    over the run (the sum over its pixel centres, to well under 1 % for the scales used here)."""
    scale = full / out
    stretch = max(scale, 1.0)
    centres = (np.arange(out) + 0.5) * scale
    edges = np.minimum(np.arange(blocks + 1) * block, full).astype(np.float64)
    cumulative = kernel_integral((edges[None, :] - centres[:, None]) / stretch)
    weights = np.diff(cumulative, axis=1)
    weights /= weights.sum(axis=1, keepdims=True)
    return np.ascontiguousarray(weights.T)


@lru_cache(maxsize=1024)
def box_weights(full: int, out: int, block: int, blocks: int) -> Floats:
    """(blocks, out) matrix: the share of output j's span of the full image, [j, j + 1) * full / out,
    that block i covers, [i * block, (i + 1) * block) cut at ``full``; each column sums to 1."""
    edges = np.minimum(np.arange(blocks + 1) * block, full).astype(np.float64)
    spans = np.arange(out + 1) * (full / out)
    low = np.maximum(edges[:-1, None], spans[None, :-1])
    high = np.minimum(edges[1:, None], spans[None, 1:])
    weights = np.clip(high - low, 0.0, None)
    return np.ascontiguousarray(weights / weights.sum(axis=0, keepdims=True))


@lru_cache(maxsize=1)
def _kernel_table() -> tuple[Floats, Floats]:
    """Points on [-3, 3] and the Lanczos kernel's integral from -3 to each (trapezoids)."""
    x = np.linspace(-3.0, 3.0, 3001)
    values = lanczos(x)
    steps = (values[1:] + values[:-1]) * (x[1] - x[0]) / 2.0
    return x, np.concatenate(([0.0], np.cumsum(steps)))


def kernel_integral(x: Floats) -> Floats:
    """The Lanczos kernel's integral from -3 to x (0 below -3, the whole integral above 3)."""
    points, cumulative = _kernel_table()
    return np.interp(x, points, cumulative)


def lanczos(x: Floats) -> Floats:
    """The Lanczos kernel with a = 3: sinc(x) sinc(x / 3) on [-3, 3), 0 elsewhere."""
    return np.where((x >= -3.0) & (x < 3.0), np.sinc(x) * np.sinc(x / 3.0), 0.0)


def bits_hex(grid: NDArray[Any]) -> str:
    """Difference hash of a (n, n+1) grid in ImageHash's bit order: a bit set where a cell is
    brighter than its left neighbour, row-major, first bit most significant."""
    return np.packbits(grid[:, 1:] > grid[:, :-1]).tobytes().hex()
