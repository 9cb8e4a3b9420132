"""Small numeric helpers that never produce NaN or Infinity in their results."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


def number(value: float | int | None, digits: int = 4) -> float | int | None:
    """A JSON-safe number: None for NaN/Inf, Python types, rounded floats."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits)


def describe(values: np.ndarray, digits: int = 4) -> dict[str, float | int | None]:
    """count, mean, std, min, median (the true median), max; None entries when empty."""
    v = finite(values)
    if v.size == 0:
        return {"count": 0, "mean": None, "std": None, "min": None, "median": None, "max": None}
    return {
        "count": int(v.size),
        "mean": number(v.mean(), digits),
        "std": number(v.std(), digits),
        "min": number(v.min(), digits),
        "median": number(np.median(v), digits),
        "max": number(v.max(), digits),
    }


def histogram(values: np.ndarray, edges: np.ndarray) -> dict[str, list[Any]]:
    v = finite(values)
    counts, _ = np.histogram(np.clip(v, edges[0], edges[-1]), bins=edges)
    return {"bin_edges": [number(e) for e in edges], "counts": [int(c) for c in counts]}


def share(part: int | float, whole: int | float) -> float | None:
    """part / whole, or None when whole is 0."""
    return None if not whole else float(part) / float(whole)


def percent(part: int | float, whole: int | float) -> str:
    value = share(part, whole)
    return "n/a" if value is None else f"{100 * value:.1f}%"


def json_safe(value: Any) -> Any:
    """Recursively convert numpy scalars/arrays and non-finite floats into strict-JSON values."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(float(value)) else None
    return value
