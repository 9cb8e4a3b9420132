"""Derived views: dropped and re-created on every open, so they always match this version."""

from __future__ import annotations

# Readable images grouped by (split, dhash), paths sorted; the base of the duplicate views.
_HASH_GROUPS = """
SELECT split, dhash, COUNT(*) AS n, json_group_array(path) AS paths
FROM (SELECT split, dhash, path FROM images
      WHERE error IS NULL AND dhash IS NOT NULL ORDER BY split, dhash, path)
GROUP BY split, dhash"""

VIEWS: dict[str, str] = {
    # Images of one split sharing a dHash: DataGradients' duplicates (distance 0).
    "duplicate_groups": f"""
SELECT split, dhash, n, paths FROM ({_HASH_GROUPS}) WHERE n >= 2
ORDER BY split, paths""",
    # The same dHash in two splits: leakage between them (split_a < split_b).
    "leakage": f"""
WITH g AS ({_HASH_GROUPS})
SELECT a.split AS split_a, b.split AS split_b, a.dhash AS dhash,
       a.n AS n_a, b.n AS n_b, a.paths AS paths_a, b.paths AS paths_b
FROM g AS a JOIN g AS b ON a.dhash = b.dhash AND a.split < b.split
ORDER BY split_a, split_b, paths_a""",
    # Byte-identical files, whatever their split.
    "identical_files": """
SELECT sha256, COUNT(*) AS n, group_concat(DISTINCT split) AS splits, json_group_array(path) AS paths
FROM (SELECT sha256, split, path FROM images WHERE sha256 IS NOT NULL ORDER BY sha256, path)
GROUP BY sha256 HAVING COUNT(*) >= 2
ORDER BY n DESC, paths""",
    # Files that could not be read, with the reason.
    "unreadable": """
SELECT id, split, path, rel_path, size, format, error FROM images WHERE error IS NOT NULL
ORDER BY split, path""",
    # One row per split: what is in it.
    "split_summary": """
SELECT split, COUNT(*) AS images, SUM(error IS NOT NULL) AS unreadable, SUM(size) AS bytes,
       COUNT(DISTINCT dhash) AS distinct_dhashes, MIN(width) AS min_width, MAX(width) AS max_width,
       MIN(height) AS min_height, MAX(height) AS max_height, ROUND(AVG(brightness), 2) AS mean_brightness
FROM images GROUP BY split ORDER BY split""",
}
