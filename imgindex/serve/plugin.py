"""Datasette plugin: thumbnails, side-by-side duplicate groups, canned queries, imgindex SQL functions,
and the review page of each image.

Registered as the `imgindex` entry point of the `datasette` group, so `datasette imgindex.db` uses it.
Images are served only by index id (`/-/imgindex/image/<id>`, `/-/imgindex/image/<id>/thumbnail` and
the review page `/-/imgindex/image/<id>/review`): the file path always comes from the `images` table,
never from the request, and the file is served only while it lies inside its split's scanned
folders (`files.py`). Options come from the plugin's configuration (`imgindex serve` sets them):
`debug_pages` (Datasette's pages about the server, `DEBUG_PAGES`), `thumbnail_max_pixels` and
`thumbnail_concurrency`.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from datasette import Response, hookimpl
from datasette.database import Database
from datasette.utils.asgi import Forbidden, NotFound, asgi_start
from datasette.views.base import DatasetteError
from markupsafe import Markup, escape

from .. import reviews
from . import files, review, thumbnails
from . import pages as browse

ROUTE_PREFIX = "/-/imgindex"
SCHEMA_TTL_SECONDS = 2.0
LOOKUP_CHUNK = 500

_SCHEMA_SQL = (
    "select m.name, p.name from sqlite_master m join pragma_table_info(m.name) p where m.type in ('table', 'view')"
)
_schema_cache: dict[str, tuple[float, browse.Schema]] = {}

# Datasette's pages about the server rather than the data: its file paths, versions, plugins,
# settings, metadata, threads, the visitor's actor and the debug tools. Off unless debug_pages.
DEBUG_PAGES = re.compile(
    r"^/+-/+(metadata|versions|plugins|settings|config|threads|databases|actor|allow-debug|permissions|messages"
    r"|patterns)(\.json)?/*$",
    re.IGNORECASE,
)
SEND_CHUNK = 256 * 1024

_thumbnail_cache = thumbnails.ThumbnailCache()
_decode_slots = thumbnails.DecodeSlots()


@dataclass(frozen=True)
class ServeOptions:
    """The plugin's configuration (`plugins.imgindex` in Datasette's metadata)."""

    debug_pages: bool = True  # plain `datasette` keeps its pages; `imgindex serve` turns them off
    thumbnail_max_pixels: int = thumbnails.DEFAULT_MAX_PIXELS
    thumbnail_concurrency: int = thumbnails.DEFAULT_CONCURRENT
    allow_reviews: bool = False  # `imgindex serve --allow-reviews`: the review page records verdicts


_options: weakref.WeakKeyDictionary[Any, ServeOptions] = weakref.WeakKeyDictionary()


def serve_options(datasette: Any) -> ServeOptions:
    """The options of this Datasette instance, read from its metadata once."""
    found = _options.get(datasette)
    if found is None:
        config = datasette.plugin_config("imgindex") or {}
        default = ServeOptions()
        found = ServeOptions(
            debug_pages=config.get("debug_pages", default.debug_pages) not in (False, "false", "0", 0),
            thumbnail_max_pixels=_positive(config.get("thumbnail_max_pixels"), default.thumbnail_max_pixels),
            thumbnail_concurrency=_positive(config.get("thumbnail_concurrency"), default.thumbnail_concurrency),
            allow_reviews=config.get("allow_reviews") in (True, "true", "1", 1),
        )
        _options[datasette] = found
    return found


def _positive(value: Any, default: int) -> int:
    """A whole number of at least 1 from the configuration; the default for anything else."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if number >= 1 else default


def is_debug_page(scope: dict[str, Any], base_url: str = "/") -> bool:
    """Whether a request names one of DEBUG_PAGES, however its path is spelled (percent-encoded,
    doubled slashes, a trailing slash, under Datasette's base_url)."""
    raw = scope.get("raw_path")
    spellings = [scope.get("path", ""), raw.decode("latin-1").partition("?")[0] if raw else ""]
    for spelling in spellings:
        path = unquote(spelling)
        if base_url != "/" and path.startswith(base_url):
            path = "/" + path[len(base_url) :]
        if DEBUG_PAGES.match(path):
            return True
    return False


ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


