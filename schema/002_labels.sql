-- Label tables of an imgindex database, filled by `imgindex scan` (imgindex.labels).
-- Every column is documented in README.md ("What the database holds").

CREATE TABLE IF NOT EXISTS label_files (
    id INTEGER PRIMARY KEY,
    split TEXT NOT NULL,
    path TEXT NOT NULL,            -- absolute path of the label file (a class folder for 'folders')
    format TEXT,                   -- yolo | coco | voc | folders | custom
    size INTEGER,                  -- bytes (image count for a class folder)
    mtime_ns INTEGER,
    error TEXT,                    -- why the file could not be read as a whole; NULL when it was
    scan_id INTEGER,               -- scan that last read this file
    UNIQUE (split, path)
);

-- Which images each label file covers (an image listed in a COCO file without annotations, or an
-- empty YOLO file, is covered: it is a background image, not an image without a label file).
CREATE TABLE IF NOT EXISTS label_file_images (
    label_file_id INTEGER NOT NULL REFERENCES label_files(id) ON DELETE CASCADE,
    image_path TEXT NOT NULL,      -- absolute path of a covered image
    PRIMARY KEY (label_file_id, image_path)
);

CREATE INDEX IF NOT EXISTS label_file_images_path ON label_file_images (image_path);

CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY,
    label_file_id INTEGER REFERENCES label_files(id) ON DELETE CASCADE,
    split TEXT NOT NULL,
    image_path TEXT,               -- absolute path of the annotated image; NULL if it was not found
    class_id INTEGER,
    class_name TEXT,
    cx REAL, cy REAL, w REAL, h REAL,      -- box centre and size, normalised 0..1; NULL for classification
    x1 REAL, y1 REAL, x2 REAL, y2 REAL,    -- box corners in pixels; NULL without box or image size
    area REAL                      -- box area as a fraction of the image area (w * h)
);

CREATE INDEX IF NOT EXISTS labels_split_image ON labels (split, image_path);
CREATE INDEX IF NOT EXISTS labels_class ON labels (class_id);
CREATE INDEX IF NOT EXISTS labels_file ON labels (label_file_id);

CREATE TABLE IF NOT EXISTS label_problems (
    id INTEGER PRIMARY KEY,
    label_file_id INTEGER REFERENCES label_files(id) ON DELETE CASCADE,
    split TEXT,
    path TEXT,                     -- file the problem is about (label file, or image for image_without_label)
    line INTEGER,                  -- 1-based line (text formats), annotation/object index otherwise; NULL for a whole file
    kind TEXT,                     -- malformed_row, polygon_row, unnamed_class, box_outside_image, zero_area_box,
                                   -- label_without_image, image_without_label, missing_image_file, unreadable_file,
                                   -- image_size_unknown
    detail TEXT
);

CREATE INDEX IF NOT EXISTS label_problems_split_kind ON label_problems (split, kind);
CREATE INDEX IF NOT EXISTS label_problems_file ON label_problems (label_file_id);

CREATE TABLE IF NOT EXISTS classes (
    split TEXT,
    class_id INTEGER,
    name TEXT,
    PRIMARY KEY (split, class_id)
);

CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,          -- labels.format.<split>, labels.label_first, labels.bbox_format
    value TEXT
);
