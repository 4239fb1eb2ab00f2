"""The Swin-V2 adapter host equals Transformers' own ``Swinv2Model`` when nothing is inserted."""

import math

import pytest
import torch
from transformers import Swinv2Config, Swinv2ForImageClassification, Swinv2Model
from transformers.models.swinv2.modeling_swinv2 import Swinv2PatchMerging, window_partition

from modeling.common.swinv2_adapter_host import Swinv2AdapterHost, _window_mask_additions


def tiny_config(**overrides) -> Swinv2Config:
    # grid 8 -> 4 -> 2 -> 1 with window 4: stage 0 shifts, stage 1 clamps (4 = window, no shift), stages 2/3 clamp
    values = dict(
        image_size=32, patch_size=4, num_channels=3, embed_dim=8, depths=[2, 2, 2, 1], num_heads=[1, 2, 2, 4],
        window_size=4, drop_path_rate=0.0,
    )
    values.update(overrides)
    return Swinv2Config(**values)


def _randomize(model: torch.nn.Module, seed: int = 0) -> None:
    # fresh Swin-V2 post-norms are zero (every block would be the identity): give every tensor a random value
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
            if name.endswith("logit_scale"):
                parameter.copy_(math.log(10) + 0.3 * noise)
            else:
                parameter.add_(0.2 * noise)


def _pair(config: Swinv2Config, seed: int = 0):
    torch.manual_seed(seed)
    reference = Swinv2Model(config).eval()
    _randomize(reference, seed)
    host = Swinv2AdapterHost(config).eval()
    host.swinv2.load_state_dict(reference.state_dict())
    return reference, host


def _assert_same_outputs(reference_output, host_output):
    assert torch.equal(reference_output.last_hidden_state, host_output.last_hidden_state)
    assert torch.equal(reference_output.pooler_output, host_output.pooler_output)
    assert len(reference_output.hidden_states) == len(host_output.hidden_states)
    for expected, actual in zip(reference_output.hidden_states, host_output.hidden_states):
        assert torch.equal(expected, actual)
    for expected, actual in zip(reference_output.reshaped_hidden_states, host_output.reshaped_hidden_states):
        assert torch.equal(expected, actual)
    for expected, actual in zip(reference_output.attentions, host_output.attentions):
        assert torch.equal(expected, actual)


@pytest.mark.parametrize(
    "overrides, image_size",
    [
        ({}, 32),  # shifted windows in stage 0, window clamped to the grid later
        ({"image_size": 48, "depths": [2, 2, 2]}, 48),  # grid 12 -> 6 -> 3: 6 and 3 are not window multiples
        ({}, 40),  # other input size than configured: Transformers pads grid 10 to 12 and merges odd grids
    ],
    ids=["shifted", "clamped-odd-grids", "padding"],
)
def test_host_equals_swinv2model_exactly(overrides, image_size):
    config = tiny_config(**overrides)
    config.num_heads = config.num_heads[: len(config.depths)]
    reference, host = _pair(config)
    pixel_values = torch.randn(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(pixel_values, output_hidden_states=True, output_attentions=True)
        actual = host(pixel_values, output_hidden_states=True, output_attentions=True)
    _assert_same_outputs(expected, actual)
    # the configurations really exercise shift and padding
    first = next(host.iter_stages()).blocks[1]
    assert first.shift_size > 0 or overrides
    if image_size == 40:
        assert expected.reshaped_hidden_states[0].shape[-1] % first.window_size != 0


def test_hidden_states_before_downsampling_match_the_encoder():
    reference, host = _pair(tiny_config())
    pixel_values = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        embeddings, dims = reference.embeddings(pixel_values)
        expected = reference.encoder(
            embeddings, dims, output_hidden_states=True, output_hidden_states_before_downsampling=True
        )
        actual = host(pixel_values, output_hidden_states=True, output_hidden_states_before_downsampling=True)
    for want, got in zip(expected.hidden_states, actual.hidden_states):
        assert torch.equal(want, got)


def test_stepping_by_halves_equals_the_layer_and_stage_forward():
    """The steps adapters use (attention_half, mlp_half, downsample) equal Transformers' layer/stage forwards."""
    reference, host = _pair(tiny_config())
    hidden, dims = host.embed(torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3)))
    with torch.no_grad():
        for stage in host.iter_stages():
            expected_stage = stage.module(hidden, dims)
            for layer in stage.blocks:
                expected_layer = layer(hidden, dims)[0]
                half, _ = host.attention_half(layer, hidden, dims)
                hidden = host.mlp_half(layer, half)
                assert torch.equal(expected_layer, hidden)
            assert torch.equal(expected_stage[1], hidden)
            hidden, dims = host.downsample(stage, hidden, dims)
            assert torch.equal(expected_stage[0], hidden)
            assert dims == tuple(expected_stage[2][-2:])
    assert [stage.hidden_size for stage in host.iter_stages()] == host.stage_hidden_sizes == [8, 16, 32, 64]
    assert [stage.has_downsample for stage in host.iter_stages()] == [True, True, True, False]


