"""Per-family preprocessing classes (feature extractors, image processors, processors) built on hf_av.features."""

from .base import AudioVisualProcessor, FrameImageProcessor, SegmentedClipProcessor, WaveformFeatureExtractor
from .cav_mae import CavMaeFeatureExtractor, CavMaeImageProcessor, CavMaeProcessor
from .dg_sct import DgSctFeatureExtractor, DgSctImageProcessor, DgSctProcessor
from .dg_sct_tasks import (
    DgSctQuestionAnsweringProcessor,
    DgSctQuestionTokenizer,
    DgSctSegmentationImageProcessor,
    DgSctSegmentationProcessor,
    DgSctVideoParsingProcessor,
)
from .lavish import LavishFeatureExtractor, LavishImageProcessor, LavishProcessor
from .vatt import VattFeatureExtractor, VattProcessor, VattTokenizer, VattVideoProcessor

__all__ = [
    "AudioVisualProcessor",
    "CavMaeFeatureExtractor",
    "CavMaeImageProcessor",
    "CavMaeProcessor",
    "DgSctFeatureExtractor",
    "DgSctImageProcessor",
    "DgSctProcessor",
    "DgSctQuestionAnsweringProcessor",
    "DgSctQuestionTokenizer",
    "DgSctSegmentationImageProcessor",
    "DgSctSegmentationProcessor",
    "DgSctVideoParsingProcessor",
    "FrameImageProcessor",
    "LavishFeatureExtractor",
    "LavishImageProcessor",
    "LavishProcessor",
    "SegmentedClipProcessor",
    "VattFeatureExtractor",
    "VattProcessor",
    "VattTokenizer",
    "VattVideoProcessor",
    "WaveformFeatureExtractor",
]