@hookimpl
def asgi_wrapper(datasette: Any) -> Callable[[ASGIApp], ASGIApp]:
    """Answer 404 to Datasette's pages about the server unless the debug_pages option allows them."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if (
                scope.get("type") == "http"
                and not serve_options(datasette).debug_pages
                and is_debug_page(scope, datasette.setting("base_url") or "/")
            ):
                body = b"Not found: pages about the server are off (imgindex serve --debug-pages turns them on)"
                await asgi_start(send, 404, {"cache-control": "no-store"}, "text/plain; charset=utf-8")
                await send({"type": "http.response.body", "body": body})
                return
            await app(scope, receive, send)

        return guarded

    return wrap


def _to_schema(rows: Any) -> browse.Schema:
    schema: browse.Schema = {}
    for table, column in rows:
        schema.setdefault(table, set()).add(column)
    return schema


def _file_schema(path: str) -> browse.Schema:
    """Schema of a database file read through a short read-only connection, cached briefly."""
    now = time.monotonic()
    cached = _schema_cache.get(path)
    if cached and now - cached[0] < SCHEMA_TTL_SECONDS:
        return cached[1]
    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
        try:
            schema = _to_schema(conn.execute(_SCHEMA_SQL).fetchall())
        finally:
            conn.close()
    except sqlite3.Error:
        schema = {}
    _schema_cache[path] = (now, schema)
    return schema


async def _schema(db: Database) -> browse.Schema:
    return _to_schema((await db.execute(_SCHEMA_SQL)).rows)


@hookimpl
def prepare_connection(conn: sqlite3.Connection) -> None:
    """Make imgindex's SQL functions (hamming, ...) available in Datasette's SQL, and let its reads
    wait for a lock as long as imgindex's own readers do (store.LOCKS)."""
    try:
        from ..store import LOCKS, register_functions
    except ImportError:  # the core store is not installed alongside
        return
    register_functions(conn)
    conn.execute(f"PRAGMA busy_timeout = {int(LOCKS.busy_timeout * 1000)}")


@hookimpl
def get_metadata(datasette: Any, database: str | None) -> dict[str, Any]:
    names = [database] if database else list(datasette.databases)
    databases: dict[str, Any] = {}
    for name in names:
        db = datasette.databases.get(name)
        if db is None or db.is_memory or not db.path:
            continue
        schema = _file_schema(db.path)
        meta = browse.metadata(schema)
        if meta:
            queries = browse.canned_queries(schema)
            meta["description_html"] = browse.start_here_html(
                queries, {q: str(datasette.urls.query(name, q)) for q in queries}
            )
            databases[name] = meta
    return {"databases": databases} if databases else {}


@hookimpl
def canned_queries(datasette: Any, database: str) -> Any:
    db = datasette.databases.get(database)
    if db is None or db.is_memory:
        return None

    async def inner() -> dict[str, dict[str, Any]]:
        schema = await _schema(db)
        rules = await _quality_rules(db) if browse.has_quality(schema) else None
        return browse.canned_queries(schema, rules)

    return inner


async def _quality_rules(db: Database) -> dict[str, str] | None:
    """The rule the stored quality flags applied, read now: flag -> its sentence (quality_rule);
    None when it cannot be read just now (the descriptions then state no rule rather than a guess)."""
    try:
        rows = (await db.execute("select flag, rule from quality_rule")).rows
    except sqlite3.Error:
        return None
    return {str(flag): str(rule) for flag, rule in rows if flag and rule}


@hookimpl
def extra_css_urls(datasette: Any) -> list[str]:
    return [datasette.urls.path(f"{ROUTE_PREFIX}/imgindex.css")]


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    return [
        (rf"^{ROUTE_PREFIX}/imgindex\.css$", _css),
        (rf"^{ROUTE_PREFIX}/image/(?P<image_id>[0-9]{{1,18}})$", _image),
        (rf"^{ROUTE_PREFIX}/image/(?P<image_id>[0-9]{{1,18}})/thumbnail$", _thumbnail),
        (rf"^{ROUTE_PREFIX}/image/(?P<image_id>[0-9]{{1,18}})/review$", _review),
        (rf"^{ROUTE_PREFIX}/image/(?P<image_id>[0-9]{{1,18}})/verdict$", _record_verdict),
    ]


@hookimpl
def render_cell(row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any) -> Any:
    if isinstance(value, int) and ((table == "images" and column == "id") or column == "image_id"):
        return _review_link(datasette, database, value)
    if column == "flag" and value in browse.FLAGS_BY_NAME:
        return _flag_link(datasette, database, value, _row_splits(row, "split"))
    if column not in browse.PATH_COLUMNS or not isinstance(value, str):
        return None
    paths = [value] if column in browse.SINGLE_PATH_COLUMNS else browse.json_paths(value)
    if not paths:
        return None
    splits = _row_splits(row, browse.PATH_COLUMNS[column])
    db = datasette.databases.get(database)
    if db is None:
        return None

    async def inner() -> Markup | None:
        found = await _lookup(db, paths, splits)
        if not found:
            return None
        figures = [_figure(datasette, database, found[p]) for p in paths if p in found]
        return browse.gallery_html(figures, [p for p in paths if p not in found])

    return inner


