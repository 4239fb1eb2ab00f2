"""LAVisH preprocessing (AVE task, Swin branch): the original ``AVE/dataloader.py`` ``AVE_dataset``."""

from __future__ import annotations

import numpy as np
import torch
from transformers.utils import logging

from ..features.kaldi import kaldi_fbank_padded, thread_independent_mean
from .base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FrameImageProcessor,
    SegmentedClipProcessor,
    WaveformFeatureExtractor,
    check_setting,
)

__all__ = ["LavishFeatureExtractor", "LavishImageProcessor", "LavishProcessor"]

logger = logging.get_logger(__name__)


class LavishFeatureExtractor(WaveformFeatureExtractor):
    r"""Per-segment normalised Kaldi fbank ``[B, num_segments, target_length, num_mel_bins]`` (LAVisH AVE).

    Per clip ``[C, N]``: subtract the mean over all channels and samples; segment starts
    ``np.linspace(0, N - sampling_rate * (segment_seconds + 0.1), num_segments, dtype=int)``; each
    ``segment_seconds`` window goes through Kaldi fbank on channel ``channel`` (Hann, 25 ms, 5.2 ms shift =
    83 samples, 192 bins) -> 188 frames; ``(x - mean) / (2 * std)``; THEN zero-padded to ``target_length``
    rows (padding stays 0, unlike CAV-MAE).

    Short clips: the original only slices clips longer than 1.1 s and has no defined output otherwise. Here a
    clip of at most ``sampling_rate * (segment_seconds + 0.1)`` samples is zero-padded at the end (after the
    mean removal, i.e. with silence) to that length, so every clip gives the same shapes; a warning is logged.
    Clips shorter than one 25 ms window are refused.

    Args:
        sampling_rate (`int`, *optional*, defaults to 16000): model rate; other rates are resampled.
        num_mel_bins (`int`, *optional*, defaults to 192): mel bins.
        num_segments (`int`, *optional*, defaults to 10): 1-s segments per clip (one per video frame).
        segment_seconds (`float`, *optional*, defaults to 1.0): segment length (the original's ``audio_length``).
        target_length (`int`, *optional*, defaults to 192): rows after padding (square 192x192 "image").
        frame_length (`float`, *optional*, defaults to 25.0): Kaldi window in ms.
        frame_shift (`float`, *optional*, defaults to 5.2): Kaldi hop in ms (83 samples at 16 kHz).
        window_type (`str`, *optional*, defaults to `"hanning"`): Kaldi window.
        mean (`float`, *optional*, defaults to -4.984795570373535): dataset mean of the log-mel.
        std (`float`, *optional*, defaults to 3.7079780101776123): dataset std; the original divides by 2*std.
        channel (`int`, *optional*, defaults to 0): channel the fbank uses (Kaldi's default of the original).
        resample_input (`bool`, *optional*, defaults to `True`): resample other rates instead of refusing them.
    """

    model_input_names = ["input_values"]

    def __init__(
        self,
        sampling_rate: int = 16000,
        num_mel_bins: int = 192,
        num_segments: int = 10,
        segment_seconds: float = 1.0,
        target_length: int = 192,
        frame_length: float = 25.0,
        frame_shift: float = 5.2,
        window_type: str = "hanning",
        mean: float = -4.984795570373535,
        std: float = 3.7079780101776123,
        channel: int = 0,
        resample_input: bool = True,
        padding_value: float = 0.0,
        **kwargs,
    ):
        kwargs["feature_size"] = num_mel_bins  # derived; a saved config also carries it
        super().__init__(sampling_rate=sampling_rate, padding_value=padding_value, resample_input=resample_input, **kwargs)
        self.num_mel_bins = num_mel_bins
        self.num_segments = num_segments
        self.segment_seconds = segment_seconds
        self.target_length = target_length
        self.frame_length = frame_length
        self.frame_shift = frame_shift
        self.window_type = window_type
        self.mean = mean
        self.std = std
        self.channel = channel
        # Robustness fix: unchecked before (num_segments=0 failed inside torch.stack, std=0 gave inf).
        for name in ("num_mel_bins", "num_segments", "target_length"):
            check_setting(self, name, getattr(self, name), minimum=1, integer=True)
        for name in ("segment_seconds", "frame_length", "frame_shift", "std"):
            check_setting(self, name, getattr(self, name), minimum=0, exclusive=True)
        check_setting(self, "mean", mean)
        check_setting(self, "channel", channel, minimum=0, integer=True)
        check_setting(self, "window_type", window_type, choices=("hanning", "hamming", "povey", "rectangular", "blackman"))

    def segment_offsets(self, num_samples: int) -> list[int]:
        """Start sample of each segment for a clip of ``num_samples`` (after short-clip padding)."""
        # Evaluated exactly as the original: float span, linspace, truncation to int.
        span = self.sampling_rate * (self.segment_seconds + 0.1)
        return [int(o) for o in np.linspace(0, max(num_samples - span, 0), self.num_segments, dtype=int)]

    def _extract(self, waveforms):
        segment_samples = int(self.sampling_rate * self.segment_seconds)
        span = self.sampling_rate * (self.segment_seconds + 0.1)
        min_samples = int(self.sampling_rate * self.frame_length * 0.001)
        segments = []
        for index, waveform in enumerate(waveforms):
            if self.channel >= waveform.shape[0]:
                raise ValueError(f"audio[{index}] has {waveform.shape[0]} channel(s); channel={self.channel} requested.")
            if waveform.shape[-1] < min_samples:
                raise ValueError(
                    f"audio[{index}] is too short: {waveform.shape[-1]} samples, need at least one "
                    f"{self.frame_length} ms window ({min_samples} samples)."
                )
            waveform = waveform - thread_independent_mean(waveform)  # over all channels, as the original
            if waveform.shape[-1] < span:
                logger.warning(
                    f"audio[{index}] is {waveform.shape[-1] / self.sampling_rate:.2f} s long; zero-padding to "
                    f"{span / self.sampling_rate:.2f} s (the original defines no output for clips this short)."
                )
                waveform = torch.nn.functional.pad(waveform, (0, int(np.ceil(span)) - waveform.shape[-1]))
            channel_signal = waveform[self.channel]
            segments.extend(
                channel_signal[offset : offset + segment_samples] for offset in self.segment_offsets(waveform.shape[-1])
            )
        # (fbank - mean) / (2 std), then zero rows up to target_length: one pass writing into the output
        features = kaldi_fbank_padded(
            segments,
            self.target_length,
            normalize=(self.mean, 2 * self.std),
            padding_value=0.0,
            sample_frequency=self.sampling_rate,
            num_mel_bins=self.num_mel_bins,
            frame_length=self.frame_length,
            frame_shift=self.frame_shift,
            window_type=self.window_type,
            htk_compat=True,
            use_energy=False,
            dither=0.0,
        )
        return {"input_values": features.reshape(len(waveforms), self.num_segments, *features.shape[1:])}


