-- Crop-tolerant candidates: every image stores six 64-bit difference hashes of its signature grid
-- (imgindex.extract.measures.window_hashes: the whole grid, then windows of 95 % of each axis at
-- the four corners and the centre). A pair is a candidate when its dHashes are within 8 bits or
-- one image's whole-grid hash is within a few bits of a window hash of the other (a copy cropped
-- by a few per cent). near_pairs is derived data: it is rebuilt (every dHash marked stale) and
-- filled by the next scan, watch batch or `imgindex upgrade`; extractor 4 re-extracts the images.
ALTER TABLE images ADD COLUMN window_hashes BLOB;

DROP TABLE IF EXISTS near_pairs;
CREATE TABLE near_pairs (
    a INTEGER NOT NULL,            -- images.id, a < b
    b INTEGER NOT NULL,            -- images.id
    distance INTEGER NOT NULL,     -- Hamming distance of the 64-bit dHashes (above 8 for a pair
                                   -- found by its window hashes alone)
    distance_256 INTEGER NOT NULL, -- Hamming distance of the 256-bit dHashes
    kind TEXT NOT NULL,            -- grade by the pixels: byte-identical, pixel-identical, copy,
                                   -- similar-scene, or different (the second signals disagree)
    change REAL,                   -- largest local difference of the aligned signatures (std devs)
    background REAL,               -- its 75th percentile: how much the images differ elsewhere
    window_distance INTEGER,       -- fewest bits between one image's whole-grid hash and a window
                                   -- hash of the other (NULL: an image without window hashes)
    PRIMARY KEY (a, b)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS near_pairs_b ON near_pairs (b);
DELETE FROM near_images;
INSERT INTO near_stale (dhash) SELECT DISTINCT dhash FROM images
WHERE dhash IS NOT NULL AND dhash NOT IN (SELECT dhash FROM near_stale);
INSERT OR IGNORE INTO verdict_stale VALUES (1);

DROP TRIGGER IF EXISTS near_on_update;
CREATE TRIGGER IF NOT EXISTS near_on_update AFTER UPDATE ON images
WHEN old.dhash IS NOT new.dhash OR old.dhash_256 IS NOT new.dhash_256
  OR old.sha256 IS NOT new.sha256 OR old.error IS NOT new.error OR old.signature IS NOT new.signature
  OR old.window_hashes IS NOT new.window_hashes
BEGIN
    DELETE FROM near_pairs WHERE a = old.id OR b = old.id;
    DELETE FROM near_images WHERE id = old.id;
    INSERT INTO near_stale (dhash) SELECT old.dhash
    WHERE old.dhash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM near_stale WHERE dhash = old.dhash);
    INSERT INTO near_stale (dhash) SELECT new.dhash
    WHERE new.dhash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM near_stale WHERE dhash = new.dhash);
END;
