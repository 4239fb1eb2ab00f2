"""The HTS-AT adapter host equals Transformers' `ClapAudioEncoder` with nothing inserted, loads `ClapAudioModel`
weights unchanged, and its original-behaviour switches do what they say."""

import pytest
import torch
from modeling.common.configuration import InvalidConfigError
from transformers import ClapAudioConfig, ClapAudioModel
from transformers.models.clap.modeling_clap import ClapAudioEncoder

from modeling.common.htsat_adapter_host import HtsatAdapterHost, HtsatConfig

# freq_ratio = 64 // 16 = 4 (the released model's fold), grids 16x16, 8x8, 4x4 with window 2 (never smaller).
TINY = dict(
    spec_size=64,
    num_mel_bins=16,
    patch_size=4,
    patch_stride=[4, 4],
    patch_embeds_hidden_size=8,
    depths=[2, 2, 2],
    num_attention_heads=[1, 2, 2],
    window_size=2,
    hidden_size=32,
    num_hidden_layers=3,
)


def _clap_config(**overrides):
    return ClapAudioConfig(**{**TINY, "hidden_dropout_prob": 0.0, **overrides})


def _host_config(**overrides):
    return HtsatConfig(**{**TINY, "clamp_window_to_resolution": False, "drop_path_on_mlp": False, **overrides})


def _randomize(module, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
        for name, buffer in module.named_buffers():
            if name.endswith("running_mean"):
                buffer.copy_(torch.randn(buffer.shape, generator=generator) * 0.1)
            elif name.endswith("running_var"):
                buffer.copy_(1 + torch.rand(buffer.shape, generator=generator))


def _features(batch=3, frames=51, mels=16, seed=1):
    return torch.randn(batch, 1, frames, mels, generator=torch.Generator().manual_seed(seed)) * 3 - 20


def test_host_equals_clap_audio_encoder_with_nothing_inserted():
    reference = ClapAudioModel(_clap_config()).eval()
    _randomize(reference)
    host = HtsatAdapterHost(_host_config()).eval()
    assert host.freq_ratio == 4
    host.load_state_dict(reference.state_dict())  # ClapAudioModel keys load unchanged (strict)
    features = _features()
    with torch.no_grad():
        expected = reference(features, output_hidden_states=True)
        actual = host(features, output_hidden_states=True)
    torch.testing.assert_close(actual.last_hidden_state, expected.last_hidden_state, rtol=0, atol=0)
    torch.testing.assert_close(actual.pooler_output, expected.pooler_output, rtol=0, atol=0)
    # The stage outputs match CLAP's (CLAP returns them as [B, C, H, W] maps).
    for mine, theirs in zip(actual.hidden_states, expected.hidden_states):
        batch, channels, height, width = theirs.shape
        torch.testing.assert_close(mine, theirs.flatten(2).transpose(1, 2), rtol=0, atol=0)


def test_state_dict_keys_are_clap_audio_model_keys():
    host = HtsatAdapterHost(_host_config())
    reference = ClapAudioModel(_clap_config())
    assert list(host.state_dict()) == list(reference.state_dict())
    # Default (original) switches do not change shapes when every stage grid is >= the window.
    original = HtsatAdapterHost(HtsatConfig(**TINY))
    assert {k: v.shape for k, v in original.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }


def test_halves_step_equals_whole_clap_layers():
    host = HtsatAdapterHost(_host_config()).eval()
    _randomize(host, seed=3)
    assert isinstance(host.audio_encoder, ClapAudioEncoder)
    tokens, dims = host.embed(_features(batch=2))
    assert dims == (16, 16)
    with torch.no_grad():
        for stage in host.iter_stages():
            for layer in stage.blocks:
                half, _ = host.attention_half(layer, tokens, dims)
                stepped = host.mlp_half(layer, half)
                (expected,) = layer(tokens, dims)  # Transformers' ClapAudioLayer, whole
                torch.testing.assert_close(stepped, expected, rtol=0, atol=0)
                tokens = stepped
            tokens, dims = host.downsample(stage, tokens, dims)
    assert tokens.shape == (2, 16, 32) and dims == (4, 4)


def test_wraps_an_existing_clap_audio_model():
    reference = ClapAudioModel(_clap_config()).eval()
    _randomize(reference, seed=4)
    host = HtsatAdapterHost(model=reference)
    assert host.audio_encoder is reference.audio_encoder
    features = _features(batch=1)
    with torch.no_grad():
        torch.testing.assert_close(host(features).pooler_output, reference(features).pooler_output, rtol=0, atol=0)
    with pytest.raises(ValueError, match="exactly one"):
        HtsatAdapterHost()


def test_clamp_window_switch_builds_the_original_small_stage_windows():
    # Window 8 on grids 16, 8, 4: the last stage is smaller than the window.
    config = dict(TINY, window_size=8)
    clamped = HtsatAdapterHost(HtsatConfig(**config))
    last_stage = list(clamped.iter_stages())[2]
    table = last_stage.blocks[0].attention.self.relative_position_bias_table
    assert table.shape == (49, 2)  # (2 * 4 - 1) ** 2 entries: the original's table for a 4x4 window
    assert last_stage.blocks[1].shift_size == 0
    unclamped = HtsatAdapterHost(HtsatConfig(**config, clamp_window_to_resolution=False))
    unclamped_table = list(unclamped.iter_stages())[2].blocks[0].attention.self.relative_position_bias_table
    assert unclamped_table.shape == (225, 2)  # CLAP's: always sized for window_size
    clamped.eval()
    with torch.no_grad():
        output = clamped(_features(batch=2))
    assert torch.isfinite(output.pooler_output).all()
    # Transformers' CLAP cannot run a stage smaller than its window; the switch is what makes it run.
    with pytest.raises(RuntimeError):
        with torch.no_grad():
            unclamped.eval()(_features(batch=2))


def test_drop_path_on_mlp_switch():
    features = _features(batch=4)

    def run(drop_path_on_mlp, seed):
        host = HtsatAdapterHost(_host_config(drop_path_rate=0.5, drop_path_on_mlp=drop_path_on_mlp))
        _randomize(host, seed=5)
        host.train()
        torch.manual_seed(seed)
        return host(features).pooler_output

    clap = ClapAudioModel(_clap_config(drop_path_rate=0.5))
    _randomize(clap, seed=5)
    clap.train()
    torch.manual_seed(7)
    expected = clap(features).pooler_output
    torch.testing.assert_close(run(False, 7), expected, rtol=0, atol=0)  # Transformers' behaviour
    assert not torch.allclose(run(True, 7), expected)  # the original also drops MLP branches


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_mel_bins": 12}, "multiple of num_mel_bins"),
        ({"num_attention_heads": [1, 2]}, "one entry per stage"),
        ({"num_attention_heads": [3, 2, 2]}, "not divisible"),
        ({"enable_fusion": True}, "enable_fusion"),
        ({"f_max": 10.0}, "f_max"),
    ],
)
def test_invalid_configs_raise_clear_errors(overrides, message):
    with pytest.raises(InvalidConfigError, match=message):
        HtsatConfig(**dict(TINY, **overrides))
