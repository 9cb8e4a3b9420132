"""What Datasette shows of an index: canned queries, facets and image cells (pure functions).

The Datasette hooks in `imgindex.datasette_plugin` call these with the database's schema, so a
query that needs a table written by a later stage (near_pairs, labels, label_problems) is offered
only once that table exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from ..near import groups as duplicates
from ..near import pairs as near_pairs
from ..quality.flags import DEFAULTS, FARTHER, FLAGS, HIGHER, LOWER, Flag, rule_lines

Schema = dict[str, set[str]]  # table or view name -> its column names

# Cell column -> the column of the same row naming the split its paths belong to.
PATH_COLUMNS: dict[str, str] = {
    "path": "split",
    "paths": "split",
    "path_a": "split_a",
    "paths_a": "split_a",
    "path_b": "split_b",
    "paths_b": "split_b",
    "image_path": "split",
}

SINGLE_PATH_COLUMNS = {"path", "path_a", "path_b", "image_path"}  # the others hold JSON arrays of paths

INDEX_COLUMNS = {"split", "path", "dhash"}


def is_index(schema: Schema) -> bool:
    """True when the database holds an imgindex `images` table."""
    return schema.get("images", set()) >= INDEX_COLUMNS


def has_columns(schema: Schema, table: str, *columns: str) -> bool:
    """True when `table` exists with all these columns."""
    return table in schema and set(columns) <= schema[table]


_has = has_columns


def _rule_note() -> str:
    return "Rule: the index's stored verdict (see the verdict_rule view)."


def _duplicates_query() -> dict[str, Any]:
    return {
        "title": "Duplicates within each split (one split per row)",
        "description": "Duplicate groups inside one split: byte-identical, pixel-identical or copy. " + _rule_note(),
        "sql": (
            "select split, grade, max_distance, n, paths from duplicate_groups\n"
            "where :split = '' or split = :split\n"
            "order by n desc, split, paths"
        ),
        "params": ["split"],
    }


def _leakage_query() -> dict[str, Any]:
    return {
        "title": "Leakage: the same picture in split_a and split_b",
        "description": "Duplicate groups with members in two splits, side by side. " + _rule_note(),
        "sql": (
            "select split_a, split_b, grade, max_distance, n_a, n_b, paths_a, paths_b from leakage\n"
            "where (:split_a = '' or split_a = :split_a) and (:split_b = '' or split_b = :split_b)\n"
            "order by split_a, split_b, n_a + n_b desc, paths_a"
        ),
        "params": ["split_a", "split_b"],
    }


def _scene_query() -> dict[str, Any]:
    return {
        "title": "Scenes shared by split_a and split_b (different photos, not copies)",
        "description": "Different photos of one scene (a piece moved, the next frame) in two splits. " + _rule_note(),
        "sql": (
            "select split_a, split_b, n_a, n_b, paths_a, paths_b from scene_overlap\n"
            "where (:split_a = '' or split_a = :split_a) and (:split_b = '' or split_b = :split_b)\n"
            "order by split_a, split_b, n_a + n_b desc, paths_a"
        ),
        "params": ["split_a", "split_b"],
    }


def _conflict_query() -> dict[str, Any]:
    return {
        "title": "Label conflicts: duplicates labelled two ways (split_a / split_b)",
        "sql": (
            "select split_a, path_a, split_b, path_b, grade, kind, detail from label_conflict_pairs\n"
            "order by split_a, path_a, split_b, path_b"
        ),
    }


def near_default_distance() -> int:
    """`imgindex duplicates --max-distance`'s default, when that option exists."""
    return int(getattr(duplicates, "DEFAULT_MAX_DISTANCE", 4))


def _near_query(columns: set[str]) -> dict[str, Any]:
    kind = "kind" in columns  # every candidate pair is kept with its grade
    window = "window_distance" in columns  # crops found by their window hashes
    default = near_default_distance()
    return {
        "title": "Near pairs of any two splits, with their grade",
        "description": f"Candidate pairs within `distance` bits of dHash (default {default})"
        + (
            f", or found by their window hashes (a crop: `window_distance` <= {near_pairs.WINDOW_MAX})"
            if window
            else ""
        )
        + ", and their grade (pairs the second signals contradict, 'different', left out).",
        "sql": (
            "select p.distance"
            + (", p.window_distance" if window else "")
            + (
                ", coalesce((select v.grade from verdict_pairs v where v.a = p.a and v.b = p.b), p.kind) as kind"
                if kind
                else ""
            )
            + ", ia.split as split_a, ia.path as path_a,"
            " ib.split as split_b, ib.path as path_b\n"
            "from near_pairs p join images ia on ia.id = p.a join images ib on ib.id = p.b\n"
            f"where (p.distance <= cast(coalesce(nullif(:distance, ''), {default}) as integer)"
            + (f" or p.window_distance <= {near_pairs.WINDOW_MAX}" if window else "")
            + ")\n"
            + ("  and p.kind not in ('different', 'rejected')\n" if kind else "")
            + "order by p.distance, ia.split, ia.path, ib.path"
        ),
        "params": ["distance"],
    }


