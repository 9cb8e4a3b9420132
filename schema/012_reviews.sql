-- A reviewer's verdicts (imgindex.reviews): "not-duplicate" or "duplicate" for a pair of files,
-- "ignore" for a file (split_b, path_b, sha_b NULL). Each file is named by split, path and the
-- sha256 of its content when reviewed: a review applies while the file is indexed unchanged, so a
-- re-scan keeps it and an edit drops it. The stored verdict applies them (verdict_pairs.reason
-- 'reviewed: ...'); writing one marks the verdict stale.
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY,
    verdict TEXT NOT NULL CHECK (verdict IN ('not-duplicate', 'duplicate', 'ignore')),
    split_a TEXT NOT NULL,
    path_a TEXT NOT NULL,
    sha_a TEXT,
    split_b TEXT,
    path_b TEXT,
    sha_b TEXT,
    note TEXT,
    source TEXT,                   -- cli | serve | api
    created_at TEXT NOT NULL       -- UTC, ISO 8601
);

CREATE INDEX IF NOT EXISTS reviews_a ON reviews (split_a, path_a);
CREATE INDEX IF NOT EXISTS reviews_b ON reviews (split_b, path_b);
