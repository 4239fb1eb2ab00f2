"""The original HTS-AT front-end (torchlibrosa 0.1.0 `Spectrogram` + `LogmelFilterBank`, as run inside the original
DG-SCT models) recomputed from the STFT / mel weights saved in an original checkpoint, so task-fixture parity tests
feed the model exactly the log-mel the original computed (the task fixtures record only the folded spectrogram image
after the model's batch norm, which the tests then compare)."""

import torch
from torch.nn import functional as F


def original_log_mel(wave: torch.Tensor, state_dict: dict, prefix: str = "htsat.", hop_length: int = 320):
    """`wave` `[batch, segments, samples]` -> log-mel `[batch, segments, frames, mel_bins]` (dB, amin 1e-10, ref 1,
    no top_db), as the original: reflect-padded conv STFT (center=True), power, Slaney mel matrix, 10 log10."""
    real = state_dict[prefix + "spectrogram_extractor.stft.conv_real.weight"]
    imag = state_dict[prefix + "spectrogram_extractor.stft.conv_imag.weight"]
    mel = state_dict[prefix + "logmel_extractor.melW"]
    n_fft = real.shape[-1]
    batch, segments, samples = wave.shape
    signal = F.pad(wave.reshape(batch * segments, 1, samples), (n_fft // 2, n_fft // 2), mode="reflect")
    power = F.conv1d(signal, real, stride=hop_length) ** 2 + F.conv1d(signal, imag, stride=hop_length) ** 2
    mel_power = torch.matmul(power.transpose(1, 2), mel)  # [B', frames, mel_bins]
    log_mel = 10.0 * torch.log10(torch.clamp(mel_power, min=1e-10))
    return log_mel.reshape(batch, segments, *log_mel.shape[1:])
