-- Which version of imgindex's extraction wrote each image row (imgindex.extract.EXTRACTOR).
-- A scan extracts again every row of another version, so that one index never mixes hashes
-- computed two ways. Applied once by imgindex.store; rows from before it hold NULL.
ALTER TABLE images ADD COLUMN extractor INTEGER;

-- The scan's covering index, now with the version: a warm re-scan still reads no wide rows.
DROP INDEX IF EXISTS images_split_stamp;
CREATE INDEX IF NOT EXISTS images_split_stamp ON images (split, path, size, mtime_ns, extractor, width, height, error, scan_id);
