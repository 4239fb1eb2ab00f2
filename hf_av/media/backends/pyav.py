"""PyAV (libav*) backend: one demux of the container feeds the video and the audio decoder.

Conventions (documented for the processors that build on them):

* Times are seconds from the media start, i.e. the container's ``start_time`` (the earliest stream start),
  which is the origin ffmpeg's command line uses too. Files whose pts start at, say, 10 s therefore start at 0.
* Native frames are numbered in presentation order from the first decoded frame.
* Only frames that are selected are converted to RGB (``rgb24`` via swscale) and kept; the others are
  decoded (inter-frame codecs need them) and dropped, so long high-resolution clips are never materialised.
* H.264 non-reference frames shown before the first selected frame are not decoded at all (``_NonRefSkipper``);
  the frames returned are bit-identical to a full decode. In a DataLoader worker the decoders use the worker's share
  of the cores (``_set_decoder_threads``).
* Audio is converted with PyAV's ``AudioResampler`` (libswresample through an ``aformat`` graph, the same
  resampler and default downmix matrix as ``ffmpeg -ar R -ac N``) to float32 planar.
"""

from __future__ import annotations

import bisect
import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import numpy as np

from ...errors import MediaDecodingError
from ..frame_rate import count_output_frames, make_rate_mapper
from ..source import MediaSource
from ..types import AudioStreamInfo, DecodedMedia, MediaDecodingWarning, MediaInfo, VideoStreamInfo
from .base import DecodeRequest, MediaBackend

__all__ = ["PyAVBackend"]

_AV_TIME_BASE = 1_000_000
# Audio fed to the resampler before/after a requested window, so that its filter has settled at the edges.
_AUDIO_MARGIN = Fraction(1, 10)
# Consecutive packets that fail to decode before we give up on a stream.
_MAX_DECODE_ERRORS = 50


def _dataloader_worker_share() -> int | None:
    """Inside a ``torch.utils.data.DataLoader`` worker: this worker's share of the CPU cores (at least 1), i.e.
    usable cores // number of workers; None outside workers. torch is not imported for the check."""
    data = sys.modules.get("torch.utils.data")
    info = data.get_worker_info() if data is not None else None
    if info is None:
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, info.num_workers))


def _set_decoder_threads(stream) -> None:
    """Frame + slice threading in the main process; inside a DataLoader worker, at most its share of the cores.

    With as many workers as cores (the usual set-up) each decoder runs single-threaded: threads on top of busy
    workers only add synchronisation (measured ~15 % more CPU per 720p H.264 frame with frame threading); with
    fewer workers than cores a worker still uses its share. Pixels and samples do not depend on the threading.
    """
    share = _dataloader_worker_share()
    if share is None:
        stream.thread_type = "AUTO"
    elif share == 1:
        stream.thread_type = "NONE"
        stream.codec_context.thread_count = 1
    else:
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = share


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _frac(x) -> Fraction | None:
    return None if x is None else Fraction(x)


def _is_attached_picture(stream) -> bool:
    try:
        return bool(int(stream.disposition) & int(av.stream.Disposition.attached_pic))
    except (AttributeError, TypeError, ValueError):
        return False


def _pick_streams(container):
    video = next((s for s in container.streams.video if not _is_attached_picture(s)), None)
    audio = container.streams.audio[0] if container.streams.audio else None
    return video, audio


def _origin(container) -> Fraction:
    if container.start_time is not None:
        return Fraction(container.start_time, _AV_TIME_BASE)
    starts = [
        s.start_time * s.time_base for s in container.streams if s.start_time is not None and s.time_base is not None
    ]
    return min(starts) if starts else Fraction(0)


def _stream_start(stream, origin: Fraction) -> Fraction | None:
    if stream.start_time is None or stream.time_base is None:
        return None
    return stream.start_time * stream.time_base - origin


def _stream_duration(stream) -> Fraction | None:
    if stream.duration is None or stream.time_base is None or stream.duration <= 0:
        return None
    return stream.duration * stream.time_base


def _parse_clock(text) -> Fraction | None:
    """``HH:MM:SS.fffffffff`` (Matroska ``DURATION`` tags) as exact seconds."""
    try:
        h, m, sec = str(text).strip().split(":")
        return int(h) * 3600 + int(m) * 60 + Fraction(sec)
    except (ValueError, TypeError):
        return None


def _stream_end(stream, origin: Fraction) -> Fraction | None:
    """End of a stream (seconds from the media start) from the container's metadata, if it states one.

    mp4/avi/wav/flac store a stream duration; ffmpeg's Matroska/WebM muxer stores the end time in a
    per-stream ``DURATION`` tag (absolute, like the timestamps).
    """
    dur = _stream_duration(stream)
    if dur is not None:
        return (_stream_start(stream, origin) or Fraction(0)) + dur
    try:
        tag = stream.metadata.get("DURATION")
    except AttributeError:
        tag = None
    end = _parse_clock(tag) if tag else None
    if end is not None and end > 0:
        return end - origin
    return None


def _native_fps(stream) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return Fraction(rate)
    return None


def _container_duration(container) -> Fraction | None:
    if container.duration is not None and container.duration > 0:
        return Fraction(container.duration, _AV_TIME_BASE)
    return None


def _media_duration(container, origin: Fraction) -> Fraction | None:
    """Length of the media from its start: the latest audio/video stream end when the container states the
    stream ends (Matroska's own duration counts from timestamp 0, not from the start), else the container's."""
    ends = [
        _stream_end(s, origin) for s in list(container.streams.video) + list(container.streams.audio)
        if not _is_attached_picture(s)
    ]
    ends = [e for e in ends if e is not None and e > 0]
    if ends:
        return max(ends)
    return _container_duration(container)


def _ceil(x: Fraction) -> int:
    return -math.floor(-x)


def _decode_packet(packet, state, kind: str, problems: list[str]):
    """Frames of one packet, or None when it fails: the failure is reported, and `state` (a stream's decode
    state with `errors` / `done`) gives up on the stream after too many consecutive failures."""
    try:
        frames = packet.decode()
    except av.error.FFmpegError as exc:
        state.errors += 1
        problems.append(f"{kind} packet failed to decode ({_describe(exc)})")
        if state.errors > _MAX_DECODE_ERRORS:
            state.done = True
        return None
    state.errors = 0
    return frames


