"""The review page of one image: the picture with its label boxes, its labels, label problems,
file facts and near neighbours grouped by grade (pure functions: rows in, HTML out).

`imgindex.serve.plugin` reads the rows (the SQL below) and the URLs; everything put into HTML
here is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

from ..quality.flags import FLAGS, MEASURES
from ..views import PAIR_GRADE, PAIR_REASON

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
Row = Mapping[str, Any]

MAX_NEIGHBOURS = 200
MAX_PROBLEMS = 100

IMAGE_SQL = "select * from images where id = ?"

LABELS_SQL = """
select l.class_id, coalesce(l.class_name, c.name) as class_name,
       l.cx, l.cy, l.w, l.h, l.x1, l.y1, l.x2, l.y2, f.path as label_file
from labels l
left join classes c on c.split = l.split and c.class_id = l.class_id
left join label_files f on f.id = l.label_file_id
where l.split = :split and l.image_path = :path
order by l.id
"""

LABEL_FILES_SQL = """
select f.id, f.path, f.format, f.error from label_file_images i join label_files f on f.id = i.label_file_id
where i.image_path = :path and f.split = :split
order by f.path
"""

PROBLEMS_SQL = """
select p.kind, p.line, p.detail, p.path, p.label_file_id, count(*) over () as total
from label_problems p
where coalesce(p.split, :split) = :split
  and (p.path = :path or p.label_file_id in (select label_file_id from label_file_images where image_path = :path))
order by p.path = :path desc, p.path, p.line, p.id
limit :limit
"""

NEIGHBOURS_SQL = """
select p.distance, {kind} as kind, {why} as why, {conflict} as conflict, i.id, i.split, i.path, i.rel_path,
       i.error, count(*) over () as total
