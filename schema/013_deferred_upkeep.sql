-- Upkeep a large write puts off (imgindex.store.deferred_upkeep): the indexes on the hashes and the
-- trigger marking new dHashes stale each cost a random B-tree insert per row, so a scan adding many
-- rows drops them, writes, then builds them once. Their definitions wait here meanwhile, so that
-- a writer killed in between leaves them to the next one to open the index (store.restore_deferred).
CREATE TABLE IF NOT EXISTS deferred_upkeep (
    name TEXT PRIMARY KEY,         -- the index or trigger, as in sqlite_master
    sql TEXT NOT NULL              -- its CREATE statement, as in sqlite_master
);
