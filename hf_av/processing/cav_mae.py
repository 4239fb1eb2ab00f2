"""CAV-MAE preprocessing: the original ``src/dataloader.py`` (eval mode) plus its extraction scripts."""

from __future__ import annotations

import torch

from ..features.frames import middle_frame_index, opencv_seek_frame_indices
from ..features.kaldi import kaldi_fbank_padded, thread_independent_mean
from .base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AudioVisualProcessor,
    FrameImageProcessor,
    WaveformFeatureExtractor,
    check_setting,
)

__all__ = ["CavMaeFeatureExtractor", "CavMaeImageProcessor", "CavMaeProcessor"]


class CavMaeFeatureExtractor(WaveformFeatureExtractor):
    r"""Normalised Kaldi fbank ``[B, target_length, num_mel_bins]`` as CAV-MAE's ``_wav2fbank`` + ``__getitem__``.

    Per clip: keep channel ``channel`` (the extraction's ``sox remix 1`` keeps the first channel, no downmix),
    subtract the waveform mean, Kaldi fbank (Hann window, 25 ms / 10 ms, 128 bins, htk_compat, no energy,
    no dither), zero-pad at the end or keep the first ``target_length`` frames, then ``(x - mean) / std``
    (padding rows therefore become ``-mean / std``).

    Args:
        sampling_rate (`int`, *optional*, defaults to 16000): rate the model expects; other rates are resampled.
        num_mel_bins (`int`, *optional*, defaults to 128): mel bins (the model's frequency axis).
        target_length (`int`, *optional*, defaults to 1024): frames per clip after padding/cutting (10.24 s).
        frame_length (`float`, *optional*, defaults to 25.0): Kaldi window length in ms.
        frame_shift (`float`, *optional*, defaults to 10.0): Kaldi hop in ms.
        window_type (`str`, *optional*, defaults to `"hanning"`): Kaldi window.
        mean (`float`, *optional*, defaults to -5.081): dataset mean of the log-mel (AudioSet/VGGSound).
        std (`float`, *optional*, defaults to 4.4849): dataset std (plain std, not AST's 2*std).
        do_normalize (`bool`, *optional*, defaults to `True`): apply ``(x - mean) / std``.
        subtract_waveform_mean (`bool`, *optional*, defaults to `True`): remove the clip's DC before the fbank.
        channel (`int`, *optional*, defaults to 0): channel used from multi-channel input.
        frequency_mask (`int`, *optional*, defaults to 0): SpecAugment max frequency-mask width (training only;
            the released finetuning recipes use 48).
        time_mask (`int`, *optional*, defaults to 0): SpecAugment max time-mask width (training only; 192).
        add_noise (`bool`, *optional*, defaults to `False`): the original's training noise + random time roll.
        resample_input (`bool`, *optional*, defaults to `True`): resample other rates instead of refusing them.
    """

    model_input_names = ["input_values"]

    def __init__(
        self,
        sampling_rate: int = 16000,
        num_mel_bins: int = 128,
        target_length: int = 1024,
        frame_length: float = 25.0,
        frame_shift: float = 10.0,
        window_type: str = "hanning",
        mean: float = -5.081,
        std: float = 4.4849,
        do_normalize: bool = True,
        subtract_waveform_mean: bool = True,
        channel: int = 0,
        frequency_mask: int = 0,
        time_mask: int = 0,
        add_noise: bool = False,
        resample_input: bool = True,
        padding_value: float = 0.0,
        **kwargs,
    ):
        kwargs["feature_size"] = num_mel_bins  # derived; a saved config also carries it
        super().__init__(sampling_rate=sampling_rate, padding_value=padding_value, resample_input=resample_input, **kwargs)
        self.num_mel_bins = num_mel_bins
        self.target_length = target_length
        self.frame_length = frame_length
        self.frame_shift = frame_shift
        self.window_type = window_type
        self.mean = mean
        self.std = std
        self.do_normalize = do_normalize
        self.subtract_waveform_mean = subtract_waveform_mean
        self.channel = channel
        self.frequency_mask = frequency_mask
        self.time_mask = time_mask
        self.add_noise = add_noise
        # Robustness fix: these were unchecked (target_length=-1 gave empty features, std=0 gave inf).
        for name in ("num_mel_bins", "target_length"):
            check_setting(self, name, getattr(self, name), minimum=1, integer=True)
        for name in ("frame_length", "frame_shift", "std"):
            check_setting(self, name, getattr(self, name), minimum=0, exclusive=True)
        check_setting(self, "mean", mean)
        for name in ("channel", "frequency_mask", "time_mask"):
            check_setting(self, name, getattr(self, name), minimum=0, integer=True)
        check_setting(self, "window_type", window_type, choices=("hanning", "hamming", "povey", "rectangular", "blackman"))

    def _extract(self, waveforms, training: bool = False, generator: torch.Generator | None = None):
        signals = []
        for index, waveform in enumerate(waveforms):
            if self.channel >= waveform.shape[0]:
                raise ValueError(f"audio[{index}] has {waveform.shape[0]} channel(s); channel={self.channel} requested.")
            signal = waveform[self.channel]
            signals.append(signal - thread_independent_mean(signal) if self.subtract_waveform_mean else signal)
        # SpecAugment masks with zeros before the normalisation; without it the fbank pass normalises directly.
        augment = training and bool(self.frequency_mask or self.time_mask)
        normalize_in_pass = self.do_normalize and not augment
        padding_value = 0.0
        if normalize_in_pass:  # zero rows normalised, in the same float32 roundings as the computed rows
            padding_value = float((torch.zeros((), dtype=torch.float32) - self.mean) / self.std)
        features = kaldi_fbank_padded(
            signals,
            self.target_length,
            normalize=(self.mean, self.std) if normalize_in_pass else None,
            padding_value=padding_value,
            sample_frequency=self.sampling_rate,
            num_mel_bins=self.num_mel_bins,
            frame_length=self.frame_length,
            frame_shift=self.frame_shift,
            window_type=self.window_type,
            htk_compat=True,
            use_energy=False,
            dither=0.0,
        )
        if augment:
            features = _spec_augment(features, self.frequency_mask, self.time_mask, generator)
            if self.do_normalize:
                features = (features - self.mean) / self.std
        if training and self.add_noise:
            features = _noise_and_roll(features, generator)
        return {"input_values": features}

    def __call__(self, raw_audio, sampling_rate=None, return_tensors=None, training: bool = False, generator=None):
        """``input_values`` ``[B, target_length, num_mel_bins]``.

        ``training=True`` applies the configured SpecAugment / noise (random, drawn from ``generator``).
        """
        return super().__call__(
            raw_audio, sampling_rate=sampling_rate, return_tensors=return_tensors, training=training, generator=generator
        )


