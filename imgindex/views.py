"""Derived views: dropped and re-created on every open, so they always match this version."""

from __future__ import annotations

from .quality.flags import FLAGS, MEASURES

# The grade a near pair `p` has in the verdict: the labels' regrade (verdict_pairs) or its pixels'.
PAIR_GRADE = "coalesce((select v.grade from verdict_pairs v where v.a = p.a and v.b = p.b), p.kind)"
# Why the verdict grades a near pair p otherwise than its pixels (NULL when it does not).
PAIR_REASON = "(select v.reason from verdict_pairs v where v.a = p.a and v.b = p.b)"

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


def _quality() -> str:
    """One row per readable image: its quality measures, each flag as 0 or 1, the flags it carries
    (comma-separated, in FLAGS order) and its outlier score."""
    has = "EXISTS (SELECT 1 FROM quality_flags f WHERE f.image_id = i.id AND f.flag = '{0}') AS {0}"
    order = " ".join(f"WHEN '{flag.name}' THEN {n}" for n, flag in enumerate(FLAGS))
    return f"""
SELECT i.id, i.split, i.path, i.rel_path, i.width, i.height,
       round(1.0 * min(i.width, i.height) / max(i.width, i.height), 4) AS aspect_ratio,
       {", ".join(f"i.{column}" for column in MEASURES)},
       coalesce((SELECT group_concat(flag, ',') FROM (SELECT f.flag FROM quality_flags f WHERE f.image_id = i.id
                 ORDER BY CASE f.flag {order} ELSE {len(FLAGS)} END)), '') AS flags,
       {", ".join(has.format(flag.name) for flag in FLAGS)},
       o.score AS outlier_score, o.measure AS outlier_measure
FROM images i LEFT JOIN quality_outliers o ON o.image_id = i.id
WHERE i.error IS NULL AND i.entropy IS NOT NULL
ORDER BY i.split, i.path"""


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
    # Image quality, one row per readable image (imgindex.quality); the rule applied is quality_rule.
    "quality": _quality(),
    # The rule the stored quality flags applied: each flag's threshold and sentence.
    "quality_rule": """
SELECT json_extract(r.value, '$.flag') AS flag, json_extract(r.value, '$.threshold') AS threshold,
       json_extract(r.value, '$.rule') AS rule
FROM settings s, json_each(s.value) r WHERE s.key = 'quality.rule'""",
    # Images per split and flag.
    "quality_summary": """
SELECT i.split, f.flag, COUNT(*) AS images FROM quality_flags f JOIN images i ON i.id = f.image_id
GROUP BY i.split, f.flag ORDER BY i.split, f.flag""",
    # One row per split: what is in it.
    "split_summary": """
SELECT split, COUNT(*) AS images, SUM(error IS NOT NULL) AS unreadable, SUM(size) AS bytes,
       COUNT(DISTINCT dhash) AS distinct_dhashes, MIN(width) AS min_width, MAX(width) AS max_width,
       MIN(height) AS min_height, MAX(height) AS max_height, ROUND(AVG(brightness), 2) AS mean_brightness
FROM images GROUP BY split ORDER BY split""",
}
