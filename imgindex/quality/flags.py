"""The image-quality flags: what each one judges, on which stored measure, with which threshold.

Every flag is one ``Flag`` in ``FLAGS``. A flag judges the measures of one split at a time
(``Measures``: arrays of the stored ``images`` columns), so a flag relative to its split (odd_size,
grayscale in a colour split, outlier) is written like one that looks at each image alone. To add
a flag: a function ``(Measures, thresholds) -> (mask, values)``, one ``Flag`` line in ``FLAGS``, its
README row and tests; a new measure goes into ``imgindex.extract.measures`` first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Mask = NDArray[np.bool_]
Judged = tuple[Mask, Floats]  # which images carry the flag; the value each was judged on
Thresholds = Mapping[str, float]  # flag name -> threshold

# the quality measures of images (imgindex.extract.measures), as every output lists them
MEASURES = (
    "brightness",
    "luma_std",
    "brightness_p5",
    "brightness_p95",
    "dark_share",
    "light_share",
    "entropy",
    "chroma",
    "sharpness",
    "detail",
)
COLUMNS = ("width", "height", *MEASURES)  # the images columns a flag may read, in the order Measures holds them


@dataclass(frozen=True)
class Measures:
    """The stored measures of one split's readable images, one array per column (NaN where NULL)."""

    ids: NDArray[np.int64]
    values: Mapping[str, Floats]

    def __getitem__(self, column: str) -> Floats:
        return self.values[column]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_rows(cls, rows: list[tuple[Any, ...]]) -> Measures:
        """From rows of (id, *COLUMNS)."""
        table = np.array(rows, dtype=np.float64).reshape(len(rows), len(COLUMNS) + 1)
        ids = table[:, 0].astype(np.int64)
        return cls(ids, {name: table[:, i + 1] for i, name in enumerate(COLUMNS)})

    @cached_property
    def outliers(self) -> tuple[Floats, NDArray[np.object_]]:
        """Outlier scores and measures (outlier_scores)."""
        return _outlier_scores(self)

    @property
    def aspect(self) -> Floats:
        """Shorter side over longer side: 1 for a square, towards 0 for a strip."""
        return np.minimum(self["width"], self["height"]) / np.maximum(self["width"], self["height"])

    @property
    def side(self) -> Floats:
        """Square root of the pixel count: the side of a square of the same area."""
        return np.sqrt(self["width"] * self["height"])


def dark(m: Measures, thresholds: Thresholds) -> Judged:
    """Nearly all pixels are dim: the 95th percentile of brightness under the threshold (a night photo with a few lights is dark)."""
    threshold = thresholds["dark"]
    p95 = m["brightness_p95"] / 255.0
    return p95 < threshold, p95


ENTROPY_FLOOR = 2.0  # bits: under this an image is a few flat levels (a logo, a blank frame)
LIT_SHADOWS = 0.2  # the 5th percentile of brightness an overexposed image keeps at least (of white)
CLIPPED = 250  # the 95th percentile of an overexposed image reaches this grey level: its highlights clip


def light(m: Measures, thresholds: Thresholds) -> Judged:
    """Blown out: at least the threshold's share of the pixels near white, the highlights clipped
    (95th percentile at CLIPPED or more), the shadows lifted (5th percentile at least LIT_SHADOWS of
    white), and more than a few flat levels (entropy of ENTROPY_FLOOR or more). A logo, a page or a
    dark subject on a white ground keeps dark pixels or few levels, and a bright sky that does not
    clip is not overexposed."""
    threshold = thresholds["light"]
    share = m["light_share"]
    exposed = (m["brightness_p95"] >= CLIPPED) & (m["brightness_p5"] / 255.0 >= LIT_SHADOWS)
    return exposed & (m["entropy"] >= ENTROPY_FLOOR) & (share >= threshold), share


