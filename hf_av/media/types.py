"""Data classes returned by :mod:`hf_av.media` (decoded arrays and container metadata)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "AudioStreamInfo",
    "DecodedMedia",
    "MediaDecodingWarning",
    "MediaInfo",
    "VideoStreamInfo",
]


class MediaDecodingWarning(UserWarning):
    """Decoding succeeded only in part (e.g. a truncated file): the data returned is what could be recovered."""


@dataclass
class VideoStreamInfo:
    """What is known about a video stream (or about the frame sequence a selection refers to).

    When given to a ``frame_indices`` callable, ``num_frames`` and ``fps`` describe the sequence the
    indices refer to: the native frames, or the ``frame_rate``-resampled sequence, restricted to the
    ``start_time``/``end_time`` window when one is given. ``native_fps`` / ``native_num_frames`` always
    describe the stream itself.
    """

    num_frames: int | None
    fps: float | None
    width: int | None = None
    height: int | None = None
    duration: float | None = None  # seconds covered by the sequence (stream duration for native frames)
    start_time: float | None = None  # time of the stream's first frame, seconds from the media start
    codec: str | None = None
    native_fps: float | None = None
    native_num_frames: int | None = None
    num_frames_exact: bool = True  # False when the count was estimated (metadata missing or not trusted)


@dataclass
class AudioStreamInfo:
    sampling_rate: int | None
    channels: int | None
    layout: str | None = None
    codec: str | None = None
    duration: float | None = None
    start_time: float | None = None  # seconds from the media start
    num_samples: int | None = None  # from metadata when known (stream duration x rate)


@dataclass
class MediaInfo:
    """Container metadata (``probe_media``); nothing is decoded."""

    source: str
    format_name: str | None
    duration: float | None  # seconds (container duration, else the longest stream)
    start_time: float | None  # container start in seconds, as stored (timestamps elsewhere are relative to it)
    has_video: bool
    has_audio: bool
    video: VideoStreamInfo | None = None
    audio: AudioStreamInfo | None = None
    num_video_streams: int = 0
    num_audio_streams: int = 0

    # Flat conveniences -------------------------------------------------------------------------
    @property
    def width(self) -> int | None:
        return self.video.width if self.video else None

    @property
    def height(self) -> int | None:
        return self.video.height if self.video else None

    @property
    def fps(self) -> float | None:
        return self.video.fps if self.video else None

    @property
    def num_frames(self) -> int | None:
        return self.video.num_frames if self.video else None

    @property
    def video_codec(self) -> str | None:
        return self.video.codec if self.video else None

    @property
    def sampling_rate(self) -> int | None:
        return self.audio.sampling_rate if self.audio else None

    @property
    def audio_channels(self) -> int | None:
        return self.audio.channels if self.audio else None

    @property
    def audio_codec(self) -> str | None:
        return self.audio.codec if self.audio else None


@dataclass
class DecodedMedia:
    """Result of :func:`hf_av.media.decode_media`.

    Times are seconds from the start of the media (the earliest stream start, which is what ffmpeg's
    command line also counts from); for the usual file whose streams start together this is the
    stream start.
    """

    frames: np.ndarray | None  # uint8 [T, H, W, 3] RGB at native resolution
    frame_indices: np.ndarray | None  # int64 [T]: index of each frame in the (possibly resampled / windowed) sequence
    frame_timestamps: np.ndarray | None  # float64 [T]: pts of native frames; k / frame_rate for resampled ones
    video_fps: float | None  # rate of the sequence the indices refer to
    num_video_frames: int | None  # length of that sequence
    audio: np.ndarray | None  # float32 [channels, samples] in [-1, 1]
    sampling_rate: int | None
    duration: float | None  # seconds (container duration)
    source: str
    # Additions beyond the minimal contract ---------------------------------------------------------
    source_frame_indices: np.ndarray | None = None  # int64 [T]: native frame index each returned frame came from
    audio_start_time: float | None = None  # time of audio[:, 0]
    width: int | None = None
    height: int | None = None
    warnings: list[str] = field(default_factory=list)  # problems met while decoding (also emitted as warnings)

    @property
    def num_audio_samples(self) -> int:
        return 0 if self.audio is None else int(self.audio.shape[-1])
