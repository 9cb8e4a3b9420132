-- Image quality: measures taken at scan time in the same decode (imgindex.extract.measures) and
-- the flags judged from them (imgindex.quality), rewritten by every command that writes.
-- Applied once by imgindex.store; rows of an older extractor are extracted again by the next scan.

ALTER TABLE images ADD COLUMN luma_std REAL;        -- standard deviation of the grey levels, 0..255
ALTER TABLE images ADD COLUMN brightness_p5 INTEGER;  -- 5th percentile of the grey levels, 0..255
ALTER TABLE images ADD COLUMN brightness_p95 INTEGER; -- 95th percentile of the grey levels, 0..255
ALTER TABLE images ADD COLUMN dark_share REAL;      -- share of near-black pixels (grey level <= 25)
ALTER TABLE images ADD COLUMN light_share REAL;     -- share of near-white pixels (grey level >= 230)
ALTER TABLE images ADD COLUMN entropy REAL;         -- entropy of the grey levels, bits (0..8)
ALTER TABLE images ADD COLUMN chroma REAL;          -- mean spread of a pixel's channels, 0..255
ALTER TABLE images ADD COLUMN sharpness REAL;       -- finest-scale share of the contrast (see README)
ALTER TABLE images ADD COLUMN detail REAL;          -- RMS difference of neighbouring grey levels, 0..255

-- Each flag an image carries (imgindex.quality.FLAGS), with the value it was judged on.
CREATE TABLE IF NOT EXISTS quality_flags (
    image_id INTEGER NOT NULL,     -- images.id
    flag TEXT NOT NULL,            -- dark, light, blurry, low_information, odd_aspect_ratio, odd_size,
                                   -- grayscale, outlier
    value REAL,                    -- the measure the flag was judged on
    PRIMARY KEY (image_id, flag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS quality_flags_flag ON quality_flags (flag);

-- How far each readable image lies from its split on the quality measures (robust z-score).
CREATE TABLE IF NOT EXISTS quality_outliers (
    image_id INTEGER PRIMARY KEY,  -- images.id
    score REAL,                    -- largest robust z-score over the measures; NULL in a split too small to judge
    measure TEXT                   -- the measure of that largest score
);

-- Splits whose flags must be judged again: set by the triggers below, emptied by the refresh.
CREATE TABLE IF NOT EXISTS quality_stale (split TEXT PRIMARY KEY) WITHOUT ROWID;
INSERT OR IGNORE INTO quality_stale (split) SELECT DISTINCT split FROM images;

CREATE TRIGGER IF NOT EXISTS quality_on_insert AFTER INSERT ON images
BEGIN
    INSERT INTO quality_stale (split) SELECT new.split
    WHERE NOT EXISTS (SELECT 1 FROM quality_stale WHERE split = new.split);
END;

CREATE TRIGGER IF NOT EXISTS quality_on_update AFTER UPDATE ON images
WHEN old.extractor IS NOT new.extractor OR old.sha256 IS NOT new.sha256 OR old.error IS NOT new.error
  OR old.width IS NOT new.width OR old.height IS NOT new.height OR old.orientation IS NOT new.orientation
  OR old.split IS NOT new.split
BEGIN
    INSERT INTO quality_stale (split) SELECT new.split
    WHERE NOT EXISTS (SELECT 1 FROM quality_stale WHERE split = new.split);
    INSERT INTO quality_stale (split) SELECT old.split
    WHERE NOT EXISTS (SELECT 1 FROM quality_stale WHERE split = old.split);
END;

CREATE TRIGGER IF NOT EXISTS quality_on_delete AFTER DELETE ON images
BEGIN
    DELETE FROM quality_flags WHERE image_id = old.id;
    DELETE FROM quality_outliers WHERE image_id = old.id;
    INSERT INTO quality_stale (split) SELECT old.split
    WHERE NOT EXISTS (SELECT 1 FROM quality_stale WHERE split = old.split);
END;
