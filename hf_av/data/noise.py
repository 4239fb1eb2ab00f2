"""Background-noise mixing for log-mel training features (an augmentation; not part of the originals' recipes).

Noise recordings are turned into log-mel power once, with the feature extractor's own settings; during training a
random segment of a few of them is summed and mixed into an example at a random signal-to-noise ratio. The mixing
is done in the power domain, ``log(P_speech + g * P_noise)``: uncorrelated sounds add in power, so this matches
mixing the waveforms up to the cross terms, which average out over a mel band. It needs no waveform and no fbank
recomputation, so it works on preprocessed (cached) features.

The SNR is the ratio of the example's mean frame power over its active frames (within ``active_range_db`` of its
loudest frame) to the noise's mean power over the same frames -- the usual "speech over the active span" rule.
Padding rows (the feature extractor's zero fbank rows after the end of the audio) stay untouched.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import torch

__all__ = ["AUDIO_EXTENSIONS", "BackgroundNoiseMixing", "parse_range"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac")


def parse_range(text: str, what: str) -> Tuple[float, float]:
    """``"-6,14"`` -> ``(-6.0, 14.0)`` (a single number gives a fixed value); errors name ``what``."""
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what} must be 'low,high' (numbers), got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or values[0] > values[1] or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{what} must be 'low,high' with low <= high, got {text!r}")
    return values[0], values[1]


def _expand(paths: Sequence[str]) -> List[str]:
    files: List[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(AUDIO_EXTENSIONS))
            if not found:
                raise ValueError(f"background noise folder {path} holds no audio files ({', '.join(AUDIO_EXTENSIONS)})")
            files.extend(found)
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise FileNotFoundError(f"background noise file or folder not found: {path}")
    return files


@dataclass
class BackgroundNoiseMixing:
    """Mix background noise into normalised log-mel features ``[T, F]`` at a random SNR.

    Args:
        noise_log_power: one tensor ``[T_i, F]`` per noise recording: natural-log mel power, un-normalised (as the
            feature extractor computes it before ``(x - mean) / std``).
        mean, std: the feature extractor's normalisation (identity: 0 and 1).
        snr_db: the SNR is drawn uniformly from this range (dB).
        probability: share of examples that get noise (the rest pass unchanged).
        num_sources: recordings summed per example (a babble of several talkers); at most the bank's size.
        source_gain: amplitude gain of each summed recording, drawn uniformly from this range.
        active_range_db: frames within this many dB of the loudest frame count as the signal's active span.

    Draws come from torch's global generator, so a resumed Trainer run draws the same noise (see
    ``hf_av.data.augment``).
    """

    noise_log_power: Sequence[torch.Tensor]
    mean: float = 0.0
    std: float = 1.0
    snr_db: Tuple[float, float] = (-6.0, 14.0)
    probability: float = 0.5
    num_sources: int = 3
    source_gain: Tuple[float, float] = (0.6, 1.0)
    active_range_db: float = 30.0
    _power: List[torch.Tensor] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self):
        if not self.noise_log_power:
            raise ValueError("BackgroundNoiseMixing needs at least one noise recording")
        widths = {tuple(t.shape[1:]) for t in self.noise_log_power}
        if any(t.dim() != 2 or t.shape[0] < 1 for t in self.noise_log_power) or len(widths) != 1:
            raise ValueError(
                "noise_log_power must be non-empty [frames, mel_bins] tensors of one width, got shapes "
                f"{[tuple(t.shape) for t in self.noise_log_power]}"
            )
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"background noise probability must be in [0, 1], got {self.probability}")
        if not self.std > 0:
            raise ValueError(f"std must be > 0, got {self.std}")
        if self.num_sources < 1:
            raise ValueError(f"num_sources must be >= 1, got {self.num_sources}")
        for name in ("snr_db", "source_gain"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name} must be (low, high) with low <= high, got {getattr(self, name)}")
        if self.source_gain[0] < 0:
            raise ValueError(f"source_gain must be >= 0, got {self.source_gain}")
        self._power = [t.detach().double().exp() for t in self.noise_log_power]

    @property
    def num_mel_bins(self) -> int:
        return int(self.noise_log_power[0].shape[1])

    @classmethod
    def from_files(cls, paths, feature_extractor, **kwargs) -> "BackgroundNoiseMixing":
        """Noise bank from audio files or folders of them, in ``feature_extractor``'s log-mel domain.

        ``feature_extractor`` must make normalised natural-log fbank like ``CavMaeFeatureExtractor`` (attributes
        ``num_mel_bins``, ``mean``, ``std``, ``do_normalize``, ``sampling_rate``, ``frame_length``, ``frame_shift`` in
        ms); ``kwargs`` go to the class.
        """
        from hf_av.media import load_audio

        needed = ("num_mel_bins", "mean", "std", "do_normalize", "sampling_rate", "target_length", "frame_length",
                  "frame_shift")
        missing = [name for name in needed if not hasattr(feature_extractor, name)]
        if missing:
            raise ValueError(
                f"background noise mixing works on log-mel fbank features (CAV-MAE's feature extractor); "
                f"{type(feature_extractor).__name__} lacks {', '.join(missing)}"
            )
        if isinstance(paths, str):
            paths = [p for p in paths.split(",") if p.strip()]
        files = _expand(list(paths))
        if not files:
            raise ValueError("no background noise files given")
        settings = {**feature_extractor.to_dict(), "do_normalize": False}
        settings.pop("feature_extractor_type", None)
        settings.pop("processor_class", None)
        bank = []
        for path in files:
            audio, rate = load_audio(path, sampling_rate=feature_extractor.sampling_rate, name=path)
            # every real frame of the recording (no padding rows, which are not noise)
            window = int(rate * feature_extractor.frame_length / 1000)
            shift = int(rate * feature_extractor.frame_shift / 1000)
            frames = 1 + (audio.shape[-1] - window) // shift
            if frames < 1:
                raise ValueError(f"background noise file {path} is too short ({audio.shape[-1]} samples)")
            extractor = type(feature_extractor)(**{**settings, "target_length": frames})
            bank.append(extractor(audio, sampling_rate=rate, return_tensors="pt")["input_values"][0])
        mean, std = (feature_extractor.mean, feature_extractor.std) if feature_extractor.do_normalize else (0.0, 1.0)
        return cls(bank, mean=float(mean), std=float(std), **kwargs)

    def _noise(self, frames: int) -> torch.Tensor:
        """Power ``[frames, F]``: random segments of ``num_sources`` distinct recordings, each with a random gain."""
        count = min(self.num_sources, len(self._power))
        noise = torch.zeros(frames, self.num_mel_bins, dtype=torch.float64)
        for index in torch.randperm(len(self._power))[:count].tolist():
            track = self._power[index]
            if track.shape[0] < frames:  # loop a short recording
                track = track.repeat(frames // track.shape[0] + 1, 1)
            start = int(torch.randint(0, track.shape[0] - frames + 1, ()))
            gain = float(torch.empty(()).uniform_(*self.source_gain))
            noise += track[start:start + frames] * gain**2
        return noise

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        """``features`` ``[T, F]`` normalised log-mel -> the same with noise (or unchanged, see ``probability``)."""
        if features.dim() != 2 or features.shape[1] != self.num_mel_bins:
            raise ValueError(
                f"background noise of {self.num_mel_bins} mel bins needs features [frames, {self.num_mel_bins}], "
                f"got {tuple(features.shape)}"
            )
        if float(torch.rand(())) >= self.probability:
            return features
        log_power = features.double() * self.std + self.mean
        padding = (log_power.abs().amax(dim=-1) < 1e-5)  # zero fbank rows appended by the feature extractor
        power = log_power.exp()
        frame_power = power.sum(dim=-1)
        signal_frames = ~padding
        if not bool(signal_frames.any()):
            return features
        loudest = frame_power[signal_frames].max()
        active = signal_frames & (frame_power >= loudest * 10 ** (-self.active_range_db / 10))
        noise = self._noise(features.shape[0])
        noise_power = noise[active].sum(dim=-1).mean()
        if not bool(noise_power > 0):
            return features
        snr_db = float(torch.empty(()).uniform_(*self.snr_db))
        scale = frame_power[active].mean() / (noise_power * 10 ** (snr_db / 10))
        mixed = torch.where(padding[:, None], log_power, torch.log(power + noise * scale))
        return ((mixed - self.mean) / self.std).to(features.dtype)