def _unreadable_query() -> dict[str, Any]:
    return {
        "title": "Files that could not be read",
        "sql": ("select id, split, path, size, error from images where error is not null\norder by split, path"),
    }


def _label_problems_query(columns: set[str]) -> dict[str, Any]:
    params = [c for c in ("split", "kind") if c in columns]
    where = " and ".join(f"(:{c} = '' or {c} = :{c})" for c in params)
    return {
        "title": "Label problems",
        "sql": "select * from label_problems\n" + (f"where {where}\n" if where else "") + "order by rowid",
        "params": params,
    }


def _class_frequency_query(columns: set[str]) -> dict[str, Any]:
    image_column = next((c for c in ("image_id", "image_path", "image") if c in columns), None)
    images = f", count(distinct {image_column}) as images" if image_column else ""
    return {
        "title": "Class frequency per split",
        "sql": (
            f"select split, class_id, class_name, count(*) as labels{images} from labels\n"
            "group by split, class_id, class_name\n"
            "order by split, labels desc, class_id"
        ),
    }


QUALITY_OVERVIEW = "quality_overview"


def flag_query_name(flag: str) -> str:
    """The canned query listing the images of one quality flag."""
    return f"quality_flag_{flag}"


FLAG_QUERIES = {flag_query_name(flag.name): flag.name for flag in FLAGS}  # query name -> flag
FLAGS_BY_NAME = {flag.name: flag for flag in FLAGS}

# The SQL order of a flag's query, worst first, and how its description says it, by Flag.worse.
WORST_FIRST: dict[str, tuple[str, str]] = {
    LOWER: ("f.value", "lowest first"),
    HIGHER: ("f.value desc", "highest first"),
    FARTHER: ("max(f.value, 1.0 / f.value) desc", "farthest from the split's median size first"),
}


def has_quality(schema: Schema) -> bool:
    """True when the index holds the quality flags and the rule they applied."""
    return _has(schema, "quality_flags", "image_id", "flag", "value") and _has(schema, "quality_rule", "flag", "rule")


def rule_sentences(stored: dict[str, str]) -> dict[str, str]:
    """Each flag's rule as `imgindex quality` prints it: the stored sentence (the quality_rule
    view), else the flag's default, as the command falls back to it."""
    defaults = dict(zip((flag.name for flag in FLAGS), rule_lines(DEFAULTS)))
    return {name: stored.get(name) or default for name, default in defaults.items()}


def _flag_order() -> str:
    """SQL ordering `r.flag` as FLAGS does."""
    cases = " ".join(f"when '{flag.name}' then {n}" for n, flag in enumerate(FLAGS))
    return f"case r.flag {cases} else {len(FLAGS)} end"


def _flag_query(flag: Flag, rule: str | None) -> dict[str, Any]:
    order, words = WORST_FIRST[flag.worse]
    outlier = flag.measure == "outlier_score"  # which measure made the image an outlier
    description = (
        f"Images flagged {flag.name}, worst first: by `value`, the {flag.measure} as the rule judges it, {words}; "
        "`flags`: every flag the image carries; each thumbnail opens the image's review page."
    )
    return {
        "title": f"Quality: {flag.name} images, worst first",
        "description": description + (f" Rule applied: {rule}." if rule else ""),
        "sql": (
            "select f.image_id, i.split, i.path, f.value"
            + (", o.measure as outlier_measure" if outlier else "")
            + ", i.width, i.height,\n"
            "  (select group_concat(g.flag, ',') from quality_flags g where g.image_id = f.image_id) as flags\n"
            "from quality_flags f join images i on i.id = f.image_id\n"
            + ("left join quality_outliers o on o.image_id = f.image_id\n" if outlier else "")
            + f"where f.flag = '{flag.name}' and (:split = '' or i.split = :split)\n"
            f"order by {order} nulls last, i.split, i.path"
        ),
        "params": ["split"],
    }


