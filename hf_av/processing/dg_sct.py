"""DG-SCT preprocessing (AVE task): the original ``AVE/dataloader.py`` plus HTS-AT's spectrogram front-end."""

from __future__ import annotations

import math

import torch

from ..features.spectrogram import log_mel_spectrogram
from .base import SegmentedClipProcessor, WaveformFeatureExtractor, check_setting
from .lavish import LavishImageProcessor

__all__ = ["DgSctFeatureExtractor", "DgSctImageProcessor", "DgSctProcessor"]

_LENGTH_POLICIES = ("loop", "pad")


class DgSctFeatureExtractor(WaveformFeatureExtractor):
    r"""DG-SCT audio: ten 1-s segments, each tiled to 10 s, then HTS-AT's log-mel.

    Per clip: mono (multi-channel input is averaged), brought to exactly ``num_segments * segment_seconds``
    (10 s) by ``length_policy``, reshaped to ``[num_segments, segment_samples]`` and every row repeated
    ``tile_repeats`` times (``wave.view(10, 32000).repeat(1, 10)``, the original loader's tiling loop).

    Output ``input_values``:
      * default: the HTS-AT log-mel of every tiled segment, ``[B, num_segments, frames, num_mel_bins]``
        (1001 x 64 with the release settings): torchlibrosa ``Spectrogram`` + ``LogmelFilterBank``
        (periodic Hann, centre/reflect padding, power, Slaney mel, ``10 log10(max(x, 1e-10))``), i.e. the
        input of HTS-AT's ``bn0``, computed with torchlibrosa's float32 DFT convolution so that it rounds as the
        original did. The model does the rest (bn0, interpolation to the Swin grid).
      * ``return_waveform=True``: the tiled waveform ``[B, num_segments, tile_repeats * segment_samples]``,
        what the original dataloader returned.

    Length policy (the original needs exactly 10 s and raises otherwise): a longer clip keeps its first 10 s;
    a shorter one is looped (``length_policy="loop"``, ``np.resize`` semantics, as the shared parity fixture
    was prepared) or zero-padded at the end (``"pad"``).

    Args:
        sampling_rate (`int`, *optional*, defaults to 32000): HTS-AT rate; other rates are resampled.
        num_segments (`int`, *optional*, defaults to 10): 1-s segments per clip (5 for AVS).
        segment_seconds (`float`, *optional*, defaults to 1.0): segment length.
        tile_repeats (`int`, *optional*, defaults to 10): copies of each segment (10 -> 10-s inputs; 5 for AVS).
        length_policy (`str`, *optional*, defaults to `"loop"`): ``"loop"`` or ``"pad"`` for short clips.
        n_fft (`int`, *optional*, defaults to 1024): STFT size (HTS-AT ``window_size``).
        hop_length (`int`, *optional*, defaults to 320): STFT hop.
        win_length (`int`, *optional*): STFT window (defaults to ``n_fft``).
        num_mel_bins (`int`, *optional*, defaults to 64): mel bins.
        f_min (`float`, *optional*, defaults to 50.0): lowest mel frequency.
        f_max (`float`, *optional*, defaults to 14000.0): highest mel frequency.
        return_waveform (`bool`, *optional*, defaults to `False`): return the tiled waveform instead of log-mel.
        resample_input (`bool`, *optional*, defaults to `True`): resample other rates instead of refusing them.
    """

    model_input_names = ["input_values"]

    def __init__(
        self,
        sampling_rate: int = 32000,
        num_segments: int = 10,
        segment_seconds: float = 1.0,
        tile_repeats: int = 10,
        length_policy: str = "loop",
        n_fft: int = 1024,
        hop_length: int = 320,
        win_length: int | None = None,
        num_mel_bins: int = 64,
        f_min: float = 50.0,
        f_max: float = 14000.0,
        return_waveform: bool = False,
        resample_input: bool = True,
        padding_value: float = 0.0,
        **kwargs,
    ):
        if length_policy not in _LENGTH_POLICIES:
            raise ValueError(f"length_policy must be one of {_LENGTH_POLICIES}, got {length_policy!r}.")
        kwargs["feature_size"] = num_mel_bins  # derived; a saved config also carries it
        super().__init__(sampling_rate=sampling_rate, padding_value=padding_value, resample_input=resample_input, **kwargs)
        self.num_segments = num_segments
        self.segment_seconds = segment_seconds
        self.tile_repeats = tile_repeats
        self.length_policy = length_policy
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.num_mel_bins = num_mel_bins
        self.f_min = f_min
        self.f_max = f_max
        self.return_waveform = return_waveform
        # Robustness fix: unchecked before (tile_repeats=0 or segment_seconds=0 failed inside torch).
        for name in ("num_segments", "tile_repeats", "n_fft", "hop_length", "num_mel_bins"):
            check_setting(self, name, getattr(self, name), minimum=1, integer=True)
        check_setting(self, "segment_seconds", segment_seconds, minimum=0, exclusive=True)
        if int(sampling_rate * segment_seconds) < 1:
            raise ValueError(f"DgSctFeatureExtractor.segment_seconds ({segment_seconds}) is shorter than one sample.")
        check_setting(self, "win_length", win_length, minimum=1, integer=True, optional=True)
        if win_length is not None and win_length > n_fft:
            raise ValueError(f"DgSctFeatureExtractor.win_length ({win_length}) must be <= n_fft ({n_fft}).")
        check_setting(self, "f_min", f_min, minimum=0)
        check_setting(self, "f_max", f_max, minimum=f_min, exclusive=True)

    def tile_segments(self, wave: torch.Tensor) -> torch.Tensor:
        """Mono ``[N]`` -> ``[num_segments, tile_repeats * segment_samples]`` after the length policy."""
        return self.segments(wave).repeat(1, self.tile_repeats)

    def segments(self, wave: torch.Tensor) -> torch.Tensor:
        """Mono ``[N]`` -> ``[num_segments, segment_samples]`` after the length policy (before tiling)."""
        segment_samples = int(self.sampling_rate * self.segment_seconds)
        total = self.num_segments * segment_samples
        if wave.shape[-1] < total:
            if self.length_policy == "loop":
                wave = wave.repeat(math.ceil(total / wave.shape[-1]))
            else:
                wave = torch.nn.functional.pad(wave, (0, total - wave.shape[-1]))
        return wave[:total].reshape(self.num_segments, segment_samples)

    def _extract(self, waveforms, return_waveform: bool | None = None):
        return_waveform = self.return_waveform if return_waveform is None else return_waveform
        segments = torch.stack([self.segments(w.mean(0) if w.shape[0] > 1 else w[0]) for w in waveforms])
        if return_waveform:
            return {"input_values": segments.repeat(1, 1, self.tile_repeats)}
        # The spectrogram of the tiled segments, each distinct frame computed once (see log_mel_spectrogram).
        log_mel = log_mel_spectrogram(
            segments,
            tile_repeats=self.tile_repeats,
            sampling_rate=self.sampling_rate,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            n_mels=self.num_mel_bins,
            f_min=self.f_min,
            f_max=self.f_max,
        )
        return {"input_values": log_mel}

    def __call__(self, raw_audio, sampling_rate=None, return_tensors=None, return_waveform: bool | None = None):
        """``input_values``: log-mel ``[B, S, frames, mels]``, or with ``return_waveform=True`` ``[B, S, samples]``."""
        return super().__call__(
            raw_audio, sampling_rate=sampling_rate, return_tensors=return_tensors, return_waveform=return_waveform
        )


class DgSctImageProcessor(LavishImageProcessor):
    r"""DG-SCT frames: identical to LAVisH's (``/255``, bicubic 192x192 without antialias, ImageNet mean/std)."""


class DgSctProcessor(SegmentedClipProcessor):
    r"""DG-SCT (AVE) processor: ``input_values`` (see :class:`DgSctFeatureExtractor`) and ``pixel_values``
    ``[B, 10, 3, 192, 192]``.

    From files: frames at 8 fps then ten by ``linspace(1, n, 10)``; audio decoded mono at 32 kHz (the
    fixture used ``ffmpeg -ac 1 -ar 32000``; the authors' own downmix is undocumented).
    """

    sub_processor_classes = {"feature_extractor": DgSctFeatureExtractor, "image_processor": DgSctImageProcessor}
    call_options = ("return_waveform",)
    audio_channels = "mono"

    def __init__(self, feature_extractor=None, image_processor=None, **kwargs):
        super().__init__(
            feature_extractor if feature_extractor is not None else DgSctFeatureExtractor(),
            image_processor if image_processor is not None else DgSctImageProcessor(),
            **kwargs,
        )

    def _audio_kwargs(self, return_waveform: bool | None = None, **unused):
        return {"return_waveform": return_waveform}