def _row_splits(row: Any, key: str) -> list[str] | None:
    """The split(s) the row's paths belong to ('split' or a 'splits' list), to use the (split, path) index."""
    for name in (key, "splits"):
        try:
            value = row[name]
        except (IndexError, KeyError):
            continue
        if isinstance(value, str) and value:
            return [value] if name == key else value.split(",")
    return None


async def _lookup(db: Database, paths: list[str], splits: list[str] | None) -> dict[str, browse.IndexedImage]:
    """Index rows for these paths (of these splits when known); empty when the table is absent."""
    found: dict[str, browse.IndexedImage] = {}
    for start in range(0, len(paths), LOOKUP_CHUNK):
        chunk = paths[start : start + LOOKUP_CHUNK]
        marks = ",".join("?" * len(chunk))
        sql = f"select id, path, rel_path, error from images where path in ({marks})"
        params: list[Any] = list(chunk)
        if splits:
            sql += f" and split in ({','.join('?' * len(splits))})"
            params.extend(splits)
        try:
            rows = (await db.execute(sql, params)).rows
        except sqlite3.Error:  # not an index database (no images table, other columns)
            return {}
        for row in rows:
            found[row[1]] = browse.IndexedImage(row[0], row[1], row[2], row[3])
    return found


def _image_url(datasette: Any, database: str, image_id: int, suffix: str = "") -> str:
    return str(datasette.urls.path(f"{ROUTE_PREFIX}/image/{image_id}{suffix}?db={quote(database)}"))


def _figure(datasette: Any, database: str, image: browse.IndexedImage) -> Markup:
    return browse.figure_html(
        image,
        _image_url(datasette, database, image.id, "/review"),
        _image_url(datasette, database, image.id, "/thumbnail"),
    )


def _review_link(datasette: Any, database: str, image_id: int) -> Markup | None:
    """The images row page's id cell (the table page shows ids as row links instead)."""
    db = datasette.databases.get(database)
    if db is None or db.is_memory or not db.path or not browse.is_index(_file_schema(db.path)):
        return None
    url = escape(_image_url(datasette, database, image_id, "/review"))
    return Markup(f'{image_id} · <a class="imgindex-review-link" href="{url}">review this image</a>')


def _flag_link(datasette: Any, database: str, flag: str, splits: list[str] | None) -> Markup | None:
    """A quality flag's cell: a link to the images carrying it (of the row's split), worst first."""
    db = datasette.databases.get(database)
    if db is None or db.is_memory or not db.path or not browse.has_quality(_file_schema(db.path)):
        return None
    url = str(datasette.urls.query(database, browse.flag_query_name(flag)))
    if splits and len(splits) == 1:
        url += f"?split={quote(splits[0])}"
    return Markup(f'<a class="imgindex-flag" href="{escape(url)}">{escape(flag)}</a>')


async def _css() -> Response:
    return Response(browse.CSS + review.CSS, content_type="text/css; charset=utf-8")


async def _index_db(datasette: Any, request: Any) -> tuple[str, Database]:
    """The database named by ?db=, else the first one holding an images table."""
    requested = request.args.get("db")
    names = [requested] if requested else [n for n in datasette.databases if n != "_internal"]
    for name in names:
        db = datasette.databases.get(name)
        if db is not None and name != "_internal" and browse.is_index(await _schema(db)):
            return name, db
    raise NotFound("No imgindex database here")


async def _indexed_file(datasette: Any, request: Any) -> tuple[dict[str, Any], files.OpenedFile]:
    """The images row named by the URL and its file, opened; 404 unless the file is still the one
    indexed (same size and mtime: a file replaced, or a link re-pointed, is not served), 403 when
    it lies outside the folders its split was scanned from (a link leading out of them)."""
    _, db, row = await _image_row(datasette, request)
    opened = files.open_checked(row, await _roots(db, row["split"]))
    if isinstance(opened, files.Refusal):
        raise (Forbidden if opened.status == 403 else NotFound)(opened.message)
    return row, opened


async def _roots(db: Database, split: str) -> list[str]:
    """The folders the split was scanned from (none when the index does not say: nothing is
    served). A read the index refuses (a lock held past the busy timeout) is a 503, never taken
    for 'no folders'."""
    try:
        return [r[0] for r in (await db.execute(files.ROOTS_SQL, [split])).rows]
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):
            return []
        raise DatasetteError(f"The index could not be read just now ({err}): try again", status=503) from err


