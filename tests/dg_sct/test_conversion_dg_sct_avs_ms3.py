"""DG-SCT AVSBench MS3 (`AVS/avs_scripts/avs_ms3`, haoyi-duan/DG-SCT @ 211fc57).

No output recorded by the original MS3 code exists (the shared fixture is S4), so MS3 is checked in parts:

(a) the MS3 setting with the S4 switches set reproduces the recorded S4 outputs (the settings share everything
    else);
(b) every DG-SCT module of a converted MS3-layout checkpoint equals a reference of the MS3 `VisualAdapter` written
    here from the original source (`avs_ms3/model/PVT_AVSModel.py` lines 180-302, the multimodal bottleneck branch),
    on random inputs: <= 1e-12 in float64, <= 1e-5 in fp32 (1.2e-6 measured);
(c) that checkpoint is the S4 fixture with every (unused, 1x1) `conv_adapter` replaced by a random full-size one
    (S4 and MS3 checkpoints have the same keys), and it converts strictly;
(d) the MS3 temporal attention gate scale (`opt.gamma` 0.1, `PVT_AVSModel.py` line 438) and the MS3 loss
    (`avs_ms3/loss.py` lines 7-20, 23-73 and 133-166 with train.sh's `--masked_av_flag --lambda_1 0.5 --kl_flag`
    and `--masked_av_stages 0 1 2 3`) against references written from the source.
"""

import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from hf_av.conversion.dg_sct_tasks import (
    convert_dg_sct_task_checkpoint,
    dg_sct_task_config_from_original,
    load_original_dg_sct_task,
)
from hf_av.conversion.toolkit import load_torch_checkpoint
from modeling.dg_sct import DgSctForAudioVisualSegmentation, DgSctSegmentationConfig
from tests.dg_sct.original_front_end import original_log_mel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dg-sct-avs"
BOUND = 1e-5
MODULE_BOUND = 1e-6
S4_SWITCHES = {"guide_resampling": "bicubic", "channel_attention_weight": 0.3, "spatial_attention_weight": 0.05,
               "temporal_gate_scale": 0.05}


def _max_diff(actual, expected):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return (actual.double() - expected.double()).abs().max().item()


@pytest.fixture(scope="module")
def original_config():
    return json.loads((FIXTURES / "config.json").read_text())


@pytest.fixture(scope="module")
def s4_state_dict():
    return load_torch_checkpoint(FIXTURES / "avs_s4_tiny_state_dict.pth")


def _module_names(index: int, original: str, part: str) -> str:
    modality = {"audio": "audio", "vis": "visual"}[original]
    position = {"p1": "attention", "p2": "mlp"}[part]
    return f"cross_modal_blocks.{index}.{modality}_before_{position}"


@pytest.fixture(scope="module")
def ms3_state_dict(original_config, s4_state_dict):
    """The S4 fixture in the MS3 layout: every `conv_adapter` (the S4 fixture's are 1x1 stand-ins, never called by
    S4) becomes a random Conv2d(N_other, N_self, 1), as the MS3 original builds and calls it."""
    config = dg_sct_task_config_from_original("avs-ms3", original_config, s4_state_dict)
    expected = DgSctForAudioVisualSegmentation(config).state_dict()
    generator = torch.Generator().manual_seed(17)
    state_dict = dict(s4_state_dict)
    replaced = 0
    for key in s4_state_dict:
        if not key.endswith("conv_adapter.weight"):
            continue
        original, rest = key.split("_adapter_blocks_")
        part, index = rest.split(".")[:2]
        rows, columns = expected[f"dg_sct.{_module_names(int(index), original, part)}.token_projection.weight"].shape
        state_dict[key] = torch.randn(rows, columns, 1, 1, generator=generator) / columns**0.5
        state_dict[key.replace(".weight", ".bias")] = 0.1 * torch.randn(rows, generator=generator)
        replaced += 1
    assert replaced == 4 * len(expected_blocks(config))
    return state_dict


def expected_blocks(config):
    return [None] * sum(config.audio_config.depths)


@pytest.fixture(scope="module")
def ms3_converted(original_config, ms3_state_dict):
    return load_original_dg_sct_task("avs-ms3", ms3_state_dict, original_config)


