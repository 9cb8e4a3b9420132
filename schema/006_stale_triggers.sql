-- The near_stale triggers again, without INSERT OR IGNORE: inside a trigger fired by an upsert
-- (INSERT ... ON CONFLICT DO UPDATE) SQLite applies the outer statement's conflict handling, so
-- a dHash already marked stale (two changed copies of one image in a batch) raised an error.
-- A value is now added only when it is not there yet. Applied once by imgindex.store.

DROP TRIGGER IF EXISTS near_on_insert;
DROP TRIGGER IF EXISTS near_on_update;
DROP TRIGGER IF EXISTS near_on_delete;

CREATE TRIGGER IF NOT EXISTS near_on_insert AFTER INSERT ON images WHEN new.dhash IS NOT NULL
BEGIN
    INSERT INTO near_stale (dhash) SELECT new.dhash
    WHERE NOT EXISTS (SELECT 1 FROM near_stale WHERE dhash = new.dhash);
END;

CREATE TRIGGER IF NOT EXISTS near_on_update AFTER UPDATE ON images
WHEN old.dhash IS NOT new.dhash OR old.dhash_256 IS NOT new.dhash_256
  OR old.sha256 IS NOT new.sha256 OR old.error IS NOT new.error
BEGIN
    DELETE FROM near_pairs WHERE a = old.id OR b = old.id;
    DELETE FROM near_images WHERE id = old.id;
    INSERT INTO near_stale (dhash) SELECT old.dhash
    WHERE old.dhash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM near_stale WHERE dhash = old.dhash);
    INSERT INTO near_stale (dhash) SELECT new.dhash
    WHERE new.dhash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM near_stale WHERE dhash = new.dhash);
END;

CREATE TRIGGER IF NOT EXISTS near_on_delete AFTER DELETE ON images
BEGIN
    DELETE FROM near_pairs WHERE a = old.id OR b = old.id;
    DELETE FROM near_images WHERE id = old.id;
    INSERT INTO near_stale (dhash) SELECT old.dhash
    WHERE old.dhash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM near_stale WHERE dhash = old.dhash);
END;
