import math

import pytest
import torch

from hf_av.features import resample


def _tone(freq, rate, seconds=1.0):
    return torch.sin(2 * math.pi * freq * torch.arange(int(rate * seconds), dtype=torch.float64) / rate).float()


@pytest.mark.parametrize("orig,new", [(48000, 16000), (44100, 16000), (16000, 32000), (22050, 32000)])
def test_tone_preserved(orig, new):
    out = resample(_tone(440, orig), orig, new)
    assert out.shape[-1] == math.ceil(orig * new / orig)
    edge = 300  # filter start-up at the borders
    assert (out[edge:-edge] - _tone(440, new)[edge:-edge]).abs().max() < 2e-3


def test_anti_aliasing():
    # 12 kHz is above the 8 kHz Nyquist of 16 kHz: must be removed, not folded to 4 kHz.
    out = resample(_tone(12000, 48000), 48000, 16000)
    assert out[300:-300].pow(2).mean().sqrt() < 5e-3


def test_batched_and_identity():
    x = torch.randn(2, 3, 4410, generator=torch.Generator().manual_seed(0))
    out = resample(x, 44100, 16000)
    assert out.shape == (2, 3, 1600)
    assert torch.allclose(out[1, 2], resample(x[1, 2], 44100, 16000), atol=1e-6)
    assert resample(x, 16000, 16000) is x
    with pytest.raises(ValueError):
        resample(x, 0, 16000)