# ---- (a) the MS3 setting with the S4 switches is S4 -------------------------------------------------------------
def test_ms3_setting_with_the_s4_switches_reproduces_the_recorded_s4_outputs(original_config, s4_state_dict):
    s4_model, _ = load_original_dg_sct_task("avs", s4_state_dict, original_config)
    ms3_config = dg_sct_task_config_from_original("avs-ms3", original_config, s4_state_dict)
    switched = DgSctSegmentationConfig.from_dict({**ms3_config.to_dict(), **S4_SWITCHES})
    assert switched.avs_setting == "ms3"
    ignore = {"avs_setting", "matching_loss_weight", "trainable_parameters", "transformers_version"}
    s4_dict, switched_dict = s4_model.config.to_dict(), switched.to_dict()
    assert {k: v for k, v in switched_dict.items() if k not in ignore} == {
        k: v for k, v in s4_dict.items() if k not in ignore
    }
    model = DgSctForAudioVisualSegmentation(switched).eval()
    model.load_state_dict(s4_model.state_dict(), strict=True)
    io = torch.load(FIXTURES / "avs_s4_tiny_io.pt", weights_only=True)
    with torch.no_grad():
        output = model(input_values=original_log_mel(io["wave"], s4_state_dict), pixel_values=io["imgs"])
    assert _max_diff(output.logits.flatten(0, 1).unsqueeze(1), io["pred"]) <= BOUND
    for stage in range(4):
        assert _max_diff(output.audio_features[stage], io["a_fea_list"][str(stage)]) <= BOUND


# ---- (b) + (c) MS3 DG-SCT modules against the original MS3 VisualAdapter --------------------------------------------
def original_ms3_visual_adapter(params: dict, x: torch.Tensor, vis_token: torch.Tensor, groups: int):
    """The MS3 `VisualAdapter.forward(x, vis_token)` (`adapter_kind="bottleneck"`, `is_multimodal=1`, `is_bn=0`),
    written from `avs_ms3/model/PVT_AVSModel.py` lines 180-302 with the original's tensor layouts: `x` (B', C, N, 1)
    own tokens, `vis_token` (B', C_o, N_o, 1) the other modality; `params` under the original names. Returns
    (output (B', C, N, 1), spatial_att_maps (B', 1, N))."""

    def linear(name, tensor):
        return F.linear(tensor, params[name + ".weight"], params[name + ".bias"])

    # lines 181-183: conv_adapter over the token axis, then fc over channels
    vis_token = F.conv2d(vis_token.transpose(2, 1), params["conv_adapter.weight"], params["conv_adapter.bias"])
    vis_token = linear("fc", vis_token.squeeze(-1))
    vis_token = vis_token.permute(0, 2, 1).unsqueeze(-1)
    # lines 199-210: latent tokens
    rep_token = params["my_tokens"].unsqueeze(0).repeat(x.size(0), 1, 1)
    att_v2tk = torch.softmax(torch.bmm(rep_token, vis_token.squeeze(-1)), dim=-1)
    rep_token = rep_token + torch.bmm(att_v2tk, vis_token.squeeze(-1).permute(0, 2, 1))
    att_tk2x = torch.softmax(torch.bmm(x.squeeze(-1).permute(0, 2, 1), rep_token.permute(0, 2, 1)), dim=-1)
    x_res = torch.bmm(att_tk2x, rep_token).permute(0, 2, 1).unsqueeze(-1)
    x = x + params["gate_av"] * x_res.contiguous()
    # lines 213-220: channel attention
    audio = vis_token.mean(dim=2).squeeze(-1)
    audio_query_1 = F.relu(linear("fc_affine_audio_1", audio)).unsqueeze(-2)
    video_query_1 = F.relu(linear("fc_affine_video_1", x.squeeze(-1).permute(0, 2, 1)))
    audio_video_query = F.relu(linear("fc_affine_bottleneck", (audio_query_1 * video_query_1).mean(-2)))
    channel_att_maps = torch.sigmoid(linear("fc_affine_v_c_att", audio_video_query)).reshape(x.size(0), 1, -1)
    c_att_visual_feat = x.squeeze(-1).permute(0, 2, 1) * (channel_att_maps + 1)
    # lines 223-231: spatial attention
    c_att_visual_query = F.relu(linear("fc_affine_video_2", c_att_visual_feat))
    audio_query_2 = F.relu(linear("fc_affine_audio_2", audio)).unsqueeze(-2)
    spatial_att_maps_tmp = linear("fc_affine_v_s_att", c_att_visual_query * audio_query_2)
    spatial_att_maps_sigmoid = spatial_att_maps_tmp.transpose(2, 1).sigmoid().transpose(2, 1)
    spatial_att_maps = torch.softmax(torch.tanh(spatial_att_maps_tmp).transpose(2, 1), dim=-1)
    # lines 244-246: MS3's alpha, beta
    alpha, beta = 0.2, 0.1
    x = x.squeeze(-1).permute(0, 2, 1) * (alpha * channel_att_maps + beta * spatial_att_maps_sigmoid + 1 - alpha)
    x = x.permute(0, 2, 1).unsqueeze(-1)
    # lines 260-268 (no ln_before in this branch, no BN), then 293-298: gate, then ln_post
    z = F.relu(F.conv2d(x, params["down_sampler.weight"], groups=groups))
    output = F.conv2d(z, params["up_sampler.weight"], groups=groups)
    if "gate" in params:
        output = params["gate"] * output
    normalized = F.layer_norm(
        output.squeeze(-1).permute(0, 2, 1), (output.shape[1],), params["ln_post.weight"], params["ln_post.bias"]
    )
    return normalized.permute(0, 2, 1).unsqueeze(-1), spatial_att_maps