async def _image_row(datasette: Any, request: Any) -> tuple[str, Database, dict[str, Any]]:
    """The database and the images row named by the URL's id (404 when there is none)."""
    name, db = await _index_db(datasette, request)
    await datasette.ensure_permissions(
        request.actor, [("view-table", (name, "images")), ("view-database", name), "view-instance"]
    )
    image_id = int(request.url_vars["image_id"])
    row = (await db.execute(review.IMAGE_SQL, [image_id])).first()
    if row is None:
        raise NotFound(f"No image {image_id} in the index")
    return name, db, dict(row)


def _etag(info: Any, variant: str) -> str:
    return f'"{info.st_size}-{info.st_mtime_ns}-{variant}"'


async def _image(datasette: Any, request: Any, send: Any) -> Response | None:
    row, opened = await _indexed_file(datasette, request)
    with opened.file:
        mime = None if row["error"] else thumbnails.mime_type(row["format"])
        headers = {"x-content-type-options": "nosniff", "cache-control": "no-cache", "etag": _etag(opened.info, "file")}
        if mime is None:
            headers["content-disposition"] = files.content_disposition(Path(row["path"]).name)
        if request.headers.get("if-none-match") == headers["etag"]:
            return Response("", status=304, headers=headers)
        headers["content-length"] = str(opened.info.st_size)
        await asgi_start(send, 200, headers, mime or "application/octet-stream")
        left = opened.info.st_size
        while True:  # the open file, read in a thread: never the path again
            chunk = await asyncio.to_thread(opened.file.read, min(SEND_CHUNK, left))
            left -= len(chunk)
            done = not chunk or left <= 0
            await send({"type": "http.response.body", "body": chunk, "more_body": not done})
            if done:
                return None