from near_pairs p join images i on i.id = case when p.a = :id then p.b else p.a end
where p.a = :id or p.b = :id
order by p.distance, i.split, i.path
limit :limit
"""


QUALITY_FLAGS_SQL = """
select f.flag, f.value, r.rule from quality_flags f left join quality_rule r on r.flag = f.flag
where f.image_id = :id
"""

OUTLIER_SQL = "select score, measure from quality_outliers where image_id = :id"


def neighbours_sql(has_kind: bool, has_verdict: bool = False) -> str:
    """NEIGHBOURS_SQL for a near_pairs table with or without its `kind` column; with the verdict's
    regraded pairs (verdict_pairs), the grade the verdict gives."""
    kind = "p.kind" if has_kind else "'near'"
    why = conflict = "null"
    if has_kind and has_verdict:
        kind, why, conflict = PAIR_GRADE, PAIR_REASON, CONFLICT_OF_PAIR
    return NEIGHBOURS_SQL.format(kind=kind, why=why, conflict=conflict)


# the label conflict of the pair (its kind and detail), stored either way round
CONFLICT_OF_PAIR = (
    "(select c.kind || coalesce(': ' || c.detail, '') from label_conflicts c "
    "where (c.a = p.a and c.b = p.b) or (c.a = p.b and c.b = p.a))"
)


# ---------------------------------------------------------------- geometry


def upright_size(width: int, height: int, orientation: int | None) -> tuple[int, int]:
    """The size of a stored width x height image once its EXIF orientation is applied."""
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def upright_point(x: float, y: float, width: float, height: float, orientation: int | None) -> tuple[float, float]:
    """Where the point (x, y) of the stored image lands once the EXIF orientation is applied,
    as `PIL.ImageOps.exif_transpose` (the thumbnails) and browsers (the full image) turn it."""
    turned = {
        2: (width - x, y),  # mirrored left-right
        3: (width - x, height - y),  # turned 180
        4: (x, height - y),  # mirrored top-bottom
        5: (y, x),  # transposed
        6: (height - y, x),  # turned 90 clockwise
        7: (height - y, width - x),  # transversed
        8: (y, width - x),  # turned 90 anticlockwise
    }
    return turned.get(orientation or 1, (x, y))


def upright_box(box: Box, width: float, height: float, orientation: int | None) -> Box:
    """A box in stored pixels -> the same box on the upright picture."""
    ax, ay = upright_point(box[0], box[1], width, height, orientation)
    bx, by = upright_point(box[2], box[3], width, height, orientation)
    return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


def _numbers(row: Row, *names: str) -> list[float] | None:
    values = [row.get(n) for n in names]
    if all(isinstance(v, (int, float)) for v in values):
        return [float(v) for v in values]  # type: ignore[arg-type]
    return None


def stored_box(row: Row, width: int | None, height: int | None) -> Box | None:
    """A labels row's box in pixels of the stored image: x1..y2 when set, else cx, cy, w, h
    (normalised) scaled by the stored size; None for a class label or an unknown size."""
    corners = _numbers(row, "x1", "y1", "x2", "y2")
    if corners:
        return corners[0], corners[1], corners[2], corners[3]
    centre = _numbers(row, "cx", "cy", "w", "h")
    if centre and width and height:
        cx, cy, w, h = centre
        return (cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height
    return None


# ---------------------------------------------------------------- grades of near pairs


@dataclass(frozen=True)
class Grade:
    """How the page presents one `near_pairs.kind`."""

    heading: str
    explanation: str
    rank: int  # sections in rank order
    duplicate: bool
    folded: bool = False  # shown folded, after the others


COPY = Grade("Copies", "the same picture, re-encoded, resized or lightly edited", 2, True)
DIFFERENT = Grade(
    "Judged different", "close dHashes, but the finer signals say these are different pictures", 9, False, True
)
GRADES: dict[str, Grade] = {
    "byte-identical": Grade("Byte-identical copies", "the same file bytes", 0, True),
    "pixel-identical": Grade("Pixel-identical copies", "other files that decode to the same pixels", 1, True),
    "copy": COPY,
    "perceptual": COPY,
    "similar-scene": Grade("Same scene, another photo", "a different photograph of the same scene", 3, False),
    "different": DIFFERENT,
    "rejected": DIFFERENT,
}
UNKNOWN_RANK = 5


def grade(kind: str) -> Grade:
    """The presentation of a kind; a kind this version does not know is shown under its own name."""
    return GRADES.get(kind) or Grade(kind, f"pairs graded '{kind}'", UNKNOWN_RANK, False)


def group_by_grade(neighbours: Iterable[Row]) -> list[tuple[Grade, list[Row]]]:
    """Neighbours in sections: duplicates first, then other photos of the scene, unknown grades,
    and last the pairs judged different. Order within a section is kept."""
    sections: dict[Grade, list[Row]] = {}
    for row in neighbours:
        sections.setdefault(grade(str(row["kind"])), []).append(row)
    return sorted(sections.items(), key=lambda item: (item[0].rank, item[0].heading))


# ---------------------------------------------------------------- HTML

PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#1fa2b5", "#f032e6", "#9a6324", "#808000")


def class_colour(class_id: Any) -> str:
    return PALETTE[class_id % len(PALETTE)] if isinstance(class_id, int) else "#000000"


def class_label(row: Row) -> str:
    name, number = row.get("class_name"), row.get("class_id")
    if name is None:
        return "(no class)" if number is None else f"class {number}"
    return str(name)


@dataclass(frozen=True)
class Links:
    """URLs of the plugin's routes for one database (`query` is '?db=NAME')."""

    images: str  # the routes' prefix, ending in '/image/'
    query: str
    table: str  # URL of the images table; rows are table + '/' + id
    problems: str  # URL of the label_problems table
    flag_queries: Mapping[str, str] = field(default_factory=dict)  # quality flag -> URL of its canned query
    csrftoken: str | None = None  # set when `imgindex serve --allow-reviews` records reviewers' verdicts

    def review(self, image_id: int) -> str:
        return f"{self.images}{image_id}/review{self.query}"

    def image(self, image_id: int) -> str:
        return f"{self.images}{image_id}{self.query}"

    def verdict(self, image_id: int) -> str:
        return f"{self.images}{image_id}/verdict{self.query}"

    def thumbnail(self, image_id: int, side: int = 160) -> str:
        return f"{self.images}{image_id}/thumbnail{self.query}&size={side}"

    def row(self, image_id: int) -> str:
        return f"{self.table}/{image_id}"

    def problems_of(self, label_file_id: int) -> str:
        return f"{self.problems}?label_file_id={label_file_id}"


