"""Report.pdf with reportlab: a title block, then one block per feature, grouped in sections."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from .features import FeatureResult, Gallery

MARGIN = 1.6 * cm
FRAME_WIDTH = A4[0] - 2 * MARGIN
FRAME_HEIGHT = A4[1] - 2 * MARGIN
ACCENT = colors.HexColor("#1f3b64")
GALLERY_COLUMNS = 6  # thumbnails in a row


@dataclass
class Block:
    """A rendered feature: its result and its plot as PNG bytes (None when it has none)."""

    section: str
    result: FeatureResult
    png: bytes | None


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    return {
        "title": ParagraphStyle("t", parent=base["Title"], textColor=ACCENT, fontSize=22, spaceAfter=4),
        "meta": ParagraphStyle("m", parent=base["Normal"], fontSize=9, textColor=colors.grey, alignment=1),
        "section": ParagraphStyle("s", parent=base["Heading1"], textColor=ACCENT, fontSize=16, spaceBefore=6),
        "feature": ParagraphStyle("f", parent=base["Heading2"], fontSize=13, spaceBefore=10, spaceAfter=2),
        "name": ParagraphStyle("n", parent=base["Normal"], fontSize=8, textColor=colors.grey, spaceAfter=4),
        "body": ParagraphStyle("b", parent=base["Normal"], fontSize=9.5, leading=13, spaceAfter=4),
        "notice": ParagraphStyle(
            "x", parent=base["Normal"], fontSize=9, leading=12, textColor=colors.HexColor("#7a4b00")
        ),
        "cell": ParagraphStyle("c", parent=base["Normal"], fontSize=8, leading=10),
        "caption": ParagraphStyle("p", parent=base["Normal"], fontSize=6.5, leading=8, alignment=1),
    }


def _para(text: str, style: ParagraphStyle) -> Paragraph:
    """A paragraph of our own markup (<b>); falls back to plain text if a name breaks the markup."""
    try:
        return Paragraph(text.replace("\n", "<br/>"), style)
    except ValueError:
        return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _image(png: bytes) -> Image:
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(png)) as img:
        w, h = img.size
    scale = min(FRAME_WIDTH / w, 0.72 * FRAME_HEIGHT / h)
    return Image(io.BytesIO(png), width=w * scale, height=h * scale)


def _table(rows: list[list[str]], styles: dict[str, ParagraphStyle], widths: list[float] | None = None) -> Table:
    """Rows of plain text; `widths`: fractions of the page width (default: 30% for the first column,
    the rest shared)."""
    cells = [[Paragraph(escape(c), styles["cell"]) for c in row] for row in rows]
    if widths is None:
        rest = 0.7 / max(len(rows[0]) - 1, 1)
        widths = [0.3] + [rest] * (len(rows[0]) - 1)
    table = Table(cells, colWidths=[w * FRAME_WIDTH for w in widths], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8edf5")),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f7f7f7")]),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#c8c8c8")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _gallery(gallery: Gallery, styles: dict[str, ParagraphStyle]) -> Flowable:
    """A heading and its thumbnails, GALLERY_COLUMNS to a row, each centred in a square of the
    row's height, with its caption under it."""
    cell = FRAME_WIDTH / GALLERY_COLUMNS
    side = cell - 8
    pictures: list[Flowable | str] = [_thumbnail(t.jpeg, side) for t in gallery.thumbnails]
    captions: list[Flowable | str] = [
        Paragraph(escape(t.caption).replace("\n", "<br/>"), styles["caption"]) for t in gallery.thumbnails
    ]
    pad = [""] * (-len(pictures) % GALLERY_COLUMNS)
    pictures, captions = pictures + pad, captions + pad
    rows: list[list[Flowable | str]] = []
    heights: list[float | None] = []
    for i in range(0, len(pictures), GALLERY_COLUMNS):
        rows += [pictures[i : i + GALLERY_COLUMNS], captions[i : i + GALLERY_COLUMNS]]
        heights += [side + 4, None]
    table = Table(rows, colWidths=[cell] * GALLERY_COLUMNS, rowHeights=heights)
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
            + [("VALIGN", (0, r), (-1, r), "MIDDLE") for r in range(0, len(rows), 2)]
        )
    )
    return KeepTogether([Spacer(1, 4), _para(gallery.heading, styles["body"]), table])


def _thumbnail(jpeg: bytes, side: float) -> Image:
    """A picture scaled to fit side x side points, its shape kept."""
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(jpeg)) as img:
        w, h = img.size
    scale = side / max(w, h, 1)
    return Image(io.BytesIO(jpeg), width=w * scale, height=h * scale)


def _notices(notices: list[str], styles: dict[str, ParagraphStyle]) -> Table:
    text = "<br/>".join("&#8226; " + escape(n) for n in notices)
    box = Table([[Paragraph("<b>Notice</b><br/>" + text, styles["notice"])]], colWidths=[FRAME_WIDTH])
    box.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fff4dc")),
                ("LINEBEFORE", (0, 0), (0, -1), 3, colors.HexColor("#e0a030")),
                ("LEFTPADDING", (0, 0), (-1, -1), 8),
            ]
        )
    )
    return box


def _feature(block: Block, styles: dict[str, ParagraphStyle], heading: list[Flowable]) -> list[Flowable]:
    """A feature's flowables, kept on one page with the section heading that precedes it, if any."""
    r = block.result
    head: list[Flowable] = heading + [
        _para(escape(r.title), styles["feature"]),
        _para(escape(r.name), styles["name"]),
        _para(r.description, styles["body"]),
    ]
    if block.png is not None:
        head.append(_image(block.png))
    tail: list[Flowable] = []
    if r.table:
        tail += [Spacer(1, 4), _table(r.table, styles, r.table_widths)]
    if r.notices:
        tail += [Spacer(1, 4), _notices(r.notices, styles)]
    galleries = [_gallery(g, styles) for g in r.galleries]
    return [KeepTogether(head + tail + galleries[:1]), *galleries[1:], Spacer(1, 8)]


def write_pdf(
    path: Path, title: str, subtitle: str, blocks: list[Block], errors: list[dict[str, str]], subject: str = ""
) -> None:
    styles = _styles()
    story: list[Flowable] = [_para(escape(title), styles["title"]), _para(escape(subtitle), styles["meta"])]
    section = None
    for block in blocks:
        heading: list[Flowable] = []
        if block.section != section:
            if section is not None:
                story.append(PageBreak())
            section = block.section
            heading = [_para(escape(section), styles["section"])]
        story += _feature(block, styles, heading)
    if errors:
        story += [_para("Errors", styles["section"])]
        story += [_para(f"<b>{escape(e['title'])}</b>: {escape(e['error'])}", styles["body"]) for e in errors]
    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=title,
        author="imgindex",
        subject=subject,
    )
    doc.build(story, onFirstPage=_footer, onLaterPages=_footer)


def _footer(canvas: object, doc: SimpleDocTemplate) -> None:
    canvas.saveState()  # type: ignore[attr-defined]
    canvas.setFont("Helvetica", 8)  # type: ignore[attr-defined]
    canvas.setFillColor(colors.grey)  # type: ignore[attr-defined]
    canvas.drawRightString(A4[0] - MARGIN, MARGIN / 2, f"{doc.title} - page {doc.page}")  # type: ignore[attr-defined]
    canvas.restoreState()  # type: ignore[attr-defined]
