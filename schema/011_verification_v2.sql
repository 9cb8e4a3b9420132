-- Verdict rule signature-v2: a copy pair (by its pixels) whose largest difference stands out on an
-- object both its label sets box is a similar scene (verdict_pairs.reason 'a labelled object
-- differs'). The next command that writes the index computes the verdict again.
INSERT OR IGNORE INTO verdict_stale VALUES (1);