def overlay_svg(labels: list[Row], image: Row) -> Markup:
    """An SVG laid over the upright picture, one <rect> per label box (class labels have none)."""
    width, height, orientation = image.get("width"), image.get("height"), image.get("orientation")
    if not (width and height):
        return Markup("")
    view_w, view_h = upright_size(width, height, orientation)
    font = max(view_w, view_h) / 40
    shapes = []
    for row in labels:
        box = stored_box(row, width, height)
        if box is None:
            continue
        x1, y1, x2, y2 = upright_box(box, width, height, orientation)
        name, colour = escape(class_label(row)), class_colour(row.get("class_id"))
        shapes.append(
            f'<g style="--box: {colour}"><rect class="imgindex-box" x="{x1:.1f}" y="{y1:.1f}" '
            f'width="{x2 - x1:.1f}" height="{y2 - y1:.1f}"><title>{name}</title></rect>'
            f'<text class="imgindex-box-name" x="{x1:.1f}" y="{max(y1 - font * 0.25, font):.1f}" '
            f'font-size="{font:.1f}">{name}</text></g>'
        )
    return Markup(
        f'<svg class="imgindex-boxes" viewBox="0 0 {view_w} {view_h}" preserveAspectRatio="none" '
        f'xmlns="http://www.w3.org/2000/svg" aria-hidden="true">{"".join(shapes)}</svg>'
    )


def picture_html(image: Row, labels: list[Row], src: str | None, why_not: str | None) -> Markup:
    """The upright picture with its label boxes over it, or why it cannot be shown."""
    if src is None:
        return Markup(f'<p class="imgindex-no-picture">{escape(why_not or "No picture")}</p>')
    alt = escape(image.get("rel_path") or image.get("path") or "")
    return Markup(
        f'<div class="imgindex-picture"><img class="imgindex-picture-img" src="{escape(src)}" alt="{alt}">'
        f"{overlay_svg(labels, image)}</div>"
    )