def low_information(m: Measures, thresholds: Thresholds) -> Judged:
    """Little structure: detail (RMS difference of neighbouring grey levels) under the threshold, or
    entropy under ENTROPY_FLOOR. A dark or overexposed image, whose exposure squeezes its levels and
    so its detail, is low-information only by the entropy floor (a blank frame)."""
    threshold = thresholds["low_information"]
    exposed = dark(m, thresholds)[0] | light(m, thresholds)[0]
    few_levels = m["entropy"] < ENTROPY_FLOOR
    return few_levels | (~exposed & (m["detail"] < threshold)), m["detail"]


def blurry(m: Measures, thresholds: Thresholds) -> Judged:
    """Little contrast at the finest scale: sharpness under the threshold, among images with
    enough information to judge (a flat or near-constant image is low_information, not blurry)."""
    threshold = thresholds["blurry"]
    judged = ~low_information(m, thresholds)[0] & ~np.isnan(m["sharpness"])
    return judged & (np.nan_to_num(m["sharpness"], nan=1.0) < threshold), m["sharpness"]


def odd_aspect_ratio(m: Measures, thresholds: Thresholds) -> Judged:
    """Shorter side over longer side under the threshold."""
    threshold = thresholds["odd_aspect_ratio"]
    return m.aspect < threshold, m.aspect


ODD_SIZE_MIN_SPLIT = 5  # images a split needs before a size is judged odd within it
ODD_SIZE_MIN_SPREAD = 0.1  # the spread of sides, at least this share of the median side


def odd_size_limits(side: Floats, threshold: float) -> tuple[float, float, float] | None:
    """The sides odd_size judges ordinary, (low, high), and the split's median side: the
    quartiles widened by ``threshold`` spreads, the spread at least ODD_SIZE_MIN_SPREAD of the
    median; None in a split of fewer than ODD_SIZE_MIN_SPLIT images."""
    if len(side) < ODD_SIZE_MIN_SPLIT:
        return None
    q1, median, q3 = np.percentile(side, [25, 50, 75])
    spread = max(q3 - q1, ODD_SIZE_MIN_SPREAD * median)
    return float(q1 - threshold * spread), float(q3 + threshold * spread), float(median)


def odd_size(m: Measures, thresholds: Thresholds) -> Judged:
    """Far from the split's own sizes: the side (square root of the pixel count) outside
    odd_size_limits, so a split of one size flags only sizes some 30 % off. Values: the side over
    the split's median side."""
    side = m.side
    limits = odd_size_limits(side, thresholds["odd_size"])
    if limits is None:
        return np.zeros(len(side), dtype=bool), side / np.median(side)
    low, high, median = limits
    return (side < low) | (side > high), side / median


def grayscale(m: Measures, thresholds: Thresholds) -> Judged:
    """No colour in a colour split: chroma (the mean spread of a pixel's channels, 0..255) under
    the threshold, where most of the split's images have colour."""
    threshold = thresholds["grayscale"]
    grey = m["chroma"] < threshold
    colour_split = np.count_nonzero(~grey) * 2 > len(grey)
    return grey & colour_split, m["chroma"]


# What an image's outlier score compares with its split, and the least spread each is given: the
# continuous measures of the picture. Size, aspect ratio and colour are left to odd_size,
# odd_aspect_ratio and grayscale: a split often holds two sizes, or grey and colour images, and a
# second mode is not an outlier.
OUTLIER_MEASURES: dict[str, tuple[Callable[[Measures], Floats], float]] = {
    "brightness": (lambda m: m["brightness"], 3.0),
    "luma_std": (lambda m: m["luma_std"], 3.0),
    "entropy": (lambda m: m["entropy"], 0.15),
    "sharpness": (lambda m: m["sharpness"], 0.03),
}
OUTLIER_MIN_SPLIT = 20  # images a split needs before its images get outlier scores
MAD_TO_SIGMA = 1.4826  # the median absolute deviation of a normal distribution, in standard deviations


def outlier_scores(m: Measures) -> tuple[Floats, NDArray[np.object_]]:
    """Each image's largest robust z-score over OUTLIER_MEASURES (distance from the split's
    median in median absolute deviations, scaled to standard deviations), and its measure; NaN
    and None in a split of fewer than OUTLIER_MIN_SPLIT images. Computed once per Measures."""
    return m.outliers


