"""Public entry points: ``decode_media``, ``probe_media``, ``load_audio``, ``load_image``."""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np

from ..errors import MediaDecodingError
from .backends import AUDIO_CHANNEL_MODES, DecodeRequest, MediaBackend, get_backend
from .backends.base import FrameSelection
from .frame_rate import FRAME_RATE_MODES, parse_rate
from .source import MediaSourceLike, as_media_source
from .types import DecodedMedia, MediaInfo

__all__ = ["decode_media", "load_audio", "load_image", "probe_media"]


def _label(source, name):
    if name:
        return name
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    return str(source) if isinstance(source, str) else repr(source)


def _check_time(value, what: str, label: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MediaDecodingError(f"{label}: {what} must be a number of seconds, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise MediaDecodingError(f"{label}: {what} must be a finite number of seconds >= 0, got {value!r}")
    return value


def _check_rate(value, label: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise MediaDecodingError(f"{label}: sampling_rate must be a positive integer (Hz), got {value!r}")
    if float(value) != int(value) or int(value) <= 0:
        raise MediaDecodingError(f"{label}: sampling_rate must be a positive integer (Hz), got {value!r}")
    return int(value)


def decode_media(
    source: MediaSourceLike,
    *,
    video: bool = True,
    audio: bool = True,
    frame_rate: float | Fraction | str | None = None,
    frame_rate_mode: str = "fps_filter",
    frame_indices: FrameSelection = None,
    sampling_rate: int | None = None,
    audio_channels: str = "keep",
    start_time: float | None = None,
    end_time: float | None = None,
    require_audio: bool = False,
    require_video: bool = False,
    trim_audio: bool = True,
    name: str | None = None,
    backend: str | MediaBackend = "pyav",
) -> DecodedMedia:
    """Decode video frames and the audio track of a media file in one pass over the container.

    Args:
        source: path, ``bytes``/``bytearray``, or a binary file object.
        video / audio: which modalities to decode (a missing stream gives ``None`` unless required).
        frame_rate: ``None`` for the native frames, else resample the frame sequence to this rate over the whole
            clip, as ffmpeg does (see ``frame_rate_mode``). Accepts ``30000/1001`` as a string or Fraction.
        frame_rate_mode: ``"fps_filter"`` emulates ``ffmpeg -vf fps=R`` (output frame ``k`` = last native frame
            whose time rounds, to the nearest ``1/R`` slot, to ``<= k``; ``round(end * R)`` frames);
            ``"cli_rate"`` emulates the command line's ``-r R`` output option without ``-vf`` (ffmpeg 5-7 vsync
            cfr, e.g. ``ffmpeg -i x.mp4 -r 8 %04d.jpg`` as LAVisH/DG-SCT extracted their frames).
            See :mod:`hf_av.media.frame_rate`.
        frame_indices: ``None`` (all frames), a sequence of ints (order and repeats kept), or a callable taking a
            :class:`VideoStreamInfo` (``num_frames``/``fps`` of the sequence the indices refer to) and returning
            the ints. Indices count the (resampled, windowed) sequence from 0. Only these frames are converted
            to RGB and kept in memory.
        sampling_rate: resample audio with libswresample (band-limited, like ``ffmpeg -ar``); ``None`` keeps it.
        audio_channels: ``"keep"``; ``"mono"`` / ``"stereo"`` (libswresample's default matrix, like
            ``ffmpeg -ac 1`` / ``-ac 2``); ``"first"`` (channel 0 only, like ``sox ... remix 1``).
        start_time, end_time: optional window ``[start_time, end_time)`` in seconds from the media start.
        require_audio / require_video: raise :class:`MediaDecodingError` when that stream is missing or empty.
        trim_audio: cut decoded audio at the end of the audio stream as the container states it (codecs with
            fixed frames, e.g. AAC's 1024 samples, decode a little past the nominal end). Files whose container
            records the exact length (mp4 written by ffmpeg) are unaffected. ``False`` keeps every decoded sample.
        name: label used in messages and ``DecodedMedia.source`` (default: the path, or ``"<bytes>"``).
        backend: ``"pyav"`` (the only one implemented) or a :class:`MediaBackend` instance.

    Returns:
        :class:`DecodedMedia`. Partial decodes of damaged files emit :class:`MediaDecodingWarning`.
    """
    label = _label(source, name)
    if not video and not audio:
        raise MediaDecodingError(f"{label}: nothing to decode (video=False and audio=False)")
    rate = None
    if frame_rate is not None:
        try:
            rate = parse_rate(frame_rate)
        except (ValueError, ZeroDivisionError, TypeError) as exc:
            raise MediaDecodingError(
                f"{label}: invalid frame_rate {frame_rate!r} ({exc}); expected a rate > 0"
            ) from exc
    if frame_rate_mode not in FRAME_RATE_MODES:
        raise MediaDecodingError(f"{label}: frame_rate_mode must be one of {FRAME_RATE_MODES}, got {frame_rate_mode!r}")
    if audio_channels not in AUDIO_CHANNEL_MODES:
        raise MediaDecodingError(
            f"{label}: audio_channels must be one of {AUDIO_CHANNEL_MODES}, got {audio_channels!r}"
        )
    sr = _check_rate(sampling_rate, label)
    start = _check_time(start_time, "start_time", label)
    end = _check_time(end_time, "end_time", label)
    if start is not None and end is not None and end <= start:
        raise MediaDecodingError(f"{label}: end_time ({end}) must be greater than start_time ({start})")
    if frame_indices is not None and not callable(frame_indices) and isinstance(frame_indices, (str, bytes)):
        raise MediaDecodingError(f"{label}: frame_indices must be None, a sequence of ints or a callable")
    request = DecodeRequest(
        video=bool(video), audio=bool(audio), frame_rate=rate, frame_rate_mode=frame_rate_mode,
        frame_indices=frame_indices, sampling_rate=sr, audio_channels=audio_channels, start_time=start,
        end_time=end, require_audio=bool(require_audio), require_video=bool(require_video),
        trim_audio=bool(trim_audio),
    )
    media = as_media_source(source, name)
    return get_backend(backend).decode(media, request)


def probe_media(source: MediaSourceLike, *, name: str | None = None, backend: str | MediaBackend = "pyav") -> MediaInfo:
    """Container metadata without decoding: duration, streams, size, fps, frame count, audio rate/channels/codec.

    The frame count comes from the container index when it has one (mp4, avi); otherwise (mkv/webm, ...) the
    video packets are counted by demuxing only (``MediaInfo.video.num_frames_exact`` tells which).
    """
    return get_backend(backend).probe(as_media_source(source, name))


def load_audio(
    source: MediaSourceLike,
    sampling_rate: int | None = None,
    audio_channels: str = "keep",
    *,
    start_time: float | None = None,
    end_time: float | None = None,
    trim_audio: bool = True,
    name: str | None = None,
    backend: str | MediaBackend = "pyav",
) -> tuple[np.ndarray, int]:
    """Audio track of a video container or an audio file as ``(float32 [channels, samples], sampling_rate)``."""
    out = decode_media(
        source, video=False, audio=True, sampling_rate=sampling_rate, audio_channels=audio_channels,
        start_time=start_time, end_time=end_time, require_audio=True, trim_audio=trim_audio, name=name,
        backend=backend,
    )
    return out.audio, out.sampling_rate


def load_image(source: MediaSourceLike, *, name: str | None = None) -> np.ndarray:
    """An image file (PNG, JPEG, BMP, WebP, ...) as uint8 ``[H, W, 3]`` RGB.

    Pillow reads it when it can (no EXIF rotation is applied, like ``torchvision.io.read_image``); anything
    Pillow refuses is tried with PyAV (first frame). Alpha is dropped, grey and palette images become RGB.
    """
    media = as_media_source(source, name)
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - pillow is a core dependency
        Image = None
        UnidentifiedImageError = OSError
    pil_error = None
    if Image is not None:
        try:
            with Image.open(media.open_binary()) as img:
                img.load()
                if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                    arr16 = np.asarray(img, dtype=np.float64)
                    scale = 65535.0 if arr16.max(initial=0) > 255 else 255.0
                    grey = np.clip(np.round(arr16 / scale * 255.0), 0, 255).astype(np.uint8)
                    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=-1))
                return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            pil_error = exc
    try:
        out = decode_media(media, video=True, audio=False, frame_indices=[0], require_video=True, name=media.name)
    except MediaDecodingError as exc:
        raise MediaDecodingError(
            f"{media.name}: not a readable image (Pillow: {pil_error}; PyAV: {str(exc).split(': ', 1)[-1]})"
        ) from exc
    return out.frames[0]