def test_gradients_flow_through_the_halves_in_training_mode():
    config = tiny_config(drop_path_rate=0.1)
    host = Swinv2AdapterHost(config).train()
    hidden, dims = host.embed(torch.randn(2, 3, 32, 32))
    for stage in host.iter_stages():
        for layer in stage.blocks:
            hidden = host.mlp_half(layer, host.attention_half(layer, hidden, dims)[0])
        hidden, dims = host.downsample(stage, hidden, dims)
    host.pool(host.final_norm(hidden)).sum().backward()
    assert host.swinv2.embeddings.patch_embeddings.projection.weight.grad is not None


@pytest.mark.parametrize("folder_class", [Swinv2Model, Swinv2ForImageClassification])
def test_save_pretrained_folder_loads_unchanged(tmp_path, folder_class):
    config = tiny_config()
    torch.manual_seed(0)
    saved = folder_class(config).eval()
    _randomize(saved)
    saved.save_pretrained(tmp_path)
    host = Swinv2AdapterHost.from_pretrained(tmp_path).eval()
    backbone = saved if folder_class is Swinv2Model else saved.swinv2
    expected_state = backbone.state_dict()
    assert host.swinv2.state_dict().keys() == expected_state.keys()
    for key, value in expected_state.items():
        assert torch.equal(host.swinv2.state_dict()[key], value), key
    # the host's own names are Transformers' names under the `swinv2.` prefix (Swin-V2's base_model_prefix)
    assert set(host.state_dict()) == {f"swinv2.{key}" for key in expected_state}
    pixel_values = torch.randn(1, 3, 32, 32)
    loaded = Swinv2Model.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(loaded(pixel_values).pooler_output, host(pixel_values).pooler_output)
        # the in-memory original differs only by float rounding (the loaded tensors' memory layout differs)
        torch.testing.assert_close(
            backbone(pixel_values).pooler_output, host(pixel_values).pooler_output, rtol=0, atol=1e-5
        )


def test_timm_patch_merging_order_is_transformers_order():
    """timm 0.6 PatchMerging concatenates offsets (0,0), (1,0), (0,1), (1,1) (row, column); so does Transformers."""
    merging = Swinv2PatchMerging(input_resolution=(2, 2), dim=1)
    with torch.no_grad():
        merging.reduction.weight.copy_(torch.tensor([[1.0, 10.0, 100.0, 1000.0], [0.0, 0.0, 0.0, 0.0]]))
        merging.norm = torch.nn.Identity()
        grid = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # grid[row, column]; offsets (0,0)=1 (1,0)=3 (0,1)=2 (1,1)=4
        merged = merging(grid.reshape(1, 4, 1), (2, 2))
    assert merged[0, 0, 0].item() == 1 * 1 + 3 * 10 + 2 * 100 + 4 * 1000


def test_timm_window_mask_adds_minus_100_once():
    """With `timm_window_mask`, masked pairs get -100 in total (timm 0.6), checked against the unmasked scores."""
    config = tiny_config(depths=[2], num_heads=[1], image_size=16, patch_size=2)
    torch.manual_seed(0)
    host = Swinv2AdapterHost(config, timm_window_mask=True).double().eval()
    _randomize(host)
    layer = next(host.iter_stages()).blocks[1]
    assert layer.shift_size > 0
    with torch.no_grad():
        # a logit scale of 100 makes the leak of masked pairs visible in float64
        layer.attention.self.logit_scale.fill_(math.log(100.0))
        hidden, dims = host.embed(torch.randn(1, 3, 16, 16, dtype=torch.float64))
        _, probabilities = host.attention_half(layer, hidden, dims, output_attentions=True)
        host.timm_window_mask = False
        _, transformers_probabilities = host.attention_half(layer, hidden, dims, output_attentions=True)

        grid = torch.roll(hidden.view(1, *dims, -1), shifts=(-layer.shift_size,) * 2, dims=(1, 2))
        windows = window_partition(grid, layer.window_size).flatten(1, 2)
        unmasked = layer.attention(windows, None, output_attentions=True)[1]
        mask = layer.get_attn_mask(*dims, dtype=torch.float64)
        assert mask.min() == -100.0
        # scores = log(unmasked probabilities) + a per-row constant; timm adds the mask once
        expected = torch.softmax(torch.log(unmasked) + mask.unsqueeze(1), dim=-1)
    assert torch.allclose(probabilities, expected, rtol=1e-9, atol=1e-300)
    if _window_mask_additions() == 2:
        assert not torch.allclose(transformers_probabilities, expected, rtol=1e-9, atol=1e-300)


def test_bad_inputs_raise_clear_errors():
    host = Swinv2AdapterHost(tiny_config())
    with pytest.raises(ValueError, match="pixel_values of shape"):
        host.embed(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="exactly one"):
        Swinv2AdapterHost()
    with pytest.raises(TypeError, match="Swinv2Config"):
        Swinv2AdapterHost({"embed_dim": 8})
    layer = next(host.iter_stages()).blocks[0]
    with pytest.raises(ValueError, match="tokens for a"):
        host.attention_half(layer, torch.randn(1, 10, 8), (8, 8))