@dataclass
class _PacketScan:
    times: list[Fraction]  # presentation times of video packets, sorted, seconds from the media start
    durations: list[Fraction | None]
    end: Fraction | None
    complete: bool
    error: str | None = None


def _scan_video_packets(container, stream, origin: Fraction) -> _PacketScan:
    """Demux (no decoding) the video stream and collect packet times: an exact frame count and timeline."""
    tb = stream.time_base
    entries: list[tuple[Fraction, Fraction | None]] = []
    complete, error = True, None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None:
                continue
            dur = packet.duration * tb if packet.duration else None
            entries.append((ts * tb - origin, dur))
    except (av.error.FFmpegError, OSError, EOFError) as exc:
        complete, error = False, _describe(exc)
    entries.sort(key=lambda e: e[0])
    times = [e[0] for e in entries]
    durations = [e[1] for e in entries]
    end = None
    if entries:
        fps = _native_fps(stream)
        last_dur = durations[-1] or (1 / fps if fps else Fraction(0))
        end = times[-1] + last_dur
    return _PacketScan(times, durations, end, complete, error)


@dataclass
class _VideoState:
    stream: Any
    origin: Fraction
    native_fps: Fraction | None
    rate: Fraction | None
    mapper: Any
    start: Fraction | None
    end: Fraction | None
    wanted: set[int] | None  # window-relative sequence indices to keep (None = all)
    seq_count: int | None = None  # known (or estimated) length of the windowed sequence
    seq_count_exact: bool = False
    g_first: int | None = None  # global sequence index of the window's first frame
    native_count: int = 0
    last_time: Fraction | None = None
    last_duration: Fraction | None = None
    recent: dict = field(default_factory=dict)  # native index -> av.VideoFrame (the last two)
    converted: dict = field(default_factory=dict)  # native index -> rgb array (selected ones only)
    kept: dict = field(default_factory=dict)  # window index -> (native index, time)
    produced: int = 0  # number of window-sequence frames seen so far
    done: bool = False
    window_passed: bool = False
    tail: list = field(default_factory=list)  # (time, duration) of every demuxed video packet
    finished_stream: bool = False
    errors: int = 0
    width: int | None = None
    height: int | None = None
    skipper: _NonRefSkipper | None = None  # skips non-reference frames before the first selected one

    # -- sequence bookkeeping ------------------------------------------------------------------------
    def _window_index(self, g: int, tau: Fraction) -> int | None:
        if self.rate is None:
            if self.start is not None and tau < self.start:
                return None
            if self.end is not None and tau >= self.end:
                self.done = self.window_passed = True
                return None
            if self.g_first is None:
                self.g_first = g
            return g - self.g_first
        g_lo = max(0, _ceil(self.start * self.rate)) if self.start is not None else 0
        if g < g_lo:
            return None
        if self.end is not None and g >= _ceil(self.end * self.rate):
            self.done = self.window_passed = True
            return None
        self.g_first = g_lo
        return g - g_lo

    def _take(self, g: int, native_index: int, tau: Fraction) -> None:
        j = self._window_index(g, tau)
        if j is None:
            return
        self.produced = max(self.produced, j + 1)
        if self.wanted is not None and j not in self.wanted:
            return
        if j not in self.kept:
            if native_index not in self.converted:
                frame = self.recent[native_index]
                self.converted[native_index] = frame.to_ndarray(format="rgb24")
            self.kept[j] = (native_index, tau)
        if self.wanted is not None and len(self.kept) == len(self.wanted):
            self.done = True

    def push(self, frame) -> None:
        tb = frame.time_base or self.stream.time_base
        ts = frame.pts
        if ts is not None and tb is not None:
            t = ts * tb - self.origin
        elif self.last_time is not None:
            step = self.last_duration or (1 / self.native_fps if self.native_fps else Fraction(1, 25))
            t = self.last_time + step
        else:
            t = Fraction(0)
        dur = frame.duration * tb if getattr(frame, "duration", 0) and tb is not None else None
        i = self.native_count
        if self.skipper is not None:
            rank = self.skipper.frame_index(frame)
            if rank is not None:
                i = rank
        self.native_count = i + 1
        self.last_time, self.last_duration = t, dur
        if self.width is None:
            self.width, self.height = frame.width, frame.height
        self.recent[i] = frame
        for old in [k for k in self.recent if k < i - 1]:
            del self.recent[old]
        if self.mapper is None:
            self._take(i, i, t)
        else:
            for src, k in self.mapper.push(i, t, dur):
                self._take(k, src, Fraction(k) / self.rate)

    @property
    def counting_tail(self) -> bool:
        """All selected frames are in, but the sequence length is not known exactly: keep demuxing (no decoding)."""
        return self.done and not self.window_passed and not self.finished_stream and not (
            self.seq_count is not None and self.seq_count_exact
        )

    def record_tail(self, packet) -> None:
        ts = packet.pts if packet.pts is not None else packet.dts
        if packet.size and ts is not None:
            tb = packet.time_base or self.stream.time_base
            self.tail.append((ts * tb - self.origin, packet.duration * tb if packet.duration else None))

    def finish_from_tail(self) -> None:
        """Complete the sequence count from packet times (frames after the last decoded one are not decoded)."""
        for t, dur in sorted(e for e in self.tail if self.last_time is None or e[0] > self.last_time):
            i = self.native_count
            self.native_count += 1
            self.last_time, self.last_duration = t, dur
            if self.mapper is None:
                self._take(i, i, t)
            else:
                for src, k in self.mapper.push(i, t, dur):
                    self._take(k, src, Fraction(k) / self.rate)
        self.finish()

    def finish(self) -> None:
        self.finished_stream = True
        if self.mapper is not None and self.last_time is not None:
            step = self.last_duration or (1 / self.native_fps if self.native_fps else Fraction(0))
            for src, k in self.mapper.finish(self.last_time + step):
                self._take(k, src, Fraction(k) / self.rate)
        self.recent.clear()


class _SkipUnsafe(Exception):
    """Raised mid-decode when the non-reference skipping can no longer be shown to match a full decode."""


