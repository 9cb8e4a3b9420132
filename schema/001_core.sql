-- Core tables of an imgindex database. Applied once, idempotently, by imgindex.store.
-- Every column is documented in README.md ("What the database holds").

CREATE TABLE IF NOT EXISTS splits (
    name TEXT NOT NULL,            -- split name, e.g. train, val
    root TEXT NOT NULL,            -- absolute folder scanned for this split
    scanned_at TEXT,               -- UTC time of the last completed scan of this folder
    PRIMARY KEY (name, root)
);

CREATE TABLE IF NOT EXISTS scans (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,      -- UTC ISO-8601
    ended_at TEXT,                 -- NULL while running, or if the scan was killed
    arguments TEXT NOT NULL,       -- JSON: {"splits": {name: [folders]}, "workers": n, ...}
    new INTEGER,
    changed INTEGER,
    unchanged INTEGER,
    removed INTEGER,
    errors INTEGER,
    seconds REAL
);

CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    split TEXT NOT NULL,
    path TEXT NOT NULL,            -- absolute path
    rel_path TEXT NOT NULL,        -- path relative to the scanned folder, '/'-separated
    size INTEGER NOT NULL,         -- bytes
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT,                   -- content hash of the file's bytes
    format TEXT,                   -- Pillow format: JPEG, PNG, ...
    mode TEXT,                     -- Pillow mode as stored: RGB, L, P, CMYK, I;16, ...
    width INTEGER,                 -- as stored (before EXIF orientation)
    height INTEGER,
    orientation INTEGER,           -- EXIF orientation tag 1..8, NULL when absent
    channels INTEGER,
    frames INTEGER,                -- frame count (animated GIF/WebP/TIFF), 1 otherwise
    dhash TEXT,                    -- 64-bit difference hash, 16 hex digits, ImageHash bit order
    dhash_256 TEXT,                -- 256-bit difference hash (17x16), 64 hex digits
    pixel_hash TEXT,               -- hash of the decoded pixels at analysis scale, with size and mode
    brightness REAL,               -- mean luma (ITU-R 601), 0..255, whole image
    mean_r REAL, mean_g REAL, mean_b REAL,
    std_r REAL, std_g REAL, std_b REAL,
    histogram TEXT,                -- JSON {"r": [16 fractions], "g": [...], "b": [...]}
    error TEXT,                    -- why the file could not be read; NULL when it was
    scan_id INTEGER,               -- scan that last wrote this row
    UNIQUE (split, path)
);

CREATE INDEX IF NOT EXISTS images_dhash ON images (dhash);
CREATE INDEX IF NOT EXISTS images_sha256 ON images (sha256);
CREATE INDEX IF NOT EXISTS images_split_dhash ON images (split, dhash);