async def _thumbnail(datasette: Any, request: Any) -> Response:
    row, opened = await _indexed_file(datasette, request)
    with opened.file:
        if row["error"]:
            raise NotFound("This file could not be read when it was indexed")
        side = thumbnails.clamp_side(request.args.get("size"))
        options = serve_options(datasette)
        etag = _etag(opened.info, f"thumb{side}")
        headers = {"x-content-type-options": "nosniff", "cache-control": "no-cache", "etag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response("", status=304, headers=headers)
        key = (row["path"], opened.info.st_size, opened.info.st_mtime_ns, side, options.thumbnail_max_pixels)
        body = _thumbnail_cache.get(key)
        if body is None:
            try:
                async with _decode_slots.semaphore(options.thumbnail_concurrency):
                    body = await asyncio.to_thread(
                        thumbnails.make_thumbnail, opened.file, side, options.thumbnail_max_pixels
                    )
            except thumbnails.TooLarge as error:
                refused = {
                    "x-content-type-options": "nosniff",
                    "cache-control": "no-store",
                    "x-imgindex-reason": str(error),
                }
                return Response(thumbnails.placeholder(side), status=413, content_type="image/jpeg", headers=refused)
            except Exception:  # noqa: BLE001 -- the file changed into something Pillow cannot read
                raise NotFound("Cannot make a thumbnail of this file") from None
            _thumbnail_cache.put(key, body)
    return Response(body, content_type="image/jpeg", headers=headers)


BROWSER_FORMATS = {"JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP"}  # shown as they are, upright by the browser
PICTURE_SIDE = 512


def _picture_src(datasette: Any, database: str, row: dict[str, Any], roots: list[str]) -> tuple[str | None, str | None]:
    """The URL of the upright picture (the file itself, or a large thumbnail for formats and
    orientations a browser may not apply), or why there is none."""
    problem = files.check(row, roots)
    if isinstance(problem, files.Refusal):
        return None, problem.message
    if row["error"]:
        return None, f"The file could not be read when it was indexed: {row['error']}"
    image_id = int(row["id"])
    fmt = (row["format"] or "").upper()
    if fmt in ("JPEG", "MPO") or (fmt in BROWSER_FORMATS and row.get("orientation") in (None, 1)):
        return _image_url(datasette, database, image_id), None
    return _image_url(datasette, database, image_id, "/thumbnail") + f"&size={PICTURE_SIDE}", None


async def _rows(db: Database, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in (await db.execute(sql, params)).rows]


async def _review_data(db: Database, row: dict[str, Any]) -> dict[str, Any]:
    """The labels, label files, label problems and near neighbours of an images row."""
    schema = await _schema(db)
    where = {"split": row["split"], "path": row["path"]}
    has_labels = all(t in schema for t in ("labels", "classes", "label_files", "label_file_images"))
    has_pairs = browse.has_columns(schema, "near_pairs", "a", "b", "distance")
    found: dict[str, Any] = {"has_labels": has_labels, "has_pairs": has_pairs}
    found["labels"] = await _rows(db, review.LABELS_SQL, where) if has_labels else []
    found["label_files"] = await _rows(db, review.LABEL_FILES_SQL, where) if has_labels else []
    problems = has_labels and "label_problems" in schema
    found["problems"] = (
        await _rows(db, review.PROBLEMS_SQL, {**where, "limit": review.MAX_PROBLEMS}) if problems else []
    )
    sql = review.neighbours_sql("kind" in schema.get("near_pairs", set()), "verdict_pairs" in schema)
    params = {"id": row["id"], "limit": review.MAX_NEIGHBOURS}
    found["neighbours"] = await _rows(db, sql, params) if has_pairs else []
    found["has_quality"] = browse.has_quality(schema)
    found["quality_flags"] = (
        await _rows(db, review.QUALITY_FLAGS_SQL, {"id": row["id"]}) if found["has_quality"] else []
    )
    outliers = found["has_quality"] and browse.has_columns(schema, "quality_outliers", "image_id", "score", "measure")
    found["outlier"] = next(iter(await _rows(db, review.OUTLIER_SQL, {"id": row["id"]})), None) if outliers else None
    found["ignored"] = bool("reviews" in schema and await _rows(db, IGNORED_SQL, {"id": row["id"]}))
    return found


IGNORED_SQL = """select 1 from reviews r join images i on i.split = r.split_a and i.path = r.path_a
and i.sha256 is r.sha_a where r.verdict = 'ignore' and i.id = :id"""


async def _record_verdict(datasette: Any, request: Any) -> Response:
    """POST from the review page's buttons: record a reviewer's verdict in the index (Datasette
    checks the form's CSRF token), then back to the page. Refused unless serve allows reviews."""
    if not serve_options(datasette).allow_reviews:
        return Response.text("Reviews are off: start `imgindex serve --allow-reviews` to record them.", status=403)
    if request.method != "POST":
        return Response.text("Send the review page's form (POST).", status=405)
    name, db, row = await _image_row(datasette, request)
    form = await request.post_vars()
    if not (request.cookies.get("ds_csrftoken") and form.get("csrftoken")):
        # Datasette checks a token against its cookie, but lets a request without cookies through
        return Response.text("Send the review page's form: it carries a CSRF token.", status=403)
    verdict = str(form.get("verdict", ""))
    files = [f"{row['split']}:{row['path']}"]
    if form.get("other"):
        other = (await db.execute("select split, path from images where id = ?", [int(form["other"])])).first()
        if other is None:
            return Response.text("No such image.", status=404)
        files.append(f"{other['split']}:{other['path']}")
    try:
        await asyncio.to_thread(_write_review, str(db.path), verdict, files)
    except reviews.ReviewError as exc:
        return Response.text(str(exc), status=400)
    return Response.redirect(_image_url(datasette, name, int(row["id"]), "/review"))


def _write_review(path: str, verdict: str, files: list[str]) -> None:
    from ..api import Index

    with Index(path) as index:
        index.review(verdict, files, source="serve")


async def _review(datasette: Any, request: Any) -> Response:
    name, db, row = await _image_row(datasette, request)
    src, why_not = _picture_src(datasette, name, row, await _roots(db, row["split"]))
    page = review.Review(image=row, picture_src=src, why_no_picture=why_not, **await _review_data(db, row))
    links = review.Links(
        images=str(datasette.urls.path(f"{ROUTE_PREFIX}/image/")),
        query=review.db_query(name),
        table=str(datasette.urls.table(name, "images")),
        problems=str(datasette.urls.table(name, "label_problems")),
        flag_queries={flag: str(datasette.urls.query(name, query)) for query, flag in browse.FLAG_QUERIES.items()},
        csrftoken=request.scope["csrftoken"]()
        if serve_options(datasette).allow_reviews and "csrftoken" in request.scope
        else None,
    )
    context = {
        "database": name,
        "title": f"{row['rel_path'] or row['path']} ({row['split']}): review",
        "body": review.review_html(page, links),
    }
    template = datasette.jinja_env.from_string(review.TEMPLATE)
    return Response.html(await datasette.render_template(template, context, request=request))
