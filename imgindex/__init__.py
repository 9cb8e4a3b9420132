"""imgindex: an incremental SQLite index of image datasets."""

__version__ = "0.1.0"
