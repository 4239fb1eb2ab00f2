"""Decoding audio-visual media into numpy arrays (PyAV backend; pluggable backends).

``decode_media`` opens a file once and returns the selected video frames (uint8 RGB) and the audio track
(float32, channels first) together; ``probe_media`` reads metadata only; ``load_audio`` / ``load_image`` are
single-modality shortcuts. Every failure raises :class:`hf_av.errors.MediaDecodingError` (a ``ValueError``).
"""

from ..errors import MediaDecodingError
from .api import decode_media, load_audio, load_image, probe_media
from .backends import MediaBackend, available_backends, get_backend, register_backend
from .frame_rate import FRAME_RATE_MODES
from .sampling import center_indices, linspace_indices, middle_index, segment_indices, strided_indices, uniform_indices
from .types import AudioStreamInfo, DecodedMedia, MediaDecodingWarning, MediaInfo, VideoStreamInfo

__all__ = [
    "AudioStreamInfo",
    "DecodedMedia",
    "FRAME_RATE_MODES",
    "MediaBackend",
    "MediaDecodingError",
    "MediaDecodingWarning",
    "MediaInfo",
    "VideoStreamInfo",
    "available_backends",
    "center_indices",
    "decode_media",
    "get_backend",
    "linspace_indices",
    "load_audio",
    "load_image",
    "middle_index",
    "probe_media",
    "register_backend",
    "segment_indices",
    "strided_indices",
    "uniform_indices",
]
