-- A covering index for the start of every scan: the stamps of a split's files (and what the label
-- stage needs of them) read from the index alone, without touching the wide image rows.
CREATE INDEX IF NOT EXISTS images_split_stamp ON images (split, path, size, mtime_ns, width, height, error, scan_id);