def _table(headers: list[str], rows: list[list[Any]], css: str) -> Markup:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return Markup(f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')


def _box_text(box: Box | None) -> str:
    return "" if box is None else ", ".join(f"{v:.0f}" for v in box)


def labels_html(labels: list[Row], image: Row, has_labels: bool) -> Markup:
    if not has_labels:
        return Markup("<p>This index has no label tables.</p>")
    if not labels:
        return Markup("<p>No labels for this image.</p>")
    swatch = '<span class="imgindex-swatch" style="background: {}"></span>'
    rows = []
    for row in labels:
        box = stored_box(row, image.get("width"), image.get("height"))
        rows.append(
            f"<tr><td>{swatch.format(class_colour(row.get('class_id')))}{escape(row.get('class_id'))}</td>"
            f"<td>{escape(class_label(row))}</td><td>{escape(_box_text(box))}</td></tr>"
        )
    return Markup(
        '<table class="imgindex-facts"><thead><tr><th>class id</th><th>class</th>'
        "<th>box x1, y1, x2, y2 (stored pixels)</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def problems_html(problems: list[Row], links: Links) -> Markup:
    if not problems:
        return Markup("<p>No label problems for this image or its label file.</p>")
    total = int(problems[0].get("total") or len(problems))
    rows = [
        "<tr>"
        f"<td>{escape(p.get('kind'))}</td><td>{escape(p.get('detail') or '')}</td>"
        f"<td>{escape(p.get('path') or '')}</td><td>{escape('' if p.get('line') is None else p.get('line'))}</td>"
        "</tr>"
        for p in problems
    ]
    more = ""
    if total > len(problems):
        files = sorted({p["label_file_id"] for p in problems if isinstance(p.get("label_file_id"), int)})
        file_links = ", ".join(f'<a href="{escape(links.problems_of(f))}">label file {f}</a>' for f in files)
        more = f"<p>{len(problems)} of {total} shown; all of them: {file_links}.</p>"
    return Markup(
        '<table class="imgindex-facts"><thead><tr><th>kind</th><th>detail</th><th>file</th><th>line</th>'
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>" + more
    )


def _size_text(size: Any) -> str:
    if not isinstance(size, int):
        return ""
    if size < 1024:
        return f"{size:,} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit} ({size:,} bytes)"


def resolution_text(image: Row) -> str:
    width, height, orientation = image.get("width"), image.get("height"), image.get("orientation")
    if not (width and height):
        return ""
    text = f"{width} x {height}"
    if orientation and orientation != 1:
        up_w, up_h = upright_size(width, height, orientation)
        text += f" as stored; EXIF orientation {orientation}, shown upright as {up_w} x {up_h}"
    return text


def facts_html(image: Row, label_files: list[Row], links: Links) -> Markup:
    files = "; ".join(f"{f['path']} ({f.get('format') or '?'})" for f in label_files)
    facts = [
        ("split", image.get("split")),
        ("path", image.get("path")),
        ("size", _size_text(image.get("size"))),
        ("resolution", resolution_text(image)),
        ("format", " ".join(str(v) for v in (image.get("format"), image.get("mode")) if v)),
        ("label file", files or "none"),
        ("error", image.get("error")),
    ]
    rows = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in facts if value is not None
    )
    image_id = int(image["id"])
    return Markup(
        f'<table class="imgindex-facts">{rows}</table>'
        f'<p><a href="{escape(links.image(image_id))}">the file</a> · '
        f'<a href="{escape(links.row(image_id))}">its row in images</a></p>'
    )


def _measure_text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def quality_html(image: Row, flags: list[Row], outlier: Row | None, links: Links) -> Markup:
    """The quality flags the image carries (each with its value and rule, linking to the images
    of that flag in its split), then its measures in one line."""
    order = {flag.name: n for n, flag in enumerate(FLAGS)}
    items = []
    for row in sorted(flags, key=lambda r: (order.get(str(r["flag"]), len(order)), str(r["flag"]))):
        name = str(row["flag"])
        rule = str(row.get("rule") or "")
        rule = rule.removeprefix(f"{name}: ")
        url = links.flag_queries.get(name)
        label = escape(name)
        if url:
            label = Markup(f'<a href="{escape(url)}?split={escape(quote(str(image.get("split") or "")))}">{label}</a>')
        value = "" if row.get("value") is None else f" {_measure_text(row['value'])}"
        items.append(
            f'<li><span class="imgindex-flag-name">{label}</span>{escape(value)}'
            + (f" · <small>rule: {escape(rule)}</small>" if rule else "")
            + "</li>"
        )
    listing = f'<ul class="imgindex-quality-flags">{"".join(items)}</ul>' if items else "<p>No quality flags.</p>"
    measures = [(m, image.get(m)) for m in MEASURES if image.get(m) is not None]
    if outlier and outlier.get("score") is not None:
        measures.append(("outlier_score", f"{_measure_text(outlier['score'])} ({outlier.get('measure')})"))
    line = " · ".join(f"{escape(name)} <b>{escape(_measure_text(value))}</b>" for name, value in measures)
    return Markup(listing + (f'<p class="imgindex-measures">{line}</p>' if line else ""))


def quality_text(flags: list[Row]) -> str:
    """One sentence: the quality flags the image carries."""
    order = {flag.name: n for n, flag in enumerate(FLAGS)}
    names = sorted((str(r["flag"]) for r in flags), key=lambda n: (order.get(n, len(order)), n))
    return f"Quality flags: {', '.join(names)}." if names else "No quality flags."


def neighbour_html(row: Row, image: Row, links: Links) -> Markup:
    other = int(row["id"])
    split = str(row.get("split"))
    leak = ' <span class="imgindex-leak">other split</span>' if split != image.get("split") else ""
    thumb = (
        '<span class="imgindex-unreadable">unreadable</span>'
        if row.get("error")
        else f'<img class="imgindex-thumb" loading="lazy" src="{escape(links.thumbnail(other))}" alt="">'
    )
    return Markup(
        f'<figure class="imgindex-neighbour" title="{escape(row.get("path"))}">'
        f'<a href="{escape(links.review(other))}">{thumb}</a>'
        f'<figcaption><span class="imgindex-grade">{escape(row.get("kind"))}</span> '
        + (f'<small class="imgindex-why">({escape(row["why"])})</small> ' if row.get("why") else "")
        + f"dHash distance {escape(row.get('distance'))}<br><b>{escape(split)}</b>{leak}<br>"
        + (
            f'<span class="imgindex-conflict">label conflict: {escape(row["conflict"])}</span><br>'
            if row.get("conflict")
            else ""
        )
        + f'<a href="{escape(links.review(other))}">{escape(row.get("rel_path") or row.get("path"))}</a>'
        f"{review_buttons(int(image['id']), other, links)}</figcaption></figure>"
    )


REVIEW_CHOICES = (("not-duplicate", "Not a duplicate"), ("duplicate", "Duplicate"))


def review_form(image_id: int, links: Links, verdict: str, label: str, other: int | None = None) -> str:
    """A POST form recording one verdict (Datasette checks its CSRF token)."""
    assert links.csrftoken is not None
    partner = f'<input type="hidden" name="other" value="{other}">' if other is not None else ""
    return (
        f'<form class="imgindex-review-action" method="post" action="{escape(links.verdict(image_id))}">'
        f'<input type="hidden" name="csrftoken" value="{escape(links.csrftoken)}">'
        f'<input type="hidden" name="verdict" value="{verdict}">{partner}'
        f'<button type="submit" data-verdict="{verdict}">{escape(label)}</button></form>'
    )


def review_buttons(image_id: int, other: int, links: Links) -> str:
    """The reviewer's buttons under a neighbour, when reviews are allowed."""
    if links.csrftoken is None:
        return ""
    return "<br>" + "".join(review_form(image_id, links, v, label, other) for v, label in REVIEW_CHOICES)


def neighbours_html(neighbours: list[Row], image: Row, links: Links, has_pairs: bool) -> Markup:
    if not has_pairs:
        return Markup("<p>This index has no near_pairs table.</p>")
    if not neighbours:
        return Markup("<p>No near neighbours: no other image within the near-duplicate distance.</p>")
    total = int(neighbours[0].get("total") or len(neighbours))
    parts = []
    if total > len(neighbours):
        parts.append(f"<p>The {len(neighbours)} nearest of {total} neighbours.</p>")
    for section, rows in group_by_grade(neighbours):
        figures = "".join(neighbour_html(r, image, links) for r in rows)
        kind = "duplicate" if section.duplicate else "not a duplicate"
        title = f"{escape(section.heading)} ({len(rows)}) <small>{escape(section.explanation)}; {kind}</small>"
        body = f'<div class="imgindex-gallery">{figures}</div>'
        if section.folded:
            parts.append(f'<details class="imgindex-grade-section"><summary>{title}</summary>{body}</details>')
        else:
            parts.append(f'<section class="imgindex-grade-section"><h3>{title}</h3>{body}</section>')
    return Markup("".join(parts))


def verdict_text(neighbours: list[Row]) -> str:
    """One line: how many duplicates of which grades, how many other photos."""
    if not neighbours:
        return "No near neighbours."
    counts: dict[str, int] = {}
    for row in neighbours:
        counts[str(row["kind"])] = counts.get(str(row["kind"]), 0) + 1
    duplicates = sum(n for k, n in counts.items() if grade(k).duplicate)
    detail = ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kn: (grade(kn[0]).rank, kn[0])))
    noun = "duplicate" if duplicates == 1 else "duplicates"
    conflicts = sum(1 for row in neighbours if row.get("conflict"))
    labelled = f"; {conflicts} labelled otherwise (label conflict)" if conflicts else ""
    return f"{duplicates} {noun} among {len(neighbours)} near neighbours ({detail}){labelled}."


