"""Derived views: dropped and re-created on every open, so they always match this version."""

from __future__ import annotations

# The grade a near pair `p` has in the verdict: the labels' regrade (verdict_pairs) or its pixels'.
PAIR_GRADE = "coalesce((select v.grade from verdict_pairs v where v.a = p.a and v.b = p.b), p.kind)"

# Members of each stored verdict group per split, paths sorted (imgindex.near.verdict).
_GROUP_SPLITS = """
SELECT group_id, kind, grade, max_distance, split, COUNT(*) AS n, json_group_array(path) AS paths
FROM (SELECT g.id AS group_id, g.kind, g.grade, g.max_distance, i.split, i.path
      FROM verdict_groups g JOIN verdict_members m ON m.group_id = g.id JOIN images i ON i.id = m.image_id
      ORDER BY g.id, i.split, i.path)
GROUP BY group_id, split"""


def _across(kind: str) -> str:
    """Groups of one kind with members in two splits (split_a < split_b)."""
    return f"""
WITH s AS ({_GROUP_SPLITS})
SELECT a.split AS split_a, b.split AS split_b, a.group_id, a.grade, a.max_distance,
       a.n AS n_a, b.n AS n_b, a.paths AS paths_a, b.paths AS paths_b
FROM s AS a JOIN s AS b ON a.group_id = b.group_id AND a.split < b.split
WHERE a.kind = '{kind}'
ORDER BY split_a, split_b, paths_a"""


VIEWS: dict[str, str] = {
    # The verdict's duplicate groups, per split (two or more members in it): byte-identical,
    # pixel-identical or copy. The rule is in settings ('verdict.rule').
    "duplicate_groups": f"""
SELECT split, group_id, grade, max_distance, n, paths FROM ({_GROUP_SPLITS})
WHERE kind = 'duplicates' AND n >= 2 ORDER BY split, paths""",
    # Duplicate groups with members in two splits: leakage between them.
    "leakage": _across("duplicates"),
    # Scenes (different photos of one scene, not copies) with members in two splits.
    "scene_overlap": _across("scene"),
    # Scenes per split (two or more members in it).
    "scenes": f"""
SELECT split, group_id, max_distance, n, paths FROM ({_GROUP_SPLITS})
WHERE kind = 'scene' AND n >= 2 ORDER BY split, paths""",
    # Duplicate pairs labelled two ways, with their files.
    "label_conflict_pairs": """
SELECT c.a, c.b, ia.split AS split_a, ia.path AS path_a, ib.split AS split_b, ib.path AS path_b,
       c.grade, c.kind, c.detail, c.group_id
FROM label_conflicts c JOIN images ia ON ia.id = c.a JOIN images ib ON ib.id = c.b
ORDER BY split_a, path_a, split_b, path_b""",
    # The rule every verdict output applied.
    "verdict_rule": """
SELECT json_extract(value, '$.name') AS name, json_extract(value, '$.max_distance') AS max_distance,
       json_extract(value, '$.verification') AS verification, json_extract(value, '$.description') AS description
FROM settings WHERE key = 'verdict.rule'""",
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