# Codecs whose "non-reference" flag (AVDISCARD_NONREF) is checked here to leave every other frame bit-identical.
_NONREF_SKIP_CODECS = ("h264",)


class _NonRefSkipper:
    """Skips decoding the non-reference frames shown before the first selected frame (H.264, native frames).

    A frame that no other frame references can be left undecoded without changing any other frame's pixels
    (``skip_frame = "NONREF"``; the decoder still decodes every reference frame). What needs care is knowing,
    before a packet is decoded, whether its frame comes before the first selected one in presentation order:
    packets arrive in decode order. Every later packet has ``pts >= dts >= `` the latest ``dts``, so once the
    latest ``dts`` reaches a queued packet's ``pts``, every packet shown before it has been seen and its rank
    (= native frame index) is exact. Packets wait in a short queue (the reordering depth) until then.

    Frames then take their index from that rank instead of from the count of decoded frames. Anything that would
    make the two disagree (a missing / repeated / non-monotonic timestamp, a stream that does not start on its
    first-shown keyframe, a decode error, a frame the decoder dropped on its own) stops the shortcut: before
    anything was skipped the decode simply continues in full; afterwards ``_SkipUnsafe`` restarts it in full.
    """

    def __init__(self, first_target: int):
        self.first_target = first_target  # native index of the first selected frame
        self.active = True
        self.skipped_any = False
        self.queue: list = []  # packets not decoded yet, in decode order
        self.seen_pts: list[int] = []  # sorted pts of every packet seen
        self.rank_of: dict[int, int] = {}  # pts -> native index, for packets released to the decoder
        self.nonref_ranks: set[int] = set()  # ranks sent with skip_frame="NONREF"
        self.last_dts: int | None = None
        self.last_output_rank = -1

    def _stop(self) -> None:
        if self.skipped_any:
            raise _SkipUnsafe()
        self.active = False

    def accept(self, packet) -> list:
        """Queue a non-empty packet; return the queued packets whose rank is now known, in decode order (every
        queued packet once the shortcut stopped: the caller then decodes them without skipping)."""
        pts, dts = packet.pts, packet.dts
        if (pts is None or dts is None or pts < dts or (self.last_dts is not None and dts <= self.last_dts)
                or (not self.seen_pts and not packet.is_keyframe)):
            self._stop()
        elif self.seen_pts and pts < self.seen_pts[0]:  # shown before the first packet: leading frames
            self._stop()
        else:
            position = bisect.bisect_left(self.seen_pts, pts)
            if position < len(self.seen_pts) and self.seen_pts[position] == pts:
                self._stop()
            else:
                self.seen_pts.insert(position, pts)
                self.last_dts = dts
        self.queue.append(packet)
        if not self.active:
            released, self.queue = self.queue, []
            return released
        count = 0
        while count < len(self.queue) and self.queue[count].pts <= self.last_dts:
            count += 1
        released, self.queue = self.queue[:count], self.queue[count:]
        for item in released:
            self._rank(item)
        return released

    def drain(self) -> list:
        """At the end of the stream every rank is known: release the whole queue."""
        released, self.queue = self.queue, []
        if self.active:
            for item in released:
                self._rank(item)
        return released

    def _rank(self, packet) -> None:
        self.rank_of[packet.pts] = bisect.bisect_left(self.seen_pts, packet.pts)

    def prepare(self, packet, codec_context) -> None:
        """Set the decoder's skip mode for this packet (called just before it is decoded)."""
        mode = "DEFAULT"
        if self.active and packet.size:
            rank = self.rank_of[packet.pts]
            if rank < self.first_target and not packet.is_keyframe:
                mode = "NONREF"
                self.nonref_ranks.add(rank)
                self.skipped_any = True
        if codec_context.skip_frame != mode:
            codec_context.skip_frame = mode

    def frame_index(self, frame) -> int | None:
        """Native index of a decoded frame (None once the shortcut stopped: count frames as usual)."""
        if not self.active:
            return None
        rank = self.rank_of.get(frame.pts) if frame.pts is not None else None
        missing = range(self.last_output_rank + 1, rank) if rank is not None else ()
        if rank is None or rank <= self.last_output_rank or any(r not in self.nonref_ranks for r in missing):
            self._stop()
            return None
        self.last_output_rank = rank
        return rank

    def decode_error(self) -> None:
        if self.active:
            self._stop()


def _validate_indices(indices, source_name: str) -> list[int]:
    if isinstance(indices, (str, bytes)):
        raise MediaDecodingError(f"{source_name}: frame_indices must be a sequence of integers, got {indices!r}")
    arr = np.asarray(indices)
    if arr.ndim > 1:
        raise MediaDecodingError(f"{source_name}: frame_indices must be one-dimensional, got shape {arr.shape}")
    arr = arr.reshape(-1)
    if arr.size and arr.dtype.kind not in "iu":
        integral = arr.dtype.kind == "f" and bool(np.all(np.isfinite(arr))) and bool(np.all(np.mod(arr, 1) == 0))
        if not integral:
            raise MediaDecodingError(
                f"{source_name}: frame_indices must be integers, got {arr.dtype} values {arr[:5].tolist()}"
            )
    values = [int(v) for v in arr.tolist()]
    negative = [v for v in values if v < 0]
    if negative:
        raise MediaDecodingError(
            f"{source_name}: frame_indices must be >= 0 (counted from the first frame), got {negative[:5]}"
        )
    return values


@dataclass
class _DecodePlan:
    """What `PyAVBackend.decode` settled before demuxing (see `PyAVBackend._plan`)."""

    origin: Fraction  # media start: times are seconds from here
    vstream: Any = None  # the video stream to decode (None: not asked for, or the file has none)
    astream: Any = None  # the audio stream to decode
    scan: _PacketScan | None = None  # packet-only pass over the video stream, when one was made
    video_stream_index: int | None = None  # index of the file's video stream (even when video is not decoded)
    needs_scan: bool = False  # a callable frame selection needs the exact count: scan, then plan again
    video_info: VideoStreamInfo | None = None  # the sequence the frame selection sees
    requested: list[int] | None = None  # frame indices in the order asked for (None: every frame)
    wanted: set[int] | None = None  # the same as a set
    window: tuple[Fraction | None, Fraction | None] = (None, None)  # requested [start, end) in seconds
    rate: Fraction | float | None = None  # output frame rate (None: native frames)
    native_fps: Fraction | None = None


