"""Label settings kept in the `settings` table (key -> value)."""

from __future__ import annotations

import sqlite_utils

from .. import store


def get_setting(db: sqlite_utils.Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return None if row is None else row[0]


def set_setting(db: sqlite_utils.Database, key: str, value: str | None) -> None:
    """Store `value` under `key`; None deletes the key."""
    with store.write_transaction(db):
        if value is None:
            db.conn.execute("DELETE FROM settings WHERE key = ?", [key])
        else:
            db.conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