def test_ms3_checkpoint_converts_strictly(ms3_converted, ms3_state_dict):
    model, report = ms3_converted
    assert report.num_source_keys == len(ms3_state_dict) == 2628
    config = model.config
    assert config.avs_setting == "ms3" and config.guide_resampling == "linear"
    settings = (config.channel_attention_weight, config.spatial_attention_weight, config.temporal_gate_scale)
    assert settings == (0.2, 0.1, 0.1)
    assert config.matching_loss_weight == 0.5 and config.matching_loss_stages == [0, 1, 2, 3]
    # sizes still come from the tensors (the tiny fixture's bottleneck reduction is 2, like the MS3 release)
    assert config.adapter_reduction_factor == 2 and config.num_latent_tokens == 4
    dropped = [key for keys in report.dropped_by_reason().values() for key in keys]
    assert not any("conv_adapter" in key for key in dropped)
    assert any(key.endswith("temporal_gated.0.weight") for key in dropped)
    assert any(key.endswith("ln_before.weight") for key in dropped)
    weights = model.state_dict()
    for key, value in ms3_state_dict.items():
        if key.endswith("conv_adapter.weight"):
            original, rest = key.split("_adapter_blocks_")
            part, index = rest.split(".")[:2]
            target = f"dg_sct.{_module_names(int(index), original, part)}.token_projection"
            assert torch.equal(weights[target + ".weight"], value[:, :, 0, 0])
            assert torch.equal(weights[target + ".bias"], ms3_state_dict[key.replace(".weight", ".bias")])


@pytest.mark.parametrize("index", range(10))  # every paired block of the tiny model (stages 0, 1, 1, 2 x 6, 3)
@pytest.mark.parametrize("original,part", [("audio", "p1"), ("vis", "p1"), ("audio", "p2"), ("vis", "p2")])
def test_ms3_dg_sct_modules_match_the_original_ms3_visual_adapter(ms3_converted, ms3_state_dict, original, part, index):
    """float64: the same function (<= 1e-12); fp32: <= 1e-5 (1.2e-6 measured over the 40 modules: the port mixes
    tokens with a Linear, the original with a 1x1 Conv2d, and the LayerNorms end over 4-8 channels)."""
    model, _ = ms3_converted
    module = model.dg_sct.get_submodule(_module_names(index, original, part))
    prefix = f"{original}_adapter_blocks_{part}.{index}."
    params = {key[len(prefix):]: value for key, value in ms3_state_dict.items() if key.startswith(prefix)}
    assert ("gate" in params) == (original == "vis")  # is_gate 0: audio-side modules ungated, visual always gated
    own_tokens, other_tokens = module.token_projection.weight.shape
    width, other_width = module.channel_projection.weight.shape
    generator = torch.Generator().manual_seed(100 + index)
    own = torch.randn(3, width, own_tokens, 1, generator=generator, dtype=torch.float64)
    other = torch.randn(3, other_width, other_tokens, 1, generator=generator, dtype=torch.float64)
    groups = model.config.adapter_conv_groups
    exact_module = copy.deepcopy(module).double()
    for dtype, bound, ported in ((torch.float64, 1e-12, exact_module), (torch.float32, BOUND, module)):
        inputs = (own.to(dtype), other.to(dtype))
        with torch.no_grad():
            expected, expected_map = original_ms3_visual_adapter(
                {key: value.to(dtype) for key, value in params.items()}, *inputs, groups=groups
            )
            output, attention_map = ported(*(tensor.squeeze(-1).transpose(1, 2) for tensor in inputs))
        assert _max_diff(output.transpose(1, 2).unsqueeze(-1), expected) <= bound, dtype
        assert _max_diff(attention_map.unsqueeze(1), expected_map) <= bound, dtype
    assert expected.abs().max() > 1e-2  # the modules are active (perturbed gates)


