"""DG-SCT AVS-S4 parity with the ORIGINAL code (haoyi-duan/DG-SCT @ 211fc57, `AVS/avs_scripts/avs_s4/model/
PVT_AVSModel.py` `Pred_endecoder`, `model/TPAVI.py`) on the shared fixture saved by it: a tiny model, its inputs,
intermediates and outputs (`pred`, `feature_map_list`, `a_fea_list`). fp32.

Bounds: 1e-5 on the mask logits (7.2e-6), TPAVI's audio features (<= 2.6e-6), the first DG-SCT modules and every
head part fed with the original's recorded inputs (temporal attention 6e-8, TPAVI 3.6e-7). The end-to-end
`feature_map_list` (values up to 2.1, mean |x| 0.33-0.44) differs by 3.1e-6 / 1.2e-5 / 1.6e-5 / 3.3e-5 per stage, and
following the original's operation order does not bring it under 1e-5 (measured for issue 17):
* not the head's order: a literal copy of the original TPAVI (materialised (THW)^2 affinity, `theta^T phi / N` then
  `g`) is 2.7e-7 from the recorded stage-4 map on the recorded inputs, ours (`theta (phi^T g) / N`, no affinity
  matrix) 3.6e-7;
* the last bits of fp32 kernels differ between machines and thread counts: on recorded inputs even TPAVI's plain
  `Linear(128, 4)` here is 1.7e-7 from the recorded `a_fea`, and our own model's stage-4 map moves by 2.7e-5 between
  1 and 2 torch threads (oneDNN's grouped 1x1 conv in the first DG-SCT module changes by 6e-8, 7e-7 after its
  LayerNorm over 4 channels, then grows through the 22 visual blocks);
* after the encoder the stage-4 map is 5e-6 from the original's (3e-6 relative); TPAVI ends in a LayerNorm over only
  4 channels, whose spread goes down to 0.025 (median 0.23) in this tiny model, so that becomes 3.3e-5.
`test_avs_fp32_error_is_the_original_s_own` shows it is rounding: against a float64 run of the converted model,
our fp32 feature maps are as close as the original's fp32 ones (both ~1e-4 away, 3x farther than from each other)."""

import json
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from hf_av.conversion.dg_sct_tasks import dg_sct_task_key_map, load_original_dg_sct_task
from hf_av.conversion.toolkit import load_torch_checkpoint
from tests.dg_sct.original_front_end import original_log_mel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dg-sct-avs"
BOUND = 1e-5
END_TO_END_MAP_BOUND = 5e-5  # 3.3e-5 measured (2.9e-5 with one thread); see the module docstring


def _max_diff(actual, expected):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return (actual.double() - expected.double()).abs().max().item()


@pytest.fixture(scope="module")
def state_dict():
    return load_torch_checkpoint(FIXTURES / "avs_s4_tiny_state_dict.pth")


@pytest.fixture(scope="module")
def io():
    return torch.load(FIXTURES / "avs_s4_tiny_io.pt", weights_only=True)


@pytest.fixture(scope="module")
def converted():
    original_config = json.loads((FIXTURES / "config.json").read_text())
    return load_original_dg_sct_task("avs", FIXTURES / "avs_s4_tiny_state_dict.pth", original_config)


@pytest.fixture(scope="module")
def output(converted, state_dict, io):
    model, _ = converted
    with torch.no_grad():
        return model(input_values=original_log_mel(io["wave"], state_dict), pixel_values=io["imgs"], output_hidden_states=True)


def test_avs_converts_strictly(converted):
    model, report = converted
    assert report.num_source_keys == 2628
    reasons = " ".join(report.dropped_by_reason())
    assert "PVT-v2-b5" in reasons and "bicubic" in reasons
    config = model.config
    assert config.guide_resampling == "bicubic" and config.gate_before_layer_norm
    assert not config.adapter_layer_norm_before and not config.adapter_batch_norm and not config.gate_audio_adapters
    assert (config.decoder_channels, config.temporal_hidden_size, config.temporal_visual_fc_dim) == (4, 8, 8)
    assert config.fusion_stages == [0, 1, 2, 3] and config.num_segments == 5 and config.mask_size == 224


