"""Emulation of ffmpeg's frame-rate conversion, as a mapping from native frames to output frames.

Two rules are implemented, because the original models' data were extracted with both:

``"fps_filter"`` -- ``ffmpeg -vf fps=R`` (libavfilter ``fps``, default ``round=near``, ``eof_action=round``).
    Each native frame ``i`` (time ``t_i`` from the media start) gets the output slot
    ``r_i = round_half_away_from_zero(t_i * R)``. Output frame ``k`` shows the *last* native frame with
    ``r_i <= k`` (the first frame when none has, which is what ffmpeg's command line produces when the
    video starts late). The sequence has ``K = round_half_away_from_zero(end * R)`` frames, ``end`` being
    the end of the video stream (last frame time + its duration). So output frame ``k`` is the frame on
    screen just before ``t = (k + 1/2) / R`` (not at ``k / R``: ffmpeg rounds to the nearest slot); for
    constant-rate input at rate F starting at 0 it is native frame ``max{i : round(i * R / F) <= k}``.

``"cli_rate"`` -- the ``-r R`` *output option* of the ffmpeg command line without any ``-vf`` (ffmpeg 5.x-7.x,
    ``-vsync cfr``, the default for mp4/mkv/image2 outputs), e.g. ``ffmpeg -i clip.mp4 -r 8 %04d.jpg``.
    This is NOT the fps filter: frames are duplicated/dropped by the encoder-side vsync logic
    (drop when more than 1.1 output frames behind, duplicate when more than 1.1 ahead, then at EOF the last
    frame repeated by the median of the last three duplication counts), so it keeps ~one frame more at the
    start and produces a slightly longer sequence (BigBuckBunny, 132 frames at 25 fps, ``-r 8``: 44 frames
    where ``fps=8`` gives 42). For input with a single stream ffmpeg uses its ``vscfr`` variant (no initial
    duplicates), emulated too.
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = ["FRAME_RATE_MODES", "CliRateMapper", "FpsFilterMapper", "make_rate_mapper", "parse_rate", "round_half_away"]

FRAME_RATE_MODES = ("fps_filter", "cli_rate")


def parse_rate(rate) -> Fraction:
    """A positive rate as an exact fraction (``30000/1001`` may be given as a string or a float)."""
    if isinstance(rate, str):
        frac = Fraction(rate.strip())
    elif isinstance(rate, Fraction):
        frac = rate
    elif isinstance(rate, bool):
        raise ValueError(f"frame rate must be a number, got {rate!r}")
    else:
        value = float(rate)
        if not math.isfinite(value):
            raise ValueError(f"frame rate must be finite, got {rate!r}")
        frac = Fraction(value).limit_denominator(1_000_000)
        # 29.97002997... given as a float means NTSC's 30000/1001.
        close = Fraction(value).limit_denominator(1001)
        if abs(float(close) - value) < 1e-9 * max(1.0, abs(value)):
            frac = close
    if frac <= 0:
        raise ValueError(f"frame rate must be > 0, got {rate!r}")
    return frac


def round_half_away(x: Fraction) -> int:
    """``av_rescale_q_rnd(..., AV_ROUND_NEAR_INF)``: nearest integer, halves away from zero (exact)."""
    if x >= 0:
        return math.floor(x + Fraction(1, 2))
    return -math.floor(-x + Fraction(1, 2))


def _lrint(x: float) -> int:
    """C ``lrint`` in the default rounding mode: nearest, ties to even (Python's ``round``)."""
    return int(round(x))


class FpsFilterMapper:
    """Streaming form of the ``fps`` filter rule: ``push`` native frames in presentation order, get
    ``(native_index, output_index)`` pairs as soon as they are final."""

    def __init__(self, rate: Fraction):
        self.rate = Fraction(rate)
        self.next_k = 0
        self._pending: int | None = None

    def slot(self, t: Fraction) -> int:
        return round_half_away(t * self.rate)

    def push(self, index: int, t: Fraction, duration: Fraction | None = None) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        r = self.slot(t)
        if self._pending is not None:
            while self.next_k < r:
                out.append((self._pending, self.next_k))
                self.next_k += 1
        self._pending = index
        return out

    def finish(self, end: Fraction) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        total = self.num_output_frames(end)
        if self._pending is not None:
            while self.next_k < total:
                out.append((self._pending, self.next_k))
                self.next_k += 1
        self._pending = None
        return out

    def num_output_frames(self, end: Fraction) -> int:
        return max(0, round_half_away(end * self.rate))


class CliRateMapper:
    """Streaming form of the ffmpeg command line's ``-r R`` output option (vsync cfr / vscfr)."""

    def __init__(self, rate: Fraction, input_fps: Fraction | None, single_stream_input: bool = False):
        self.rate = Fraction(rate)
        # Duration of one input frame in output ticks, as ffmpeg derives it from the input frame rate,
        # capped at one output frame.
        if input_fps:
            self.default_duration = min(float(self.rate / Fraction(input_fps)), 1.0)
        else:
            self.default_duration = 1.0
        self.vscfr = single_stream_input
        self.sync_opts = 0
        self.frame_number = 0
        self.last_nb0 = [0, 0, 0]
        self._last: int | None = None

    def _sync_ipts(self, t: Fraction) -> float:
        # adjust_frame_pts_to_encoder_tb: the time in output ticks kept with 16 extra bits, then nudged away
        # from exact midpoints.
        scaled = round_half_away(t * self.rate * (1 << 16))
        value = scaled / float(1 << 16)
        if value > 0:
            value += 1.0 / (1 << 17)
        elif value < 0:
            value -= 1.0 / (1 << 17)
        return value

    def push(self, index: int, t: Fraction, duration: Fraction | None = None) -> list[tuple[int, int]]:
        sync_ipts = self._sync_ipts(t)
        frame_duration = self.default_duration
        if duration is not None and duration > 0:
            ticks = _lrint(float(duration * self.rate))
            if ticks > 0:
                frame_duration = float(ticks)
        delta0 = sync_ipts - self.sync_opts
        delta = delta0 + frame_duration
        nb0 = 0
        nb = 1
        if delta0 < 0 < delta:
            frame_duration += delta0
            delta0 = 0.0
        if self.vscfr and self.frame_number == 0 and delta0 >= 0.5:
            delta = frame_duration
            delta0 = 0.0
            self.sync_opts = _lrint(sync_ipts)
        if delta < -1.1:
            nb = 0
        elif delta > 1.1:
            nb = _lrint(delta)
            if delta0 > 1.1:
                nb0 = _lrint(delta0 - 0.6)
        nb0 = min(nb0, nb)
        self.last_nb0 = [nb0] + self.last_nb0[:2]
        out = []
        for i in range(nb):
            src = self._last if (i < nb0 and self._last is not None) else index
            out.append((src, self._emit()))
        self._last = index
        return out

    def _emit(self) -> int:
        k = self.frame_number
        self.frame_number += 1
        self.sync_opts += 1
        return k

    def finish(self, end: Fraction | None = None) -> list[tuple[int, int]]:
        out = []
        if self._last is not None:
            nb = sorted(self.last_nb0)[1]
            for _ in range(nb):
                out.append((self._last, self._emit()))
        self._last = None
        return out


def make_rate_mapper(mode: str, rate: Fraction, input_fps: Fraction | None = None, single_stream_input: bool = False):
    if mode == "fps_filter":
        return FpsFilterMapper(rate)
    if mode == "cli_rate":
        return CliRateMapper(rate, input_fps, single_stream_input)
    raise ValueError(f"frame_rate_mode must be one of {FRAME_RATE_MODES}, got {mode!r}")


def count_output_frames(mode: str, rate: Fraction, times, durations, end: Fraction,
                        input_fps: Fraction | None = None, single_stream_input: bool = False) -> int:
    """Length of the resampled sequence for native frames at ``times`` (sorted, seconds from the media start)."""
    mapper = make_rate_mapper(mode, rate, input_fps, single_stream_input)
    if mode == "fps_filter":
        return mapper.num_output_frames(end) if len(times) else 0
    n = 0
    for i, (t, d) in enumerate(zip(times, durations)):
        n += len(mapper.push(i, t, d))
    n += len(mapper.finish(end))
    return n