def test_ms3_folder_round_trip(ms3_state_dict, original_config, tmp_path):
    from hf_av.conversion.dg_sct import convert_dg_sct_checkpoint

    checkpoint = tmp_path / "MS3_best.pth"
    torch.save(ms3_state_dict, checkpoint)
    folder = convert_dg_sct_checkpoint(checkpoint, tmp_path / "out", original_config, original_model="avs-ms3")
    reloaded = DgSctForAudioVisualSegmentation.from_pretrained(folder)
    assert reloaded.config.avs_setting == "ms3" and reloaded.config.guide_resampling == "linear"
    card = (folder / "README.md").read_text()
    assert "MS3 multiple sources" in card and "53.5" in card
    assert convert_dg_sct_task_checkpoint  # the task converter behind original_model="avs-ms3"


# ---- (d) temporal attention gate scale and the MS3 loss -----------------------------------------------------------
def test_ms3_temporal_attention_scales_the_gates_by_gamma(ms3_converted):
    model, _ = ms3_converted
    head = model.segmentation_head
    assert head.temporal_attention.gate_scale == 0.1
    io = torch.load(FIXTURES / "avs_s4_tiny_io.pt", weights_only=True)
    generator = torch.Generator().manual_seed(5)
    maps = [torch.randn(5, 4, s, s, generator=generator) for s in (56, 28, 14, 7)]
    audio = io["intermediates"]["audio_linear_out"]
    with torch.no_grad():
        attended, new_audio = head.temporal_attention(maps, audio)
        head.temporal_attention.gate_scale = 1.0  # gamma 1 exposes the gates themselves
        try:
            ungated, gated_audio = head.temporal_attention(maps, audio)
        finally:
            head.temporal_attention.gate_scale = 0.1
    # MS3 lines 561-567: x + gate * x * gamma (gate * x is what gamma = 1 adds)
    for feature_map, ours, unit in zip(maps, attended, ungated):
        assert _max_diff(ours, feature_map + 0.1 * (unit - feature_map)) <= MODULE_BOUND
    assert _max_diff(new_audio, audio + 0.1 * (gated_audio - audio)) <= MODULE_BOUND


def original_ms3_loss(pred_masks, gt_masks, a_fea_list, v_map_list, stages, lambda_1=0.5):
    """`avs_ms3/loss.py` `IouSemanticAwareLoss` as train.py calls it with train.sh's flags: F5_IoU_BCELoss (lines
    7-20) + lambda_1 * A_MaskedV_SimmLoss (lines 23-73; mask_pooling 'avg', norm_fea False (train.py passes
    `--norm_fea_flag`, off), threshold False, kl_flag True)."""
    total = nn.BCELoss()(torch.sigmoid(pred_masks), gt_masks)
    sa = 0
    for stage in stages:
        a_fea, v_map = a_fea_list[stage], v_map_list[stage]
        a_fea = a_fea.view(-1, a_fea.shape[-1])
        height, width = v_map.shape[-2], v_map.shape[-1]
        masks = torch.sigmoid(nn.AdaptiveAvgPool2d((height, width))(pred_masks))
        masked_v_fea = torch.mul(v_map, masks).mean(-1).mean(-1)
        sa = sa + F.kl_div(masked_v_fea.softmax(dim=-1).log(), a_fea.softmax(dim=-1), reduction="sum")
    return total + lambda_1 * sa / len(stages)


