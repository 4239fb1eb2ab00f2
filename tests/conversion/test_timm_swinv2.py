"""timm-0.6 Swin-V2 -> Transformers Swinv2Model key map: coverage of the original key lists and numeric parity."""

import re
from pathlib import Path

import pytest
import torch
from transformers import Swinv2Config, Swinv2Model

from hf_av.conversion.timm_swinv2 import swinv2_config_kwargs, timm_swinv2_key_map
from hf_av.errors import CheckpointConversionError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "timm-swinv2"

# timm SwinTransformerV2 kwargs of the backbones whose key lists are stored (from the fixtures' config.json and
# research/lavish.md: the released models use swinv2_large_window12_192_22k).
LAVISH_TINY = dict(img_size=32, patch_size=2, window_size=4, embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8])
DG_SCT_TINY = dict(img_size=32, patch_size=2, embed_dim=4, depths=[2, 2, 18, 2], num_heads=[1, 2, 2, 4], window_size=4)
SWINV2_LARGE_192 = dict(img_size=192, patch_size=4, window_size=12, embed_dim=192, depths=[2, 2, 18, 2],
                        num_heads=[6, 12, 24, 48])


def _key_list(name):
    """``{key: zeros of the recorded shape}`` from a ``key TAB shape`` list written from the original state dict."""
    shapes = {}
    for line in (FIXTURES / name).read_text().splitlines():
        key, shape = line.split("\t")[:2]
        shapes[key] = tuple(int(size) for size in re.findall(r"\d+", shape))
    return shapes


@pytest.mark.parametrize(
    "key_list, timm_kwargs",
    [
        ("lavish_swin_keys.txt", LAVISH_TINY),
        ("dg_sct_swin_keys.txt", DG_SCT_TINY),
        ("lavish_full_size_swin_keys.txt", SWINV2_LARGE_192),
        ("dg_sct_full_size_swin_keys.txt", SWINV2_LARGE_192),
    ],
)
def test_every_original_backbone_key_is_accounted_for(key_list, timm_kwargs):
    shapes = _key_list(key_list)
    with torch.device("meta"):  # shapes only: the full-size model is never allocated
        model = Swinv2Model(Swinv2Config(**swinv2_config_kwargs(**timm_kwargs)))
        source = {key: torch.empty(shape) for key, shape in shapes.items()}
    converted, report = timm_swinv2_key_map("swin.", "backbone.").convert(
        source, expected={f"backbone.{k}": v for k, v in model.state_dict().items()}
    )
    reasons = report.dropped_by_reason()
    assert sorted(sum(reasons.values(), [])) == sorted(k for k in shapes if k.endswith("attn_mask") or ".head." in k)
    num_blocks = sum(timm_kwargs["depths"])
    # qkv.weight becomes three keys; everything else one to one.
    assert report.num_target_keys == len(shapes) - len(report.dropped) + 2 * num_blocks == len(converted)


def test_qkv_split_and_bias_placement():
    source = {
        "layers.0.blocks.0.attn.qkv.weight": torch.arange(12.0).reshape(6, 2),
        "layers.0.blocks.0.attn.q_bias": torch.tensor([1.0, 2.0]),
        "layers.0.blocks.0.attn.v_bias": torch.tensor([5.0, 6.0]),
    }
    converted, _ = timm_swinv2_key_map().convert(source)
    prefix = "encoder.layers.0.blocks.0.attention.self."
    torch.testing.assert_close(converted[prefix + "query.weight"], source["layers.0.blocks.0.attn.qkv.weight"][:2])
    torch.testing.assert_close(converted[prefix + "key.weight"], source["layers.0.blocks.0.attn.qkv.weight"][2:4])
    torch.testing.assert_close(converted[prefix + "value.weight"], source["layers.0.blocks.0.attn.qkv.weight"][4:])
    torch.testing.assert_close(converted[prefix + "query.bias"], source["layers.0.blocks.0.attn.q_bias"])
    torch.testing.assert_close(converted[prefix + "value.bias"], source["layers.0.blocks.0.attn.v_bias"])
    assert prefix + "key.bias" not in converted


def test_other_keys_and_configs_are_rejected():
    unknown = "neither mapped nor deliberately dropped: swin.layers.0.blocks.0.attn.qkv.bias"
    with pytest.raises(CheckpointConversionError, match=unknown):
        timm_swinv2_key_map("swin.").convert({"swin.layers.0.blocks.0.attn.qkv.bias": torch.ones(3)})
    with pytest.raises(ValueError, match="ape=True"):
        swinv2_config_kwargs(ape=True)
    with pytest.raises(ValueError, match="unknown timm SwinTransformerV2 argument.*'frozen_stages'"):
        swinv2_config_kwargs(frozen_stages=2)


def _timm_fixture(name):
    """Tiny Swin-V2 backbones run by the original timm 0.6.7 code (see make_timm_swinv2_fixture.py there)."""
    return torch.load(FIXTURES / f"timm067_swinv2_{name}.pt", weights_only=True)


def _converted_model(fixture, **config_overrides):
    config = Swinv2Config(**{**swinv2_config_kwargs(**fixture["timm_kwargs"]), **config_overrides})
    model = Swinv2Model(config).eval()
    converted, _ = timm_swinv2_key_map().convert(fixture["state_dict"], expected=model.state_dict())
    model.load_state_dict(converted, strict=True)
    return model


@pytest.mark.parametrize("name", ["lavish_tiny", "pretrained_windows"])
def test_mapped_weights_reproduce_timm_outputs(name):
    fixture = _timm_fixture(name)
    recorded = fixture["outputs"]
    model = _converted_model(fixture)
    pixel_values = fixture["pixel_values"]
    with torch.no_grad():
        outputs = model(pixel_values, output_hidden_states=True)
        # Swinv2Model.forward does not pass this flag on; the encoder returns each stage before patch merging.
        embeddings, dimensions = model.embeddings(pixel_values)
        before_merging = model.encoder(
            embeddings, dimensions, output_hidden_states=True, output_hidden_states_before_downsampling=True
        ).hidden_states
    torch.testing.assert_close(outputs.hidden_states[0], recorded["embeddings"], rtol=0, atol=1e-6)
    for stage in range(4):
        # Stage features reach |x| ~ 3; float32 differences of the two attention implementations stay below these.
        torch.testing.assert_close(
            before_merging[stage + 1], recorded[f"stage{stage}.before_downsample"], rtol=0, atol=3e-5
        )
        torch.testing.assert_close(
            outputs.hidden_states[stage + 1], recorded[f"stage{stage}.after_downsample"], rtol=0, atol=1e-5
        )
    torch.testing.assert_close(outputs.last_hidden_state, recorded["final_norm"], rtol=0, atol=1e-5)


def test_pretrained_window_sizes_are_a_needed_config_switch():
    # With the pretrained window sizes dropped from the config the position bias differs: parity needs them.
    fixture = _timm_fixture("pretrained_windows")
    model = _converted_model(fixture, pretrained_window_sizes=[0, 0, 0, 0])
    with torch.no_grad():
        found = model(fixture["pixel_values"]).last_hidden_state
    assert (found - fixture["outputs"]["final_norm"]).abs().max() > 1e-2