def _outlier_scores(m: Measures) -> tuple[Floats, NDArray[np.object_]]:
    n = len(m)
    if n < OUTLIER_MIN_SPLIT:
        return np.full(n, np.nan), np.full(n, None, dtype=object)
    names = np.array([*OUTLIER_MEASURES, None], dtype=object)
    z = np.stack([_robust_z(fn(m), floor) for fn, floor in OUTLIER_MEASURES.values()])
    worst = np.nan_to_num(z, nan=-1.0).argmax(axis=0)
    scores = z[worst, np.arange(n)]
    return scores, names[np.where(np.isnan(scores), len(names) - 1, worst)]


def _robust_z(x: Floats, floor: float) -> Floats:
    known = x[~np.isnan(x)]
    if len(known) == 0:
        return np.full(len(x), np.nan)
    median = np.median(known)
    spread = max(MAD_TO_SIGMA * float(np.median(np.abs(known - median))), floor)
    return np.abs(x - median) / spread


def outlier(m: Measures, thresholds: Thresholds) -> Judged:
    """Far from the split on some measure: the outlier score over the threshold."""
    threshold = thresholds["outlier"]
    scores, _ = outlier_scores(m)
    return np.nan_to_num(scores, nan=0.0) > threshold, scores


LOWER, HIGHER, FARTHER = "lower", "higher", "farther from 1"  # Flag.worse


@dataclass(frozen=True)
class Flag:
    name: str
    judge: Callable[[Measures, Thresholds], Judged]
    default: float  # the threshold's default
    rule: str  # the sentence every output prints, {t} the threshold
    measure: str  # the column (or derived measure) the value is
    worse: str = LOWER  # which values are worse: LOWER, HIGHER or FARTHER (from 1), for "worst first"


FLAGS: tuple[Flag, ...] = (
    Flag("dark", dark, 0.32, "95th percentile of brightness under {t} of white", "brightness_p95"),
    Flag(
        "light",
        light,
        0.4,
        "at least {t} of the pixels near white (grey level 230 or more), the 95th percentile at 250 or more, "
        "the 5th percentile at least 0.2 of white, entropy of 2 bits or more",
        "light_share",
        HIGHER,
    ),
    Flag("blurry", blurry, 0.62, "sharpness under {t}, among images not low_information", "sharpness"),
    Flag(
        "low_information",
        low_information,
        5.0,
        "detail (RMS difference of neighbouring grey levels) under {t}, or entropy under 2 bits "
        "(a dark or light image: the entropy alone)",
        "detail",
    ),
    Flag("odd_aspect_ratio", odd_aspect_ratio, 0.35, "shorter side under {t} of the longer", "aspect_ratio"),
    Flag(
        "odd_size",
        odd_size,
        3.0,
        "side (square root of the pixels) over {t} interquartile ranges outside the split's quartiles",
        "size_to_median",
        FARTHER,
    ),
    Flag("grayscale", grayscale, 1.0, "chroma under {t} of 255, in a split where most images have colour", "chroma"),
    Flag("outlier", outlier, 6.0, "outlier score over {t} (robust z-score against the split)", "outlier_score", HIGHER),
)
BY_NAME = {flag.name: flag for flag in FLAGS}
DEFAULTS = {flag.name: flag.default for flag in FLAGS}


def judge(m: Measures, thresholds: Thresholds) -> list[tuple[int, str, float | None]]:
    """(image id, flag, value) for every flag every image of one split carries."""
    found: list[tuple[int, str, float | None]] = []
    if not len(m):
        return found
    for flag in FLAGS:
        mask, values = flag.judge(m, thresholds)
        for i in np.flatnonzero(mask):
            value = float(values[i])
            found.append((int(m.ids[i]), flag.name, None if np.isnan(value) else round(value, 4)))
    return found


def rule_lines(thresholds: Thresholds) -> list[str]:
    """One sentence per flag, with the threshold applied."""
    return [f"{flag.name}: {flag.rule.format(t=_number(thresholds[flag.name]))}" for flag in FLAGS]


def _number(value: float) -> str:
    return f"{value:g}"