def _spec_augment(features: torch.Tensor, frequency_mask: int, time_mask: int, generator) -> torch.Tensor:
    """One frequency and one time mask per clip, zero-filled, before normalisation (torchaudio masking rule)."""
    features = features.clone()
    for clip in features:
        for axis, mask_param in ((1, frequency_mask), (0, time_mask)):
            if mask_param <= 0:
                continue
            width = torch.rand(1, generator=generator).item() * mask_param
            start = torch.rand(1, generator=generator).item() * (clip.shape[axis] - width)
            begin, end = int(start), int(start) + int(width)
            if axis == 0:
                clip[begin:end] = 0.0
            else:
                clip[:, begin:end] = 0.0
    return features


def _noise_and_roll(features: torch.Tensor, generator) -> torch.Tensor:
    """The original training noise: ``x + U(0,1)[T,F] * U(0,1) / 10`` then a random roll along time."""
    outputs = []
    for clip in features:
        scale = torch.rand(1, generator=generator).item()
        clip = clip + torch.rand(clip.shape, generator=generator) * scale / 10
        shift = int(torch.randint(-clip.shape[0], clip.shape[0], (1,), generator=generator))
        outputs.append(torch.roll(clip, shift, 0))
    return torch.stack(outputs)


class CavMaeImageProcessor(FrameImageProcessor):
    r"""CAV-MAE frames: shorter side -> 224 (bilinear, antialiased, as PIL at extraction), centre crop 224,
    ``/255``, ImageNet mean/std. Output ``[B, 3, 224, 224]`` (``[B, T, 3, 224, 224]`` for frame sequences).

    The original stores the resized frames as JPEG (quality 75) and its loader then resizes bicubic to 224
    (a no-op on 224x224 files). The JPEG round trip is not reproduced: from raw frames the result differs
    from the original by JPEG noise; from the stored JPEGs it is bit-exact.

    Args: see :class:`~hf_av.processing.base.FrameImageProcessor` (defaults: ``size={"shortest_edge": 224}``,
    ``interpolation="bilinear"``, ``antialias=True``, ``do_center_crop=True``, ``crop_size=224x224``).
    """

    size = {"shortest_edge": 224}
    interpolation = "bilinear"
    antialias = True
    do_center_crop = True
    crop_size = {"height": 224, "width": 224}
    image_mean = IMAGENET_MEAN
    image_std = IMAGENET_STD


