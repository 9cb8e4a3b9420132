"""The report's features, under DataGradients' names, grouped in DataGradients' sections."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Context, FeatureFunc, FeatureResult, Gallery, Thumbnail
from .classification import classification_class_frequency, classification_distribution_vs_area
from .detection import (
    detection_box_area,
    detection_box_iou,
    detection_box_size,
    detection_boxes_per_image,
    detection_class_frequency,
    detection_class_heatmap,
    detection_classes_per_image,
)
from .duplicates import image_duplicates
from .image import image_color_distribution, images_average_brightness, images_resolution, summary_stats
from .labels import dataset_classes
from .problems import label_problems
from .quality import quality_distributions, quality_examples, quality_flags

IMAGE, DETECTION, CLASSIFICATION = "Image Features", "Object Detection Features", "Classification Features"
LABELS = "Label Features"
QUALITY = "Image Quality"


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    section: str
    title: str
    compute: FeatureFunc


FEATURES: dict[str, FeatureSpec] = {
    spec.name: spec
    for spec in [
        FeatureSpec("SummaryStats", IMAGE, "General Statistics", summary_stats),
        FeatureSpec("ImagesResolution", IMAGE, "Image Width and Height Distribution", images_resolution),
        FeatureSpec("ImageColorDistribution", IMAGE, "Color Distribution", image_color_distribution),
        FeatureSpec("ImagesAverageBrightness", IMAGE, "Image Brightness Distribution", images_average_brightness),
        FeatureSpec("ImageDuplicates", IMAGE, "Image Duplicates", image_duplicates),
        FeatureSpec("ImageQualityFlags", QUALITY, "Quality Flags", quality_flags),
        FeatureSpec("ImageQualityThresholds", QUALITY, "Quality Measures and Thresholds", quality_distributions),
        FeatureSpec("ImageQualityExamples", QUALITY, "Flagged Images", quality_examples),
        FeatureSpec("DatasetClasses", LABELS, "Classes", dataset_classes),
        FeatureSpec("LabelProblems", LABELS, "Label Problems", label_problems),
        FeatureSpec("DetectionClassFrequency", DETECTION, "Class Frequency", detection_class_frequency),
        FeatureSpec(
            "DetectionBoundingBoxPerImageCount",
            DETECTION,
            "Distribution of Bounding Box per image",
            detection_boxes_per_image,
        ),
        FeatureSpec("DetectionBoundingBoxArea", DETECTION, "Distribution of Bounding Box Area", detection_box_area),
        FeatureSpec(
            "DetectionBoundingBoxSize", DETECTION, "Distribution of Bounding Box Width and Height", detection_box_size
        ),
        FeatureSpec(
            "DetectionClassesPerImageCount",
            DETECTION,
            "Distribution of Class Frequency per Image",
            detection_classes_per_image,
        ),
        FeatureSpec("DetectionBoundingBoxIoU", DETECTION, "Intersection of Bounding Boxes", detection_box_iou),
        FeatureSpec("DetectionClassHeatmap", DETECTION, "Bounding Boxes Density", detection_class_heatmap),
        FeatureSpec("ClassificationClassFrequency", CLASSIFICATION, "Class Frequency", classification_class_frequency),
        FeatureSpec(
            "ClassificationClassDistributionVsArea",
            CLASSIFICATION,
            "Image size distribution per class",
            classification_distribution_vs_area,
        ),
    ]
}

# DataGradients features that need the pixels; the report reads only the index.
NEEDS_PIXELS = {"DetectionSampleVisualization", "ClassificationSampleVisualization", "SegmentationSampleVisualization"}

__all__ = [
    "CLASSIFICATION",
    "DETECTION",
    "FEATURES",
    "IMAGE",
    "LABELS",
    "NEEDS_PIXELS",
    "QUALITY",
    "Context",
    "FeatureResult",
    "FeatureSpec",
    "Gallery",
    "Thumbnail",
]
