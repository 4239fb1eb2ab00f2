"""Per-family preprocessing classes (feature extractors, image processors, processors) built on hf_av.features."""

from .base import AudioVisualProcessor, FrameImageProcessor, SegmentedClipProcessor, WaveformFeatureExtractor
from .cav_mae import CavMaeFeatureExtractor, CavMaeImageProcessor, CavMaeProcessor
from .dg_sct import DgSctFeatureExtractor, DgSctImageProcessor, DgSctProcessor
from .lavish import LavishFeatureExtractor, LavishImageProcessor, LavishProcessor

__all__ = [
    "AudioVisualProcessor",
    "CavMaeFeatureExtractor",
    "CavMaeImageProcessor",
    "CavMaeProcessor",
    "DgSctFeatureExtractor",
    "DgSctImageProcessor",
    "DgSctProcessor",
    "FrameImageProcessor",
    "LavishFeatureExtractor",
    "LavishImageProcessor",
    "LavishProcessor",
    "SegmentedClipProcessor",
    "WaveformFeatureExtractor",
]
