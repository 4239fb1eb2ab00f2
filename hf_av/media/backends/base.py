"""The small interface a decoding backend implements (PyAV today; torchcodec could be added later)."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Sequence, Union

from ..source import MediaSource
from ..types import DecodedMedia, MediaInfo, VideoStreamInfo

__all__ = ["AUDIO_CHANNEL_MODES", "DecodeRequest", "FrameSelection", "MediaBackend"]

AUDIO_CHANNEL_MODES = ("keep", "mono", "stereo", "first")

FrameSelection = Union[None, Sequence[int], Callable[[VideoStreamInfo], Sequence[int]]]


@dataclass
class DecodeRequest:
    """Validated arguments of ``decode_media`` (see its docstring for the meaning of each)."""

    video: bool = True
    audio: bool = True
    frame_rate: Fraction | None = None
    frame_rate_mode: str = "fps_filter"
    frame_indices: FrameSelection = None
    sampling_rate: int | None = None
    audio_channels: str = "keep"
    start_time: float | None = None
    end_time: float | None = None
    require_audio: bool = False
    require_video: bool = False
    trim_audio: bool = True


class MediaBackend(abc.ABC):
    """A decoder. ``probe`` reads metadata only; ``decode`` opens the source once and returns both modalities.

    Backends raise :class:`hf_av.errors.MediaDecodingError` for every failure (never their library's own
    exceptions) and emit :class:`hf_av.media.MediaDecodingWarning` for partial results.
    """

    name: str = ""

    @classmethod
    def is_available(cls) -> bool:
        return True

    @abc.abstractmethod
    def probe(self, source: MediaSource) -> MediaInfo: ...

    @abc.abstractmethod
    def decode(self, source: MediaSource, request: DecodeRequest) -> DecodedMedia: ...
