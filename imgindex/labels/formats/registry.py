"""The registered label formats: by name (the `--labels` choices, in registration order) and in
detection order."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import overload

from .base import LabelError, LabelFormat

FORMATS: dict[str, LabelFormat] = {}


def register(fmt: LabelFormat) -> LabelFormat:
    """Make `fmt` a choice of `--labels` and, when it has a detect_order, a detected format."""
    if fmt.name in FORMATS:
        raise ValueError(f"label format {fmt.name!r} is already registered")
    FORMATS[fmt.name] = fmt
    return fmt


def unregister(name: str) -> None:
    FORMATS.pop(name, None)


def get(name: str) -> LabelFormat:
    """The format registered as `name`; LabelError for an unknown name."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise LabelError(f"unknown label format {name!r} (known: {', '.join(FORMATS)})")
    return fmt


def detection_order() -> list[LabelFormat]:
    """The formats tried on a folder without --labels, first match wins."""
    return sorted((f for f in FORMATS.values() if f.detect_order is not None), key=rank)


def rank(fmt: LabelFormat) -> float:
    """Where `fmt` comes in detection order (infinity: never detected)."""
    return math.inf if fmt.detect_order is None else fmt.detect_order


def file_format() -> LabelFormat | None:
    """The format a label file named on the command line (--coco FILE) is read with."""
    return next((f for f in FORMATS.values() if f.takes_label_file), None)


class FormatNames(Sequence[str]):
    """The names of the registered formats, read at each use (formats registered later included)."""

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return tuple(FORMATS)[index]

    def __len__(self) -> int:
        return len(FORMATS)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(FORMATS))

    def __repr__(self) -> str:
        return f"FormatNames({tuple(FORMATS)!r})"


CHOICES = FormatNames()