@dataclass(frozen=True)
class Review:
    """Everything the review page shows of one image."""

    image: Row
    labels: list[Row]
    label_files: list[Row]
    problems: list[Row]
    neighbours: list[Row]
    has_labels: bool
    has_pairs: bool
    picture_src: str | None
    why_no_picture: str | None
    has_quality: bool = False
    quality_flags: list[Row] = field(default_factory=list)  # flag, value, rule
    outlier: Row | None = None  # score, measure
    ignored: bool = False  # a reviewer said: ignore this file


def review_html(review: Review, links: Links) -> Markup:
    """The page's content, under Datasette's header."""
    image = review.image
    boxes = sum(1 for r in review.labels if stored_box(r, image.get("width"), image.get("height")))
    name = escape(image.get("rel_path") or image.get("path"))
    return Markup(
        f'<h1 class="imgindex-review-title">{name} <small>({escape(image.get("split"))}, id {int(image["id"])})'
        f"</small></h1>"
        + (
            '<p class="imgindex-reviewed">Reviewed: ignored (left out of duplicates, leakage and check).</p>'
            if review.ignored
            else ""
        )
        + (
            review_form(int(image["id"]), links, "ignore", "Ignore this file")
            if links.csrftoken and not review.ignored
            else ""
        )
        + f'<p class="imgindex-verdict">{escape(verdict_text(review.neighbours))} '
        f"{len(review.labels)} labels, {boxes} boxes drawn; {len(review.problems)} label problems."
        + (f" {escape(quality_text(review.quality_flags))}" if review.has_quality else "")
        + "</p>"
        '<div class="imgindex-review">'
        f'<div class="imgindex-review-picture">{picture_html(image, review.labels, review.picture_src, review.why_no_picture)}</div>'
        '<div class="imgindex-review-side">'
        f'<h2 id="neighbours">Near neighbours</h2>'
        f"{neighbours_html(review.neighbours, image, links, review.has_pairs)}"
        f"<h2>File</h2>{facts_html(image, review.label_files, links)}"
        + (
            f'<h2 id="quality">Quality</h2>{quality_html(image, review.quality_flags, review.outlier, links)}'
            if review.has_quality
            else ""
        )
        + f"<h2>Labels</h2>{labels_html(review.labels, image, review.has_labels)}"
        f'<h2 id="problems">Label problems</h2>{problems_html(review.problems, links)}'
        "</div></div>"
    )


