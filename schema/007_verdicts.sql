-- Verdicts: every near pair graded by where two images differ, and the verdict every output reads.
-- Applied once by imgindex.store. near_pairs is derived data: it is rebuilt with the new grades
-- (every dHash marked stale, so the next scan, watch batch or `imgindex upgrade` recomputes it).

-- The verification signature (imgindex.extract.measures.signature): 32x32 grey levels, upright.
ALTER TABLE images ADD COLUMN signature BLOB;

DROP TABLE IF EXISTS near_pairs;
CREATE TABLE near_pairs (
    a INTEGER NOT NULL,            -- images.id, a < b
    b INTEGER NOT NULL,            -- images.id
    distance INTEGER NOT NULL,     -- Hamming distance of the 64-bit dHashes, 0..8
    distance_256 INTEGER NOT NULL, -- Hamming distance of the 256-bit dHashes
    kind TEXT NOT NULL,            -- grade by the pixels: byte-identical, pixel-identical, copy,
                                   -- similar-scene, or different (the second signals disagree)
    change REAL,                   -- largest local difference of the aligned signatures (std devs)
    background REAL,               -- its 75th percentile: how much the images differ elsewhere
    PRIMARY KEY (a, b)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS near_pairs_b ON near_pairs (b);
DELETE FROM near_images;
INSERT INTO near_stale (dhash) SELECT DISTINCT dhash FROM images
WHERE dhash IS NOT NULL AND dhash NOT IN (SELECT dhash FROM near_stale);

DROP TRIGGER IF EXISTS near_on_update;
CREATE TRIGGER IF NOT EXISTS near_on_update AFTER UPDATE ON images
WHEN old.dhash IS NOT new.dhash OR old.dhash_256 IS NOT new.dhash_256
  OR old.sha256 IS NOT new.sha256 OR old.error IS NOT new.error OR old.signature IS NOT new.signature
BEGIN
    DELETE FROM near_pairs WHERE a = old.id OR b = old.id;
    DELETE FROM near_images WHERE id = old.id;
    INSERT INTO near_stale (dhash) SELECT old.dhash
    WHERE old.dhash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM near_stale WHERE dhash = old.dhash);
    INSERT INTO near_stale (dhash) SELECT new.dhash
    WHERE new.dhash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM near_stale WHERE dhash = new.dhash);
END;

-- The verdict (imgindex.near.verdict), rewritten by every command that writes the index: duplicate
-- groups (every two members verified against each other: groups never chain) and scenes (different
-- photos of one scene, joined by similar-scene pairs). The rule applied is in settings
-- ('verdict.rule', JSON).
CREATE TABLE IF NOT EXISTS verdict_groups (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,            -- duplicates | scene
    grade TEXT NOT NULL,           -- duplicates: byte-identical, pixel-identical or copy (the weakest
                                   -- link inside); scene: similar-scene
    size INTEGER NOT NULL,         -- images in the group
    max_distance INTEGER           -- largest dHash distance between two members
);
CREATE TABLE IF NOT EXISTS verdict_members (
    group_id INTEGER NOT NULL,     -- verdict_groups.id
    image_id INTEGER NOT NULL,     -- images.id
    PRIMARY KEY (group_id, image_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS verdict_members_image ON verdict_members (image_id);

-- Near pairs the verdict grades otherwise than their pixels (near_pairs.kind): a copy by the pixels
-- whose labels disagree is a similar scene. The grade every output shows is
-- coalesce(verdict_pairs.grade, near_pairs.kind).
CREATE TABLE IF NOT EXISTS verdict_pairs (
    a INTEGER NOT NULL,
    b INTEGER NOT NULL,
    grade TEXT NOT NULL,
    reason TEXT,
    PRIMARY KEY (a, b)
) WITHOUT ROWID;

-- Duplicate pairs whose labels disagree: the same picture labelled two ways.
CREATE TABLE IF NOT EXISTS label_conflicts (
    a INTEGER NOT NULL,            -- images.id, a < b
    b INTEGER NOT NULL,
    group_id INTEGER,              -- their duplicate group (verdict_groups.id)
    grade TEXT NOT NULL,           -- the pair's grade: byte-identical, pixel-identical or copy
    kind TEXT NOT NULL,            -- classes differ | boxes differ
    detail TEXT,                   -- which classes or how many boxes
    PRIMARY KEY (a, b)
) WITHOUT ROWID;

-- Set by the code that writes what the verdict reads (near pairs, labels, which images a label
-- file covers, removed images: imgindex.store.mark_verdict_stale); the writer then recomputes the
-- verdict and clears it, so a write that changed none of these leaves the stored verdict as it is.
CREATE TABLE IF NOT EXISTS verdict_stale (flag INTEGER PRIMARY KEY CHECK (flag = 1));
INSERT OR IGNORE INTO verdict_stale VALUES (1);