def test_ms3_loss_matches_the_original_loss(ms3_converted):
    model, _ = ms3_converted
    generator = torch.Generator().manual_seed(11)
    batch = 2
    logits = torch.randn(batch, 5, 224, 224, generator=generator)
    masks = (torch.rand(batch, 5, 224, 224, generator=generator) > 0.7).float()
    feature_maps = tuple(F.relu(torch.randn(batch, 5, 4, s, s, generator=generator)) for s in (56, 28, 14, 7))
    audio_features = tuple(torch.randn(batch, 5, 4, generator=generator) for _ in range(4))
    loss = model.compute_loss(masks, logits, feature_maps, audio_features)
    expected = original_ms3_loss(
        logits.flatten(0, 1).unsqueeze(1), masks.flatten(0, 1).unsqueeze(1),
        list(audio_features), [m.flatten(0, 1) for m in feature_maps], [0, 1, 2, 3],
    )
    assert abs(loss.item() - expected.item()) <= 1e-6 * max(1.0, abs(expected.item()))
    matching = model.compute_matching_loss(logits, feature_maps, audio_features)
    assert matching.item() > 0
    s4 = DgSctSegmentationConfig.from_dict({**model.config.to_dict(), "avs_setting": "s4", "matching_loss_weight": 0.0})
    assert s4.matching_loss_weight == 0.0


def test_ms3_forward_loss_adds_the_matching_term_and_trains(ms3_converted, s4_state_dict):
    model, _ = ms3_converted
    io = torch.load(FIXTURES / "avs_s4_tiny_io.pt", weights_only=True)
    inputs = {"input_values": original_log_mel(io["wave"], s4_state_dict), "pixel_values": io["imgs"]}
    masks = torch.zeros(1, 5, 224, 224)
    masks[:, :, 60:150, 40:120] = 1
    with torch.no_grad():
        output = model(**inputs, labels=masks)
    bce = F.binary_cross_entropy_with_logits(output.logits, masks)
    matching = model.compute_matching_loss(output.logits, output.feature_maps, output.audio_features)
    assert _max_diff(output.loss, bce + 0.5 * matching) <= MODULE_BOUND
    assert matching.item() > 0


def test_unknown_avs_setting_and_misplaced_matching_stages_are_rejected():
    with pytest.raises(ValueError, match=r"avs_setting must be one of \['ms3', 's4'\], got 'ms4'"):
        DgSctSegmentationConfig(avs_setting="ms4")
    with pytest.raises(ValueError, match="matching_loss_stages"):
        DgSctSegmentationConfig(avs_setting="ms3", fusion_stages=[2, 3], matching_loss_stages=[0])
    ms3 = DgSctSegmentationConfig(avs_setting="ms3", channel_attention_weight=0.4)
    assert ms3.channel_attention_weight == 0.4 and ms3.spatial_attention_weight == 0.1  # explicit values win
    assert ms3.adapter_reduction_factor == 2
    assert ms3.trainable_parameters == ["*cross_modal_blocks.*", "segmentation_head.*"]  # HTS-AT frozen
    s4 = DgSctSegmentationConfig()
    assert (s4.guide_resampling, s4.adapter_reduction_factor, s4.temporal_gate_scale) == ("bicubic", 8, 0.05)


def test_a_few_ms3_training_steps_lower_its_loss():
    """Five masks per clip and the matching loss, on a tiny random model; only `trainable_parameters` train
    (MS3: the DG-SCT modules and the head; both backbones frozen)."""
    from modeling.common.trainable import freeze_except
    from tests.dg_sct.test_modeling_dg_sct_tasks import SEGMENTS, backbone_inputs, backbone_kwargs

    torch.manual_seed(0)
    config = DgSctSegmentationConfig(
        **{**backbone_kwargs(), "num_segments": SEGMENTS}, avs_setting="ms3", decoder_channels=4,
        feature_map_sizes=[8, 4, 2, 1], audio_feature_size=8, temporal_visual_fc_dim=4, mask_head_sizes=[4, 4],
    )
    assert config.adapter_reduction_factor == 2 and config.matching_loss_weight == 0.5
    model = DgSctForAudioVisualSegmentation(config)
    freeze_except(model, config.trainable_parameters)
    assert not any(p.requires_grad for n, p in model.named_parameters() if "audio_backbone" in n)
    inputs = backbone_inputs(2)
    masks = torch.zeros(2, SEGMENTS, config.mask_size, config.mask_size)
    masks[:, :, 6:20, 8:26] = 1

    def evaluate():
        model.eval()
        with torch.no_grad():
            output = model(**inputs, labels=masks)
        matching = model.compute_matching_loss(output.logits, output.feature_maps, output.audio_features)
        return output.loss.item(), matching.item()

    before, matching_before = evaluate()
    assert matching_before > 0  # the matching term is part of the loss
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(8):
        optimizer.zero_grad()
        model(**inputs, labels=masks).loss.backward()
        optimizer.step()
        model.train()
    after, _ = evaluate()
    assert after < before, (before, after)
