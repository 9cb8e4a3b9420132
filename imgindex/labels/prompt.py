"""DataGradients' two questions about label rows without a convention, asked on a terminal, and the
`--labels` choice of the command line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from .setup import format_sample

RULE = "-" * 72
FIRST_OPTIONS = [
    (True, "Label comes first (e.g. [class_id, x1, y1, x2, y2])"),
    (False, "Bounding box comes first (e.g. [x1, y1, x2, y2, class_id])"),
]
_LAYOUTS = {
    "xyxy": ("xyxy: x-left, y-top, x-right, y-bottom", "(Pascal-VOC format)"),
    "xywh": ("xywh: x-left, y-top, width, height", "(COCO format)"),
    "cxcywh": ("cxcywh: x-center, y-center, width, height", "(YOLO format)"),
}
BBOX_OPTIONS = [
    (f"{name}{suffix}", f"{text:<44}{where:<20}{unit}")
    for suffix, unit in (("", "in pixels"), ("-norm", "normalised 0..1"))
    for name, (text, where) in _LAYOUTS.items()
]


def ask(question: str, sample: list[tuple[str, str]], options: list[tuple[object, str]]) -> object:
    """Show the question, the sample rows and numbered options; return the chosen option's value."""
    click.echo(f"\n{RULE}\n{question}\n{RULE}")
    click.echo("Here's a sample of how your labels look like:\nEach line corresponds to a bounding box.")
    click.echo(format_sample(sample))
    click.echo("\nOptions:")
    for number, (_, text) in enumerate(options):
        click.echo(f"[{number}] | {text}")
    choice = click.prompt(
        "\nYour selection (Enter the corresponding number) >>>",
        prompt_suffix=" ",
        type=click.IntRange(0, len(options) - 1),
    )
    click.echo(f"Great! You chose: {options[choice][1]}\n")
    return options[choice][0]


def ask_label_first(sample: list[tuple[str, str]]) -> bool:
    return bool(
        ask("Which comes first in your annotations, the class id or the bounding box?", sample, list(FIRST_OPTIONS))
    )


def ask_bbox_format(sample: list[tuple[str, str]]) -> str:
    return str(ask("What is the bounding box format?", sample, list(BBOX_OPTIONS)))


class FormatChoice(click.Choice[str]):
    """A click choice over a sequence read at each use: `--labels` offers the label formats
    registered when the command runs, not only those known when the command line was built."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(names)
        self._names = names

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self._names)

    @choices.setter
    def choices(self, value: Any) -> None:
        self._names = tuple(value)