class CavMaeProcessor(AudioVisualProcessor):
    r"""CAV-MAE processor: ``input_values`` (normalised fbank) and ``pixel_values`` (one frame per clip).

    From files it reproduces the extraction: audio decoded at 16 kHz keeping the first channel; ten frames
    at ``int(i * total / 10)`` with ``total = min(frame_count, int(fps * 10))``, read the way the OpenCV
    script reads them (frame ``max(idx - 1, 0)``). ``frame_index`` picks which of the ten is returned:
    ``None`` = 5 (the evaluation default, ``frame_use=-1``), an int in 0..9, or ``"all"`` for the ten frames
    ``[B, 10, 3, 224, 224]`` (the multi-frame evaluation averages predictions over them).

    Missing modalities: ``modalities=`` chooses what is read from files. ``"audio-visual"`` (default) needs both and
    names the file that lacks one; ``"audio"`` decodes only the audio track (``input_values`` only); ``"visual"``
    only the frames (``pixel_values`` only); ``"available"`` returns whatever the files have (every file of one call
    must have the same modalities). Given one modality, the model picks the original's mode from its config.
    """

    sub_processor_classes = {"feature_extractor": CavMaeFeatureExtractor, "image_processor": CavMaeImageProcessor}
    call_options = ("frame_index",)
    single_frame_per_clip = True
    num_frames = 10

    def __init__(self, feature_extractor=None, image_processor=None, **kwargs):
        super().__init__(
            feature_extractor if feature_extractor is not None else CavMaeFeatureExtractor(),
            image_processor if image_processor is not None else CavMaeImageProcessor(),
            **kwargs,
        )

    def _frame_positions(self, frame_index) -> list[int]:
        if frame_index is None:
            return [middle_frame_index(self.num_frames)]
        if frame_index == "all":
            return list(range(self.num_frames))
        if isinstance(frame_index, int) and -self.num_frames <= frame_index < self.num_frames:
            return [frame_index % self.num_frames]
        raise ValueError(f"frame_index must be None, 'all' or an int in 0..{self.num_frames - 1}, got {frame_index!r}.")

    def _media_decode_kwargs(self, frame_index=None, modalities="audio-visual", **unused):
        positions = self._frame_positions(frame_index)

        def select(info):
            num_frames = info.num_frames
            if num_frames is None and info.duration and info.fps:
                num_frames = int(info.duration * info.fps)
            if not num_frames or not info.fps:
                raise ValueError("CAV-MAE frame sampling needs the video's frame count and frame rate.")
            indices = opencv_seek_frame_indices(num_frames, info.fps, self.num_frames)
            return [indices[p] for p in positions]

        return {
            "frame_indices": select,
            "sampling_rate": self.feature_extractor.sampling_rate,
            "audio_channels": "first",
            **self._modality_decode_flags(modalities),
        }

    def _pixel_values_from_images(self, images, frame_index=None, **unused):
        return self.image_processor(images, return_tensors="pt")["pixel_values"]