def _quality_overview_query() -> dict[str, Any]:
    return {
        "title": "Image quality: flagged images per split and flag, with the rule applied",
        "description": "How many of each split's readable images carry each quality flag (dark, light, blurry, ...), "
        "and the rule each flag applied (the quality_rule view).",
        "sql": (
            "with judged as (select split, count(*) as images from images\n"
            "                where error is null and entropy is not null group by split),\n"
            "flagged as (select i.split, f.flag, count(*) as n from quality_flags f join images i on i.id = f.image_id\n"
            "            group by i.split, f.flag)\n"
            "select j.split, r.flag, coalesce(c.n, 0) as flagged, j.images,\n"
            "  round(100.0 * coalesce(c.n, 0) / j.images, 1) as percent, r.rule\n"
            "from judged j cross join quality_rule r left join flagged c on c.split = j.split and c.flag = r.flag\n"
            "where :split = '' or j.split = :split\n"
            f"order by j.split,\n  {_flag_order()}"
        ),
        "params": ["split"],
    }


def quality_queries(rules: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """The overview, then one query per flag of FLAGS; with `rules` (flag -> the sentence read from
    the index's quality_rule) each query's description states its flag's rule."""
    sentences = rule_sentences(rules) if rules is not None else {}
    queries = {QUALITY_OVERVIEW: _quality_overview_query()}
    for flag in FLAGS:
        queries[flag_query_name(flag.name)] = _flag_query(flag, sentences.get(flag.name))
    return queries


def canned_queries(schema: Schema, rules: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """The canned queries this schema can answer, by name; `rules`: the quality rule read from the
    index (flag -> sentence), for the quality queries' descriptions."""
    if not is_index(schema):
        return {}
    queries: dict[str, dict[str, Any]] = {}
    if _has(schema, "duplicate_groups", "split", "n", "paths"):
        queries["duplicates_within_split"] = _duplicates_query()
    if _has(schema, "leakage", "split_a", "split_b", "paths_a", "paths_b"):
        queries["leakage_between_splits"] = _leakage_query()
    if _has(schema, "scene_overlap", "split_a", "split_b", "paths_a", "paths_b"):
        queries["scenes_between_splits"] = _scene_query()
    if _has(schema, "label_conflict_pairs", "path_a", "path_b", "kind"):
        queries["conflicting_labels"] = _conflict_query()  # not the table's name, which it would hide
    if _has(schema, "near_pairs", "a", "b", "distance"):
        queries["near_duplicates"] = _near_query(schema["near_pairs"] if "verdict_pairs" in schema else set())
    if _has(schema, "images", "error"):
        queries["unreadable_files"] = _unreadable_query()
    if "label_problems" in schema:
        queries["label_problem_list"] = _label_problems_query(schema["label_problems"])  # nor this one
    if _has(schema, "labels", "split", "class_id", "class_name"):
        queries["class_frequency"] = _class_frequency_query(schema["labels"])
    if has_quality(schema) and _has(schema, "images", "error", "entropy", "width", "height"):
        queries.update(quality_queries(rules))
    return queries


TABLE_DESCRIPTIONS = {
    "images": "One row per image file: where it is, what it is, its hashes and colour statistics.",
    "duplicate_groups": "The verdict's duplicate groups within one split (rule: the verdict_rule view).",
    "leakage": "Duplicate groups present in two splits: the same picture in train and validation.",
    "scene_overlap": "Scenes in two splits: different photos of one scene, not copies.",
    "label_conflict_pairs": "Duplicate pairs whose labels disagree.",
    "verdict_rule": "The rule every verdict output applied.",
    "identical_files": "Byte-identical files (same SHA-256), across all splits.",
    "near_pairs": "Pairs of images (images.id a < b) whose dHashes differ by few bits.",
    "labels": "One row per box (or class label) of an image.",
    "label_problems": "What was wrong in the label files: counted, never fatal.",
    "quality": "Image quality, one row per readable image: its measures, the flags it carries (comma-separated, "
    "and one 0/1 column per flag) and its outlier score. The rule applied: the quality_rule view; the images of "
    "each flag, worst first: the quality queries on the database page.",
    "quality_flags": "Each quality flag an image (image_id: images.id) carries, with the value it was judged on.",
    "quality_outliers": "Each readable image's largest robust z-score against its split, and on which measure.",
    "quality_summary": "Images per split and quality flag.",
    "quality_rule": "The rule the stored quality flags applied: each flag's threshold, as a sentence.",
}

DATABASE_DESCRIPTION = (
    "An imgindex index. Duplicate and leakage groups show their images side by side; "
    "the queries below answer the usual questions."
)

# Bookkeeping tables: still queryable, just not listed on the database page.
HIDDEN_TABLES = {
    "_sqlite_migrations",
    "near_stale",
    "near_images",
    "label_file_images",
    "verdict_members",
    "verdict_stale",
    "quality_stale",
}

FACETS = {
    "images": ["split", "format"],
    "labels": ["split", "class_name"],
    "label_problems": ["split", "kind"],
    "quality": ["split", "flags"],
    "quality_flags": ["flag"],
}


def metadata(schema: Schema) -> dict[str, Any]:
    """Datasette table metadata for an index: facets and descriptions of what exists."""
    if not is_index(schema):
        return {}
    tables: dict[str, Any] = {}
    for table, facets in FACETS.items():
        present = [f for f in facets if f in schema.get(table, set())]
        if present:
            tables.setdefault(table, {})["facets"] = present
    for table, description in TABLE_DESCRIPTIONS.items():
        if table in schema:
            tables.setdefault(table, {})["description"] = description
    for table in HIDDEN_TABLES & schema.keys():
        tables.setdefault(table, {})["hidden"] = True
    return {"description": DATABASE_DESCRIPTION, "tables": tables}


REVIEW_HINT = (
    "Click any thumbnail to review its image: the picture with its label boxes drawn, its label "
    "problems, its quality flags and its near neighbours graded."
)


def start_here_html(queries: dict[str, dict[str, Any]], urls: dict[str, str]) -> Markup:
    """The database page's opening: the description, then the canned queries (title, link,
    description), so that they come before the SQL editor and the table list. The queries of each
    quality flag are links in the quality overview's line."""
    flags = [name for name in queries if name in FLAG_QUERIES]
    items = "".join(
        f'<li><a href="{escape(urls[name])}">{escape(query.get("title") or name)}</a>'
        + (f": {escape(query['description'])}" if query.get("description") else "")
        + (_flag_links(flags, urls) if name == QUALITY_OVERVIEW else "")
        + "</li>"
        for name, query in queries.items()
        if name not in FLAG_QUERIES
    )
    listing = f'<h2 id="start-here">Queries</h2><ul class="bullets imgindex-start">{items}</ul>' if items else ""
    return Markup(f"<p>{escape(DATABASE_DESCRIPTION)} {escape(REVIEW_HINT)}</p>{listing}")


def _flag_links(names: list[str], urls: dict[str, str]) -> str:
    if not names:
        return ""
    links = ", ".join(f'<a href="{escape(urls[name])}">{escape(FLAG_QUERIES[name])}</a>' for name in names)
    return f' <span class="imgindex-flag-links">The images of each flag, worst first: {links}.</span>'


def json_paths(value: Any) -> list[str] | None:
    """The list of paths in a JSON-array cell, or None when the cell is not one."""
    if not isinstance(value, str) or not value.startswith("["):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
        return parsed
    return None


@dataclass(frozen=True)
class IndexedImage:
    """An image row as a cell shows it."""

    id: int
    path: str
    rel_path: str
    error: str | None


def figure_html(image: IndexedImage, link_url: str, thumb_url: str) -> Markup:
    """One thumbnail (linking to `link_url`, the image's review page) with its relative path as caption."""
    caption = escape(image.rel_path)
    title = escape(image.path)
    if image.error:
        return Markup(
            f'<figure class="imgindex-figure imgindex-unreadable" title="{title}">'
            f'<a href="{escape(link_url)}">unreadable</a><figcaption>{caption}</figcaption></figure>'
        )
    return Markup(
        f'<figure class="imgindex-figure" title="{title}">'
        f'<a href="{escape(link_url)}"><img class="imgindex-thumb" loading="lazy" '
        f'src="{escape(thumb_url)}" alt="{caption}"></a>'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def gallery_html(figures: list[Markup], missing: list[str]) -> Markup:
    """Figures side by side; paths no longer in the index are listed as plain text."""
    gone = "".join(
        f'<figure class="imgindex-figure imgindex-missing"><figcaption>{escape(p)} '
        "(not in the index)</figcaption></figure>"
        for p in missing
    )
    return Markup('<div class="imgindex-gallery">' + "".join(figures) + gone + "</div>")


CSS = """
.imgindex-gallery { display: flex; flex-wrap: wrap; gap: 0.5em; align-items: flex-start; }
.imgindex-figure { margin: 0; max-width: 170px; display: inline-block; vertical-align: top; }
.imgindex-figure img.imgindex-thumb {
  display: block; max-width: 160px; max-height: 160px; border: 1px solid #ccc;
  background: #eee; border-radius: 3px;
}
.imgindex-figure figcaption {
  font-size: 0.75em; color: #444; word-break: break-all; line-height: 1.2; margin-top: 2px;
}
.imgindex-unreadable a, .imgindex-missing figcaption { color: #a00; }
"""
