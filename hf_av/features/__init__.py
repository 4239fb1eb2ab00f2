"""Model-agnostic signal processing: Kaldi fbank, librosa-style log-mel, resampling, frame operations.

Everything is torch, batched, and free of torchaudio / torchvision / librosa.
"""

from .frames import (
    center_crop_frames,
    linspace_frame_indices,
    middle_frame_index,
    normalize_frames,
    opencv_seek_frame_indices,
    rescale_frames,
    resize_frames,
    shorter_side_size,
    to_channels_first,
    uniform_frame_indices,
)
from .kaldi import kaldi_fbank, kaldi_frame_params, kaldi_mel_banks, kaldi_window
from .resample import resample
from .spectrogram import hz_to_mel_slaney, log_mel_spectrogram, mel_to_hz_slaney, slaney_mel_filter_bank
from .validation import check_waveform

__all__ = [
    "center_crop_frames",
    "check_waveform",
    "hz_to_mel_slaney",
    "kaldi_fbank",
    "kaldi_frame_params",
    "kaldi_mel_banks",
    "kaldi_window",
    "linspace_frame_indices",
    "log_mel_spectrogram",
    "mel_to_hz_slaney",
    "middle_frame_index",
    "normalize_frames",
    "opencv_seek_frame_indices",
    "resample",
    "rescale_frames",
    "resize_frames",
    "shorter_side_size",
    "slaney_mel_filter_bank",
    "to_channels_first",
    "uniform_frame_indices",
]
