-- What each split held when a scan last finished it: a digest of its walk, the (path, size,
-- mtime_ns) of every image file in walk order, and what the rows it left add up to. A later scan
-- whose walk has the same digest, over rows that still add up the same (imgindex.store.split_unchanged),
-- knows the split unchanged without reading every stored stamp. Any write to a split's rows changes
-- their count or newest scan, so the digest no longer applies and the stamps are compared one by one.
CREATE TABLE IF NOT EXISTS split_stamps (
    split TEXT PRIMARY KEY,
    digest TEXT NOT NULL,          -- BLAKE2b-128 of the walk's stamps (imgindex.store.stamp_digest)
    files INTEGER NOT NULL,        -- rows of the split then
    last_scan INTEGER,             -- their largest scan_id
    total_size INTEGER,            -- the sum of their size
    total_mtime REAL               -- and of their mtime_ns
) WITHOUT ROWID;
