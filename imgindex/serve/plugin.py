"""Datasette plugin: thumbnails, side-by-side duplicate groups, canned queries, imgindex SQL functions.

Registered as the `imgindex` entry point of the `datasette` group, so `datasette imgindex.db` uses it.
Images are served only by index id (`/-/imgindex/image/<id>` and `/-/imgindex/image/<id>/thumbnail`):
the file path always comes from the `images` table, never from the request.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from datasette import Response, hookimpl
from datasette.database import Database
from datasette.utils.asgi import NotFound, asgi_send_file
from markupsafe import Markup

from . import pages as browse
from . import thumbnails

ROUTE_PREFIX = "/-/imgindex"
SCHEMA_TTL_SECONDS = 2.0
LOOKUP_CHUNK = 500

_SCHEMA_SQL = (
    "select m.name, p.name from sqlite_master m join pragma_table_info(m.name) p where m.type in ('table', 'view')"
)
_schema_cache: dict[str, tuple[float, browse.Schema]] = {}


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
    """Make imgindex's SQL functions (hamming, ...) available in Datasette's SQL."""
    try:
        from ..store import register_functions
    except ImportError:  # the core store is not installed alongside
        return
    register_functions(conn)


@hookimpl
def get_metadata(datasette: Any, database: str | None) -> dict[str, Any]:
    names = [database] if database else list(datasette.databases)
    databases: dict[str, Any] = {}
    for name in names:
        db = datasette.databases.get(name)
        if db is None or db.is_memory or not db.path:
            continue
        meta = browse.metadata(_file_schema(db.path))
        if meta:
            databases[name] = meta
    return {"databases": databases} if databases else {}


@hookimpl
def canned_queries(datasette: Any, database: str) -> Any:
    db = datasette.databases.get(database)
    if db is None or db.is_memory:
        return None

    async def inner() -> dict[str, dict[str, Any]]:
        return browse.canned_queries(await _schema(db))

    return inner


@hookimpl
def extra_css_urls(datasette: Any) -> list[str]:
    return [datasette.urls.path(f"{ROUTE_PREFIX}/imgindex.css")]


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    return [
        (rf"^{ROUTE_PREFIX}/imgindex\.css$", _css),
        (rf"^{ROUTE_PREFIX}/image/(?P<image_id>[0-9]{{1,18}})$", _image),
        (rf"^{ROUTE_PREFIX}/image/(?P<image_id>[0-9]{{1,18}})/thumbnail$", _thumbnail),
    ]


@hookimpl
def render_cell(row: Any, value: Any, column: str, database: str, datasette: Any) -> Any:
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
        _image_url(datasette, database, image.id),
        _image_url(datasette, database, image.id, "/thumbnail"),
    )


async def _css() -> Response:
    return Response(browse.CSS, content_type="text/css; charset=utf-8")


async def _index_db(datasette: Any, request: Any) -> tuple[str, Database]:
    """The database named by ?db=, else the first one holding an images table."""
    requested = request.args.get("db")
    names = [requested] if requested else [n for n in datasette.databases if n != "_internal"]
    for name in names:
        db = datasette.databases.get(name)
        if db is not None and name != "_internal" and browse.is_index(await _schema(db)):
            return name, db
    raise NotFound("No imgindex database here")


async def _indexed_file(datasette: Any, request: Any) -> tuple[dict[str, Any], os.stat_result]:
    """The images row named by the URL and the stat of its file; 404 unless the file is still the
    one indexed (same size and mtime: a file replaced, or a link re-pointed, is not served)."""
    name, db = await _index_db(datasette, request)
    await datasette.ensure_permissions(
        request.actor, [("view-table", (name, "images")), ("view-database", name), "view-instance"]
    )
    image_id = int(request.url_vars["image_id"])
    row = (await db.execute("select path, size, mtime_ns, format, error from images where id = ?", [image_id])).first()
    if row is None:
        raise NotFound(f"No image {image_id} in the index")
    try:
        info = os.stat(row["path"])
    except OSError:
        raise NotFound(f"Image {image_id} is no longer on disk") from None
    if not stat.S_ISREG(info.st_mode):
        raise NotFound(f"Image {image_id} is not a regular file")
    if (info.st_size, info.st_mtime_ns) != (row["size"], row["mtime_ns"]):
        raise NotFound(f"Image {image_id} changed since it was indexed: scan again to see it")
    return dict(row), info


def _etag(info: os.stat_result, variant: str) -> str:
    return f'"{info.st_size}-{info.st_mtime_ns}-{variant}"'


async def _image(datasette: Any, request: Any, send: Any) -> Response | None:
    row, info = await _indexed_file(datasette, request)
    mime = None if row["error"] else thumbnails.mime_type(row["format"])
    headers = {"x-content-type-options": "nosniff", "cache-control": "no-cache", "etag": _etag(info, "file")}
    if mime is None:
        name = Path(row["path"]).name.replace('"', "")
        headers["content-disposition"] = f'attachment; filename="{name}"'
    if request.headers.get("if-none-match") == headers["etag"]:
        return Response("", status=304, headers=headers)
    await asgi_send_file(send, row["path"], content_type=mime or "application/octet-stream", headers=headers)
    return None


async def _thumbnail(datasette: Any, request: Any) -> Response:
    row, info = await _indexed_file(datasette, request)
    if row["error"]:
        raise NotFound("This file could not be read when it was indexed")
    side = thumbnails.clamp_side(request.args.get("size"))
    etag = _etag(info, f"thumb{side}")
    headers = {"x-content-type-options": "nosniff", "cache-control": "no-cache", "etag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response("", status=304, headers=headers)
    try:
        body = await asyncio.to_thread(thumbnails.cached_thumbnail, row["path"], info.st_size, info.st_mtime_ns, side)
    except Exception as error:  # noqa: BLE001 -- the file changed into something Pillow cannot read
        raise NotFound(f"Cannot make a thumbnail: {error}") from None
    return Response(body, content_type="image/jpeg", headers=headers)
