-- Near-duplicate candidates, kept up to date incrementally. Applied once by imgindex.store.
-- Triggers on images record which dHash values changed (near_stale); imgindex.near_index.refresh
-- (run by every scan, watch batch and `imgindex upgrade`) recomputes the pairs of the images holding
-- those values only, against an in-memory index of all the others.

CREATE TABLE IF NOT EXISTS near_pairs (
    a INTEGER NOT NULL,            -- images.id, a < b
    b INTEGER NOT NULL,            -- images.id
    distance INTEGER NOT NULL,     -- Hamming distance of the 64-bit dHashes, 0..ceiling (8)
    distance_256 INTEGER NOT NULL, -- Hamming distance of the 256-bit dHashes (second signal)
    kind TEXT NOT NULL,            -- byte-identical, pixel-identical, perceptual, or rejected
    PRIMARY KEY (a, b)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS near_pairs_b ON near_pairs (b);

-- Per readable image: does its dHash carry little information (flat image, or a dHash with
-- almost all bits equal)? Such images are paired only when colour statistics agree too.
CREATE TABLE IF NOT EXISTS near_images (
    id INTEGER PRIMARY KEY,        -- images.id
    low_information INTEGER NOT NULL
);

-- dHash values whose images' pairs must be recomputed.
CREATE TABLE IF NOT EXISTS near_stale (dhash TEXT PRIMARY KEY) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS near_on_insert AFTER INSERT ON images WHEN new.dhash IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO near_stale (dhash) VALUES (new.dhash);
END;

CREATE TRIGGER IF NOT EXISTS near_on_update AFTER UPDATE ON images
WHEN old.dhash IS NOT new.dhash OR old.dhash_256 IS NOT new.dhash_256
  OR old.sha256 IS NOT new.sha256 OR old.error IS NOT new.error
BEGIN
    DELETE FROM near_pairs WHERE a = old.id OR b = old.id;
    DELETE FROM near_images WHERE id = old.id;
    INSERT OR IGNORE INTO near_stale (dhash) SELECT old.dhash WHERE old.dhash IS NOT NULL;
    INSERT OR IGNORE INTO near_stale (dhash) SELECT new.dhash WHERE new.dhash IS NOT NULL;
END;

CREATE TRIGGER IF NOT EXISTS near_on_delete AFTER DELETE ON images
BEGIN
    DELETE FROM near_pairs WHERE a = old.id OR b = old.id;
    DELETE FROM near_images WHERE id = old.id;
    INSERT OR IGNORE INTO near_stale (dhash) SELECT old.dhash WHERE old.dhash IS NOT NULL;
END;

-- An index created before this file: every image is due.
INSERT OR IGNORE INTO near_stale (dhash) SELECT DISTINCT dhash FROM images WHERE dhash IS NOT NULL;