@dataclass
class _AssembledVideo:
    """The decoded video part of a `DecodedMedia` (all None when video was not decoded)."""

    frames: np.ndarray | None = None
    indices: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    source_indices: np.ndarray | None = None
    count: int | None = None
    fps: Fraction | float | None = None
    width: int | None = None
    height: int | None = None


class PyAVBackend(MediaBackend):
    """Args:
        skip_non_reference: leave the non-reference frames shown before the first selected frame undecoded
            (H.264, native frame rate, no time window; see `_NonRefSkipper`). The selected frames are bit-identical
            either way; ``False`` decodes every frame up to the last selected one.
    """

    name = "pyav"

    def __init__(self, skip_non_reference: bool = True):
        self.skip_non_reference = skip_non_reference

    # -- opening ---------------------------------------------------------------------------------------
    def _open(self, source: MediaSource):
        try:
            return av.open(source.open_binary(), mode="r", metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            raise MediaDecodingError(
                f"{source.name}: could not be opened as audio/video ({_describe(exc)}); expected a media container "
                "(mp4, mkv, webm, avi, wav, flac, mp3, ogg, ...) — the file may be corrupt, truncated or not media"
            ) from exc
        except (OSError, EOFError, ValueError, TypeError) as exc:
            raise MediaDecodingError(f"{source.name}: could not be read ({_describe(exc)})") from exc

    # -- probe -----------------------------------------------------------------------------------------
    def probe(self, source: MediaSource) -> MediaInfo:
        container = self._open(source)
        try:
            return self._probe_open(container, source)
        except MediaDecodingError:
            raise
        except (av.error.FFmpegError, OSError, EOFError, IndexError, ValueError) as exc:
            raise MediaDecodingError(f"{source.name}: could not read media metadata ({_describe(exc)})") from exc
        finally:
            container.close()

    def _video_info(self, container, stream, origin, count_packets: bool) -> VideoStreamInfo:
        cc = stream.codec_context
        fps = _native_fps(stream)
        duration = _stream_duration(stream)
        num_frames = stream.frames if stream.frames and stream.frames > 0 else None
        exact = num_frames is not None
        if num_frames is None and count_packets:
            scan = _scan_video_packets(container, stream, origin)
            num_frames = len(scan.times)
            exact = scan.complete
            if duration is None and scan.end is not None and scan.times:
                duration = scan.end - scan.times[0]
        if duration is None:
            end = _stream_end(stream, origin)
            start = _stream_start(stream, origin) or Fraction(0)
            duration = end - start if end is not None else _container_duration(container)
        if num_frames is None and duration is not None and fps:
            num_frames, exact = int(round(duration * fps)), False
        start = _stream_start(stream, origin)
        return VideoStreamInfo(
            num_frames=num_frames,
            fps=float(fps) if fps else None,
            width=cc.width or None,
            height=cc.height or None,
            duration=float(duration) if duration is not None else None,
            start_time=float(start) if start is not None else None,
            codec=cc.name,
            native_fps=float(fps) if fps else None,
            native_num_frames=num_frames,
            num_frames_exact=exact,
        )

    def _audio_info(self, container, stream, origin) -> AudioStreamInfo:
        cc = stream.codec_context
        duration = _stream_duration(stream)
        if duration is None:
            end = _stream_end(stream, origin)
            if end is not None:
                duration = end - (_stream_start(stream, origin) or Fraction(0))
        rate = cc.sample_rate or stream.rate or None
        layout = None
        channels = None
        try:
            layout = cc.layout.name
            channels = len(cc.layout.channels)
        except AttributeError:
            channels = getattr(cc, "channels", None)
        start = _stream_start(stream, origin)
        return AudioStreamInfo(
            sampling_rate=int(rate) if rate else None,
            channels=channels,
            layout=layout,
            codec=cc.name,
            duration=float(duration) if duration is not None else None,
            start_time=float(start) if start is not None else None,
            num_samples=int(round(duration * rate)) if duration is not None and rate else None,
        )

    def _probe_open(self, container, source: MediaSource) -> MediaInfo:
        origin = _origin(container)
        vstream, astream = _pick_streams(container)
        video = self._video_info(container, vstream, origin, count_packets=True) if vstream is not None else None
        audio = self._audio_info(container, astream, origin) if astream is not None else None
        duration = _media_duration(container, origin)
        if duration is None:
            candidates = [x.duration for x in (video, audio) if x is not None and x.duration is not None]
            duration = max(candidates) if candidates else None
        return MediaInfo(
            source=source.name,
            format_name=container.format.name if container.format else None,
            duration=float(duration) if duration is not None else None,
            start_time=float(origin) if container.start_time is not None else None,
            has_video=vstream is not None,
            has_audio=astream is not None,
            video=video,
            audio=audio,
            num_video_streams=sum(1 for s in container.streams.video if not _is_attached_picture(s)),
            num_audio_streams=len(container.streams.audio),
        )

    # -- decode ----------------------------------------------------------------------------------------
    # One call: plan (streams, window, frame count, which frames) -> set up the stream states -> demux once ->
    # detect truncation -> assemble the frames and the audio -> DecodedMedia. Each step is a method below.
    def decode(self, source: MediaSource, request: DecodeRequest) -> DecodedMedia:
        container = self._open(source)
        try:
            plan = self._plan(container, source, request)
            if plan.needs_scan:
                if source.reopenable:
                    container.close()
                    scan = self._scan_packets(source, plan)
                    container = self._open(source)
                    plan = self._plan(container, source, request, scan=scan)
                else:  # pragma: no cover - as_media_source buffers non-seekable inputs
                    plan = self._plan(container, source, request, scan=None, allow_scan=False)
            try:
                return self._decode_open(container, source, request, plan, skip_non_reference=True)
            except _SkipUnsafe:  # the stream broke an assumption after frames were skipped: decode it in full
                container.close()
                container = self._open(source)
                plan = self._plan(container, source, request, scan=plan.scan)
                return self._decode_open(container, source, request, plan, skip_non_reference=False)
        except MediaDecodingError:
            raise
        except (av.error.FFmpegError, OSError, EOFError, IndexError, KeyError, ZeroDivisionError) as exc:
            raise MediaDecodingError(f"{source.name}: decoding failed ({_describe(exc)})") from exc
        finally:
            container.close()

    def _scan_packets(self, source: MediaSource, plan: _DecodePlan) -> _PacketScan:
        """A packet-only pass over the video stream, on a container of its own (exact frame counts)."""
        scan_container = self._open(source)
        try:
            return _scan_video_packets(scan_container, scan_container.streams[plan.video_stream_index], plan.origin)
        finally:
            scan_container.close()

    # -- step 1: the plan ------------------------------------------------------------------------------
    def _plan(
        self, container, source, req: DecodeRequest, scan: _PacketScan | None = None, allow_scan: bool = True
    ) -> _DecodePlan:
        origin = _origin(container)
        vstream, astream = _pick_streams(container)
        name = source.name
        found = f"found {len(container.streams.video)} video / {len(container.streams.audio)} audio stream(s)"
        if req.require_video and vstream is None:
            raise MediaDecodingError(f"{name}: no video stream, but require_video=True ({found})")
        if req.require_audio and astream is None:
            raise MediaDecodingError(f"{name}: no audio stream, but require_audio=True ({found})")
        plan = _DecodePlan(
            origin=origin,
            vstream=vstream if req.video else None,
            astream=astream if req.audio else None,
            scan=scan,
            video_stream_index=vstream.index if vstream is not None else None,
        )
        if not req.video or vstream is None:
            return plan

        fps = _native_fps(vstream)
        start, end = _window(req)
        rate = req.frame_rate
        count, exact = self._count_video_frames(container, vstream, origin, req, scan)
        selection = req.frame_indices
        if callable(selection):
            if count is None and scan is None and allow_scan:
                plan.needs_scan = True
                return plan
            if count is None:  # estimate from metadata
                dur = _stream_duration(vstream) or _container_duration(container)
                seq_fps = rate or fps
                if dur is not None and seq_fps:
                    lo = start or Fraction(0)
                    hi = min(end, dur) if end is not None else dur
                    count, exact = max(0, int(round((hi - lo) * seq_fps))), False
        plan.video_info = self._sequence_info(container, vstream, origin, rate or fps, count, exact)
        plan.requested = self._requested_indices(selection, plan.video_info, name)
        if plan.requested is not None:
            plan.wanted = set(plan.requested)
        plan.window = (start, end)
        plan.rate = rate
        plan.native_fps = fps
        return plan

    @staticmethod
    def _count_video_frames(container, vstream, origin, req: DecodeRequest, scan: _PacketScan | None):
        """Frames of the output sequence in the window, from the index or the packet scan: (count, exact).
        `count` is None when neither tells (a callable selection then needs a scan or an estimate)."""
        start, end = _window(req)
        rate = req.frame_rate
        count, exact = None, False
        if rate is None:
            if start is None and end is None and vstream.frames and vstream.frames > 0:
                count, exact = int(vstream.frames), True
            elif scan is not None:
                times = [t for t in scan.times if (start is None or t >= start) and (end is None or t < end)]
                count, exact = len(times), scan.complete
            return count, exact
        total = None
        if req.frame_rate_mode == "fps_filter":
            if scan is not None and scan.end is not None:
                total = count_output_frames("fps_filter", rate, scan.times, scan.durations, scan.end)
                exact = scan.complete
            else:
                meta_end = _stream_end(vstream, origin)
                if meta_end is not None:
                    stream_start = _stream_start(vstream, origin) or Fraction(0)
                    total, exact = count_output_frames("fps_filter", rate, [stream_start], [None], meta_end), True
        elif scan is not None and scan.end is not None:
            total = count_output_frames(
                "cli_rate", rate, scan.times, scan.durations, scan.end,
                input_fps=_frac(vstream.guessed_rate) or _native_fps(vstream),
                single_stream_input=len(container.streams) == 1,
            )
            exact = scan.complete
        if total is not None:
            lo = max(0, _ceil(start * rate)) if start is not None else 0
            hi = min(total, _ceil(end * rate)) if end is not None else total
            count = max(0, hi - lo)
        return count, exact

    def _sequence_info(self, container, vstream, origin, seq_fps, count, exact) -> VideoStreamInfo:
        """The stream as the frame selection sees it: the (possibly resampled) sequence in the window."""
        vinfo = self._video_info(container, vstream, origin, count_packets=False)
        return VideoStreamInfo(
            num_frames=count,
            fps=float(seq_fps) if seq_fps else None,
            width=vinfo.width,
            height=vinfo.height,
            duration=(float(count / seq_fps) if count is not None and seq_fps else vinfo.duration),
            start_time=vinfo.start_time,
            codec=vinfo.codec,
            native_fps=vinfo.native_fps,
            native_num_frames=vinfo.native_num_frames,
            num_frames_exact=exact,
        )

    @staticmethod
    def _requested_indices(selection, info: VideoStreamInfo, name: str) -> list[int] | None:
        """The frame indices asked for (a callable is called on `info`), validated; None means every frame."""
        if callable(selection):
            try:
                chosen = selection(info)
            except MediaDecodingError:
                raise
            except Exception as exc:
                raise MediaDecodingError(
                    f"{name}: the frame_indices callable failed on {info} ({_describe(exc)})"
                ) from exc
            return _validate_indices(chosen, name)
        if selection is not None:
            return _validate_indices(selection, name)
        return None

    # -- steps 2-6: decode with a plan -----------------------------------------------------------------
    def _decode_open(
        self, container, source: MediaSource, req: DecodeRequest, plan: _DecodePlan, skip_non_reference: bool
    ) -> DecodedMedia:
        name = source.name
        start, end = _window(req)
        problems: list[str] = []
        vstate = self._start_video(container, req, plan, skip_non_reference and self.skip_non_reference)
        astate = self._start_audio(req, plan, name)
        demux_error, video_packets = self._demux(container, plan, vstate, astate, problems)
        truncated = self._check_truncation(plan, vstate, astate, req, demux_error, video_packets, problems)
        video = self._assemble_video(container, req, plan, vstate, truncated, problems, name)
        audio, sr, audio_start = self._assemble_audio(req, astate, problems, name)

        asked_no_frames = plan.requested is not None and len(plan.requested) == 0
        got_video = video.frames is not None and (video.frames.shape[0] > 0 or asked_no_frames)
        got_audio = audio is not None
        if (vstate is not None or astate is not None) and not got_video and not got_audio:
            if truncated:
                raise MediaDecodingError(
                    f"{name}: nothing could be decoded; the file looks truncated or corrupt ({'; '.join(problems)})"
                )
            raise MediaDecodingError(f"{name}: no usable media data{_tail(problems)}")
        if truncated or problems:
            text = f"{name}: decoded only in part, the file looks truncated or corrupt: " + "; ".join(problems)
            if not truncated:
                text = f"{name}: " + "; ".join(problems)
            warnings.warn(text, MediaDecodingWarning, stacklevel=4)

        duration = self._total_duration(container, plan, audio, sr)
        return DecodedMedia(
            frames=video.frames,
            frame_indices=video.indices,
            frame_timestamps=video.timestamps,
            video_fps=float(video.fps) if video.fps else None,
            num_video_frames=video.count,
            audio=audio,
            sampling_rate=sr,
            duration=float(duration) if duration is not None else None,
            source=name,
            source_frame_indices=video.source_indices,
            audio_start_time=float(audio_start) if audio_start is not None else None,
            width=video.width,
            height=video.height,
            warnings=problems,
        )

    @staticmethod
    def _start_video(container, req: DecodeRequest, plan: _DecodePlan, skip_non_reference: bool) -> _VideoState | None:
        vstream = plan.vstream
        if vstream is None:
            return None
        start, end = _window(req)
        _set_decoder_threads(vstream)
        mapper = None
        if plan.rate is not None:
            mapper = make_rate_mapper(
                req.frame_rate_mode, plan.rate,
                input_fps=_frac(vstream.guessed_rate) or plan.native_fps,
                single_stream_input=len(container.streams) == 1,
            )
        info = plan.video_info
        vstate = _VideoState(
            stream=vstream, origin=plan.origin, native_fps=plan.native_fps, rate=plan.rate, mapper=mapper,
            start=start, end=end, wanted=plan.wanted,
            seq_count=info.num_frames if info else None, seq_count_exact=bool(info and info.num_frames_exact),
        )
        if vstate.wanted is not None and not vstate.wanted:
            vstate.done = True
        elif (skip_non_reference and vstate.wanted and plan.rate is None and start is None and end is None
              and vstream.codec_context.name in _NONREF_SKIP_CODECS and min(vstate.wanted) > 0):
            vstate.skipper = _NonRefSkipper(min(vstate.wanted))
        return vstate

    @staticmethod
    def _start_audio(req: DecodeRequest, plan: _DecodePlan, name: str) -> _AudioState | None:
        if plan.astream is None:
            return None
        _set_decoder_threads(plan.astream)
        return _AudioState(plan.astream, plan.origin, req, name)

    @staticmethod
    def _demux(container, plan: _DecodePlan, vstate, astate, problems: list[str]) -> tuple[str | None, int]:
        """One pass over the container feeding both decoders; stops once neither needs more packets.
        Returns (why reading stopped early or None, non-empty video packets seen)."""
        streams = [s for s in (plan.vstream if vstate and not vstate.done else None, plan.astream) if s is not None]
        demux_error: str | None = None
        video_packets = 0
        if streams:
            try:
                for packet in container.demux(streams):
                    st = packet.stream
                    is_video = vstate is not None and st.index == vstate.stream.index
                    if is_video:
                        if vstate.done and not vstate.counting_tail:
                            continue
                        vstate.record_tail(packet)
                        if vstate.done:
                            continue
                        if packet.size:
                            video_packets += 1
                        _decode_video_packets(vstate, _packets_to_decode(vstate, packet), problems)
                    elif astate is not None and st.index == astate.stream.index:
                        if astate.done:
                            continue
                        astate.push_packet(packet, problems)
                    video_busy = vstate is not None and (not vstate.done or vstate.counting_tail)
                    if not video_busy and (astate is None or astate.done):
                        break
            except (av.error.FFmpegError, OSError, EOFError) as exc:
                demux_error = f"reading the file stopped early ({_describe(exc)})"
        if vstate is not None and vstate.skipper is not None and vstate.skipper.queue and not vstate.done:
            _decode_video_packets(vstate, vstate.skipper.drain(), problems)  # no flush packet came (demux error)
        if vstate is not None and vstate.counting_tail and demux_error is None:
            vstate.finish_from_tail()
        if vstate is not None and not vstate.finished_stream and not (vstate.done and vstate.wanted is not None):
            # Reached the end without a flush packet (demux error) or stopped at the window end.
            vstate.finish()
        if astate is not None:
            astate.finish(problems)
        return demux_error, video_packets

    @staticmethod
    def _check_truncation(
        plan: _DecodePlan, vstate, astate, req: DecodeRequest, demux_error, video_packets: int, problems: list[str]
    ) -> bool:
        """Truncation: the demuxer stopped, or the index promised more frames/samples than were there."""
        start, end = _window(req)
        vstream = plan.vstream
        truncated = demux_error is not None
        if demux_error:
            problems.append(demux_error)
        whole = start is None and end is None
        if vstate is not None and vstate.finished_stream and whole and vstate.native_count:
            if vstream.frames and vstream.frames > 0 and video_packets + 2 < vstream.frames:
                truncated = True
                problems.append(
                    f"video stream index lists {vstream.frames} frames but only {video_packets} packets were found"
                )
            expected_end = _stream_end(vstream, plan.origin)
            step = vstate.last_duration or (1 / vstate.native_fps if vstate.native_fps else Fraction(0))
            decoded_end = vstate.last_time + step
            if expected_end is not None and decoded_end < expected_end - _tolerance(expected_end):
                truncated = True
                problems.append(
                    f"video stream should last until {float(expected_end):.3f} s "
                    f"but frames end at {float(decoded_end):.3f} s"
                )
        if astate is not None and astate.finished_stream and end is None:
            expected_end = astate.metadata_end()
            if (expected_end is not None and astate.decoded_end is not None
                    and astate.decoded_end < expected_end - _tolerance(expected_end)):
                truncated = True
                problems.append(
                    f"audio stream should last until {float(expected_end):.3f} s "
                    f"but data ends at {float(astate.decoded_end):.3f} s"
                )
        return truncated

    def _assemble_video(
        self, container, req: DecodeRequest, plan: _DecodePlan, vstate, truncated: bool, problems: list[str], name: str
    ) -> _AssembledVideo:
        """The kept frames in the requested order, with their indices and times; missing requested indices are a
        problem on a damaged file and an error on a sound one."""
        if vstate is None:
            return _AssembledVideo()
        start, end = _window(req)
        vstream = plan.vstream
        width = vstate.width or vstream.codec_context.width or None
        height = vstate.height or vstream.codec_context.height or None
        seq_fps = plan.rate or plan.native_fps
        if vstate.finished_stream:
            seq_count = vstate.produced
        elif vstate.seq_count is not None:
            seq_count = vstate.seq_count
        else:
            seq_count = self._estimate_count(vstream, plan, container)
        requested = plan.requested
        if requested is None:
            order = sorted(vstate.kept)
        else:
            missing = [j for j in requested if j not in vstate.kept]
            if missing:
                what = "frame_rate-resampled" if plan.rate is not None else "native"
                msg = (f"frame indices {sorted(set(missing))[:8]} not available: the {what} frame sequence"
                       f"{' in the requested window' if (start is not None or end is not None) else ''} has "
                       f"{vstate.produced if vstate.finished_stream else seq_count} frames")
                if truncated or problems:
                    problems.append(msg)
                else:
                    raise MediaDecodingError(f"{name}: {msg}")
            order = [j for j in requested if j in vstate.kept]
        if order:
            frames = np.stack([vstate.converted[vstate.kept[j][0]] for j in order])
        else:
            frames = np.zeros((0, height or 0, width or 0, 3), dtype=np.uint8)
        if req.require_video and len(order) == 0 and (requested is None or len(requested) > 0):
            raise MediaDecodingError(
                f"{name}: no video frame could be decoded (require_video=True){_tail(problems)}"
            )
        return _AssembledVideo(
            frames=frames,
            indices=np.asarray(order, dtype=np.int64),
            timestamps=np.asarray([float(vstate.kept[j][1]) for j in order], dtype=np.float64),
            source_indices=np.asarray([vstate.kept[j][0] for j in order], dtype=np.int64),
            count=seq_count,
            fps=seq_fps,
            width=width,
            height=height,
        )

    @staticmethod
    def _assemble_audio(req: DecodeRequest, astate, problems: list[str], name: str):
        """(samples, sampling rate, start time); no samples is an error with `require_audio`, a problem otherwise."""
        if astate is None:
            return None, None, None
        audio, sr, audio_start = astate.result()
        if audio is None or audio.shape[-1] == 0:
            msg = f"{name}: audio stream decoded to zero samples"
            if req.start_time is not None or req.end_time is not None:
                msg += f" in the window [{req.start_time}, {req.end_time})"
            if req.require_audio:
                raise MediaDecodingError(msg + _tail(problems))
            problems.append(msg.split(": ", 1)[1])
            audio = None
        return audio, sr, audio_start

    @staticmethod
    def _total_duration(container, plan: _DecodePlan, audio, sr) -> Fraction | None:
        duration = _media_duration(container, plan.origin)
        if duration is None:
            parts = [x for x in (_stream_duration(plan.vstream) if plan.vstream is not None else None,
                                 _stream_duration(plan.astream) if plan.astream is not None else None) if x is not None]
            duration = max(parts) if parts else None
        if duration is None and audio is not None and sr:
            duration = Fraction(audio.shape[-1], sr)
        return duration

    @staticmethod
    def _estimate_count(vstream, plan: _DecodePlan, container) -> int | None:
        info = plan.video_info
        if info is not None and info.num_frames is not None:
            return info.num_frames
        seq_fps = plan.rate or plan.native_fps
        dur = _stream_duration(vstream) or _container_duration(container)
        if dur is None or not seq_fps:
            return None
        start, end = plan.window
        lo = start or Fraction(0)
        hi = min(end, dur) if end is not None else dur
        return max(0, int(round((hi - lo) * seq_fps)))


def _window(req: DecodeRequest) -> tuple[Fraction | None, Fraction | None]:
    """The requested [start, end) in seconds as exact fractions (None: open)."""
    start = Fraction(req.start_time).limit_denominator(10**9) if req.start_time is not None else None
    end = Fraction(req.end_time).limit_denominator(10**9) if req.end_time is not None else None
    return start, end


def _tolerance(expected_end: Fraction) -> Fraction:
    """Slack before a stream that ends early counts as truncated (metadata is rounded, last frames vary)."""
    return max(Fraction(1, 4), expected_end / 50)


def _tail(problems: list[str]) -> str:
    return f" ({'; '.join(problems)})" if problems else ""


def _packets_to_decode(vstate: _VideoState, packet) -> list:
    """The packets to hand to the video decoder now: this one, or those the non-reference skipper releases."""
    skipper = vstate.skipper
    if skipper is None or (not skipper.queue and not skipper.active):
        return [packet]
    if packet.size == 0:  # flush: every queued packet first
        return skipper.drain() + [packet]
    return skipper.accept(packet)


def _decode_video_packets(vstate: _VideoState, packets: list, problems: list[str]) -> None:
    skipper = vstate.skipper
    for packet in packets:
        if vstate.done:
            return
        if skipper is not None:
            skipper.prepare(packet, vstate.stream.codec_context)
        frames = _decode_packet(packet, vstate, "video", problems)
        if frames is None:
            if skipper is not None:
                skipper.decode_error()
            continue
        for frame in frames:
            vstate.push(frame)
            if vstate.done:
                break
        if packet.size == 0 and not vstate.done:
            vstate.finish()
            vstate.done = True


class _AudioState:
    """Collects decoded audio through one AudioResampler, then cuts the window / trims to the stream length."""

    def __init__(self, stream, origin: Fraction, req: DecodeRequest, name: str):
        self.stream = stream
        self.origin = origin
        self.req = req
        self.name = name
        self.start = Fraction(req.start_time).limit_denominator(10**9) if req.start_time is not None else None
        self.end = Fraction(req.end_time).limit_denominator(10**9) if req.end_time is not None else None
        layout = {"keep": None, "first": None, "mono": "mono", "stereo": "stereo"}[req.audio_channels]
        self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=req.sampling_rate)
        self.chunks: list[np.ndarray] = []
        self.first_time: Fraction | None = None  # time of the first sample fed to the resampler
        self.next_time: Fraction | None = None
        self.decoded_end: Fraction | None = None
        self.out_rate: int | None = req.sampling_rate
        self.in_rate: int | None = None
        self.done = False
        self.finished_stream = False
        self.errors = 0
        self.channels: int | None = None
        self.odd_frames = 0
        self.pending: list[np.ndarray] = []  # channel-0 planes not yet resampled (audio_channels="first")
        self.pending_samples = 0
        self.first_plane_only = False  # set on the first frame: "first" of a multi-channel fltp stream

    def _frame_time(self, frame) -> Fraction:
        tb = frame.time_base or self.stream.time_base
        if frame.pts is not None and tb is not None:
            return frame.pts * tb - self.origin
        if self.next_time is not None:
            return self.next_time
        return _stream_start(self.stream, self.origin) or Fraction(0)

    def push_packet(self, packet, problems: list[str]) -> None:
        frames = _decode_packet(packet, self, "audio", problems)
        if frames is None:
            return
        for frame in frames:
            self._push_frame(frame, problems)
        if packet.size == 0:
            self.finished_stream = True
            self.done = True

    def _push_frame(self, frame, problems: list[str]) -> None:
        if frame.samples == 0 or not frame.sample_rate:
            return
        t = self._frame_time(frame)
        frame_end = t + Fraction(frame.samples, frame.sample_rate)
        self.next_time = frame_end
        self.decoded_end = frame_end if self.decoded_end is None else max(self.decoded_end, frame_end)
        if self.start is not None and frame_end <= self.start - _AUDIO_MARGIN:
            return
        if self.end is not None and t >= self.end + _AUDIO_MARGIN:
            self.done = True
            return
        if self.first_time is None:
            self.first_time = t
            self.in_rate = frame.sample_rate
            if self.out_rate is None:
                self.out_rate = frame.sample_rate
            self.channels = len(frame.layout.channels)
            self.first_plane_only = (self.req.audio_channels == "first" and self.channels > 1
                                     and frame.format.name == "fltp")
        elif self.first_plane_only and (frame.format.name != "fltp" or frame.sample_rate != self.in_rate):
            self.odd_frames += 1
            if self.odd_frames == 1:
                problems.append(f"audio frames in {frame.format.name} at {frame.sample_rate} Hz instead of fltp at "
                                f"{self.in_rate} Hz were dropped (damaged stream)")
            return
        elif len(frame.layout.channels) != self.channels:
            # Robustness fix: a damaged stream can make the decoder switch channel count mid-way (seen on garbled
            # MP3); the resampler passed such frames through unchanged and the chunks could not be concatenated
            # (raw numpy ValueError). The odd frame is dropped and reported.
            self.odd_frames += 1
            if self.odd_frames == 1:
                problems.append(f"audio frames with {len(frame.layout.channels)} channel(s) instead of "
                                f"{self.channels} were dropped (damaged stream)")
            return
        if self.first_plane_only:
            # Only channel 0 is kept: resample that plane alone (libswresample treats channels independently when
            # it does not remix, so the samples are bit-identical) instead of all of them. Planes are gathered into
            # ~1 s blocks first: one resampler call per 1024-sample AAC frame costs more than it saves.
            self.pending.append(frame.to_ndarray()[:1])
            self.pending_samples += frame.samples
            if self.pending_samples >= self.in_rate:
                self._resample_pending()
            return
        frame.pts = None  # the resampler only needs continuity; our own clock is `first_time`
        for out in self.resampler.resample(frame):
            self.chunks.append(out.to_ndarray())

    def _resample_pending(self) -> None:
        if not self.pending:
            return
        block = av.AudioFrame.from_ndarray(np.concatenate(self.pending, axis=-1), format="fltp", layout="mono")
        block.sample_rate = self.in_rate
        self.pending, self.pending_samples = [], 0
        for out in self.resampler.resample(block):
            self.chunks.append(out.to_ndarray())

    def finish(self, problems: list[str]) -> None:
        if self.first_time is None:
            return
        try:
            self._resample_pending()
            for out in self.resampler.resample(None):
                self.chunks.append(out.to_ndarray())
        except av.error.FFmpegError as exc:  # pragma: no cover - flushing a valid graph does not fail
            problems.append(f"audio resampler flush failed ({_describe(exc)})")

    def metadata_end(self) -> Fraction | None:
        return _stream_end(self.stream, self.origin)

    def result(self):
        if self.first_time is None or not self.chunks:
            return None, self.out_rate, None
        audio = np.concatenate(self.chunks, axis=-1).astype(np.float32, copy=False)
        if self.req.audio_channels == "first":
            audio = audio[:1]
        sr = self.out_rate
        lo_time = self.first_time
        first = 0
        if self.start is not None and self.start > self.first_time:
            first = int(round((self.start - self.first_time) * sr))
            lo_time = self.first_time + Fraction(first, sr)
        stop_time = self.end
        if self.req.trim_audio:
            meta_end = self.metadata_end()
            if meta_end is not None:
                stop_time = meta_end if stop_time is None else min(stop_time, meta_end)
        last = audio.shape[-1]
        if stop_time is not None:
            last = min(last, max(first, int(round((stop_time - self.first_time) * sr))))
        # Not clipped: float codecs (AAC, Opus, MP3) may overshoot 1.0 slightly, kept as ffmpeg's f32le output keeps it.
        audio = np.ascontiguousarray(audio[:, first:last])
        return audio, sr, lo_time