class LavishImageProcessor(FrameImageProcessor):
    r"""LAVisH / DG-SCT frames: ``/255`` -> bicubic resize to exactly 192x192 (aspect ratio not kept, no crop,
    ``antialias=False`` as the pinned torchvision tensor ``Resize`` the checkpoints were trained with) ->
    ImageNet mean/std. Set ``antialias=True`` for torchvision >= 0.17 behaviour (differs by up to 0.56).

    Args: see :class:`~hf_av.processing.base.FrameImageProcessor`.
    """

    size = {"height": 192, "width": 192}
    interpolation = "bicubic"
    antialias = False
    do_center_crop = False
    crop_size = None
    image_mean = IMAGENET_MEAN
    image_std = IMAGENET_STD


class LavishProcessor(SegmentedClipProcessor):
    r"""LAVisH (AVE) processor: ``input_values`` ``[B, 10, 192, 192]`` and ``pixel_values`` ``[B, 10, 3, 192, 192]``.

    From files: frames at 8 fps then ten by ``linspace(1, n, 10)``; audio at 16 kHz keeping both channels
    (the original's moviepy export is stereo; moviepy picks the nearest 44.1 kHz sample instead of
    low-pass resampling, which is not reproduced).
    """

    sub_processor_classes = {"feature_extractor": LavishFeatureExtractor, "image_processor": LavishImageProcessor}
    audio_channels = "stereo"

    def __init__(self, feature_extractor=None, image_processor=None, **kwargs):
        super().__init__(
            feature_extractor if feature_extractor is not None else LavishFeatureExtractor(),
            image_processor if image_processor is not None else LavishImageProcessor(),
            **kwargs,
        )
