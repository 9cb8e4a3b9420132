-- Paths that are not valid UTF-8. SQLite text must be, so such a path is stored in images.path
-- (and rel_path) with each undecodable byte written \xNN (imgindex.walk.stored_text), and its
-- exact bytes here, from which os.fsdecode gives the name to open; NULL for every other path.
ALTER TABLE images ADD COLUMN path_bytes BLOB;

-- Links in the split folders that lead nowhere (dangling, or a loop of links): skipped by a scan
-- and counted here (NULL for scans before this column).
ALTER TABLE scans ADD COLUMN skipped INTEGER;