TEMPLATE = """{% extends "base.html" %}
{% block title %}{{ title }}{% endblock %}
{% block body_class %}imgindex-review-page db-{{ database|to_css_class }}{% endblock %}
{% block crumbs %}{{ crumbs.nav(request=request, database=database, table="images") }}{% endblock %}
{% block content %}{{ body }}{% endblock %}
"""


def db_query(database: str) -> str:
    return f"?db={quote(database)}"


CSS = """
.imgindex-review { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
.imgindex-review-picture { flex: 0 1 auto; max-width: 65%; min-width: 0; }
.imgindex-review-side { flex: 1 1 300px; min-width: 0; }
.imgindex-review-side h2:first-child { margin-top: 0; }
.imgindex-grade-section h3 { margin: 0.5em 0 0.3em; font-size: 1.05em; }
.imgindex-review-title small, .imgindex-grade-section small { font-weight: normal; color: #555; }
.imgindex-picture { position: relative; display: inline-block; max-width: 100%; line-height: 0; }
.imgindex-picture img {
  display: block; max-width: 100%; max-height: 75vh; image-orientation: from-image; border: 1px solid #ccc;
}
.imgindex-boxes { position: absolute; left: 0; top: 0; width: 100%; height: 100%; pointer-events: none; }
.imgindex-box { fill: none; stroke: var(--box); stroke-width: 2px; vector-effect: non-scaling-stroke; }
.imgindex-box-name {
  fill: var(--box); paint-order: stroke; stroke: #fff; stroke-width: 3px; vector-effect: non-scaling-stroke;
  font-family: sans-serif; font-weight: bold;
}
.imgindex-swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.4em; border-radius: 2px; }
table.imgindex-facts { border-collapse: collapse; font-size: 0.9em; margin-bottom: 0.5em; }
table.imgindex-facts th, table.imgindex-facts td {
  text-align: left; vertical-align: top; padding: 2px 8px 2px 0; border-bottom: 1px solid #eee;
  word-break: break-all;
}
.imgindex-verdict { font-size: 1.05em; }
.imgindex-grade-section summary { font-weight: bold; font-size: 1.1em; cursor: pointer; margin: 0.8em 0; }
.imgindex-neighbour { margin: 0; width: 200px; }
.imgindex-neighbour img.imgindex-thumb { display: block; max-width: 196px; max-height: 160px; border: 1px solid #ccc; }
.imgindex-neighbour figcaption { font-size: 0.8em; word-break: break-all; line-height: 1.3; }
.imgindex-grade { background: #333; color: #fff; border-radius: 3px; padding: 0 4px; }
.imgindex-leak { color: #a00; }
.imgindex-conflict { color: #a50; font-weight: bold; }
body:has(.imgindex-start) #queries, body:has(.imgindex-start) #queries + ul { display: none; }
.imgindex-start li { margin-bottom: 0.3em; }
.imgindex-quality-flags { margin: 0 0 0.4em; padding-left: 1.2em; }
.imgindex-flag-name { font-weight: bold; }
.imgindex-measures { font-size: 0.85em; color: #333; }
"""