def test_avs_matches_every_recorded_output(converted, state_dict, io, output):
    model, _ = converted
    intermediates = io["intermediates"]
    log_mel = original_log_mel(io["wave"], state_dict)
    head = model.segmentation_head
    with torch.no_grad():
        folded = model.dg_sct.audio_backbone.normalize_and_fold(log_mel.flatten(0, 1).unsqueeze(1))
        assert _max_diff(folded, intermediates["htsat_patch_embed_input"]) <= BOUND
        # First audio DG-SCT module (S4 copy: bicubic guide resampling, gate before the LayerNorm).
        frames = F.interpolate(io["imgs"].flatten(0, 1), size=(192, 192), mode="bicubic", align_corners=False)
        visual_tokens, _ = model.dg_sct.visual_backbone.embed(frames)
        audio_tokens, _ = model.dg_sct.audio_backbone.embed(log_mel.flatten(0, 1).unsqueeze(1))
        audio_out, audio_map = model.dg_sct.cross_modal_blocks[0].audio_before_attention(audio_tokens, visual_tokens)
        assert _max_diff(audio_out.transpose(1, 2).unsqueeze(-1), intermediates["audio_adapter_p1_0_output"]) <= BOUND
        assert _max_diff(audio_map.unsqueeze(1), intermediates["audio_adapter_p1_0_spatial_att_maps"]) <= BOUND
        assert _max_diff(head.audio_projection(output.audio_pooler_output), intermediates["audio_linear_out"]) <= BOUND
        # Stage-4 map before the temporal attention.
        stage4 = output.visual_hidden_states[4]
        grid = head.feature_projections[3](stage4.reshape(5, 6, 6, -1)).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(7, 7), mode="bicubic", align_corners=False)
        assert _max_diff(grid, intermediates["temporal_attn_in_x4"]) <= BOUND
        # TPAVI on the original's recorded temporal-attention output.
        clip = intermediates["temporal_attn_out_x4"].view(1, 5, 4, 7, 7).transpose(1, 2)
        fused, _ = head.audio_visual_fusion["3"](clip, intermediates["temporal_attn_out_audio"].view(1, 5, -1))
        assert _max_diff(F.relu(fused.transpose(1, 2).flatten(0, 1)), io["feature_map_list"]["3"]) <= BOUND
    assert _max_diff(output.logits.flatten(0, 1).unsqueeze(1), io["pred"]) <= BOUND
    for stage in range(4):
        assert _max_diff(output.audio_features[stage], io["a_fea_list"][str(stage)]) <= BOUND
        feature_map = output.feature_maps[stage].flatten(0, 1)
        assert _max_diff(feature_map, io["feature_map_list"][str(stage)]) <= END_TO_END_MAP_BOUND, stage


def test_avs_temporal_attention_matches(converted, io, output):
    """The temporal attention from the encoder's maps: stage-4 map and audio outputs (the original's only records)."""
    model, _ = converted
    head = model.segmentation_head
    intermediates = io["intermediates"]
    with torch.no_grad():
        maps = []
        for tokens, projection, size in zip(output.visual_hidden_states[1:], head.feature_projections, [56, 28, 14, 7]):
            side = int(tokens.shape[2] ** 0.5)
            grid = projection(tokens.reshape(5, side, side, -1)).permute(0, 3, 1, 2)
            maps.append(F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False))
        maps[3] = intermediates["temporal_attn_in_x4"]
        attended, audio = head.temporal_attention(maps, intermediates["audio_linear_out"])
    assert _max_diff(attended[3], intermediates["temporal_attn_out_x4"]) <= BOUND
    assert _max_diff(audio.flatten(0, 1), intermediates["temporal_attn_out_audio"]) <= BOUND


def test_avs_fp32_error_is_the_original_s_own(converted, state_dict, io, output):
    model, _ = converted
    double_state = {k: v.double() for k, v in state_dict.items() if v.is_floating_point()}
    exact_model = type(model)(model.config).double().eval()
    exact_model.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in model.state_dict().items()})
    with torch.no_grad():
        exact = exact_model(input_values=original_log_mel(io["wave"].double(), double_state), pixel_values=io["imgs"].double())
    for stage in range(4):
        reference = exact.feature_maps[stage].flatten(0, 1)
        ours = _max_diff(output.feature_maps[stage].flatten(0, 1), reference)
        original = _max_diff(io["feature_map_list"][str(stage)], reference)
        assert ours <= 1.1 * original, (stage, ours, original)


def test_avs_key_map_drops_the_unused_parts(state_dict):
    _, report = dg_sct_task_key_map("avs").convert(state_dict)
    dropped = [key for keys in report.dropped_by_reason().values() for key in keys]
    assert any(key.startswith("encoder_backbone.") for key in dropped)
    assert any(key.endswith("conv_adapter.weight") for key in dropped)
    assert not any(key.startswith("x1_linear_.") for key in dropped)
