"""Near-duplicates: the dHash search (search), the stored near_pairs table (pairs) and the
duplicate groups read from it (groups)."""
