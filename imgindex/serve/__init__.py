"""Serving the index in Datasette: the plugin (plugin), its pages and canned queries (pages), thumbnails."""
