"""DG-SCT AVVP parity with the ORIGINAL code (haoyi-duan/DG-SCT @ 211fc57, `AVVP/nets/mgn.py` `MGN_Net` and
`AVVP/nets/grouping.py`) on the shared fixture saved by it: a tiny model, its inputs, intermediates and the 7 outputs
(class-token logits, global / audio / visual probabilities, audio / visual frame probabilities). fp32."""

import json
from pathlib import Path

import pytest
import torch

from hf_av.conversion.dg_sct_tasks import dg_sct_task_key_map, load_original_dg_sct_task
from hf_av.conversion.toolkit import load_torch_checkpoint
from hf_av.errors import CheckpointConversionError
from tests.dg_sct.original_front_end import original_log_mel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dg-sct-avvp"
BOUND = 1e-5  # fp32 max abs diff, every recorded tensor

OUTPUTS = {  # original output name -> DgSctVideoParsingOutput field
    "aud_cls_prob": "audio_class_token_logits",
    "vis_cls_prob": "visual_class_token_logits",
    "global_prob": "global_probs",
    "a_prob": "audio_probs",
    "v_prob": "visual_probs",
    "a_frame_prob": "audio_frame_probs",
    "v_frame_prob": "visual_frame_probs",
}


def _max_diff(actual, expected):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return (actual.double() - expected.double()).abs().max().item()


@pytest.fixture(scope="module")
def state_dict():
    return load_torch_checkpoint(FIXTURES / "avvp_tiny_state_dict.pth")


@pytest.fixture(scope="module")
def io():
    return torch.load(FIXTURES / "avvp_tiny_io.pt", weights_only=True)


@pytest.fixture(scope="module")
def converted():
    original_config = json.loads((FIXTURES / "config.json").read_text())
    return load_original_dg_sct_task("avvp", FIXTURES / "avvp_tiny_state_dict.pth", original_config)


def test_avvp_converts_strictly(converted):
    model, report = converted
    assert report.num_source_keys == 3060
    assert any("temporal gate" in reason for reason in report.dropped_by_reason())
    config = model.config
    assert (config.parsing_hidden_size, config.temporal_hidden_size, config.num_labels) == (16, 8, 25)
    assert (config.audio_grouping_depth, config.visual_grouping_depth, config.audio_visual_grouping_depth) == (3, 3, 6)
    assert config.adapter_batch_norm and config.gate_audio_adapters and config.num_latent_tokens == 4


def test_avvp_matches_every_recorded_output(converted, state_dict, io):
    model, _ = converted
    intermediates = io["intermediates"]
    log_mel = original_log_mel(io["audio"], state_dict)
    head = model.parsing_head
    with torch.no_grad():
        folded = model.dg_sct.audio_backbone.normalize_and_fold(log_mel.flatten(0, 1).unsqueeze(1))
        assert _max_diff(folded, intermediates["htsat_patch_embed_input"]) <= BOUND
        visual_tokens, _ = model.dg_sct.visual_backbone.embed(io["visual"].flatten(0, 1))
        assert _max_diff(visual_tokens, intermediates["swin_patch_embed_output"]) <= BOUND
        audio_tokens, _ = model.dg_sct.audio_backbone.embed(log_mel.flatten(0, 1).unsqueeze(1))
        first = model.dg_sct.cross_modal_blocks[0]
        audio_out, audio_map = first.audio_before_attention(audio_tokens, visual_tokens)
        visual_out, visual_map = first.visual_before_attention(visual_tokens, audio_tokens)
        assert _max_diff(audio_out.transpose(1, 2).unsqueeze(-1), intermediates["audio_adapter_p1_0_output"]) <= BOUND
        assert _max_diff(visual_out.transpose(1, 2).unsqueeze(-1), intermediates["vis_adapter_p1_0_output"]) <= BOUND
        assert _max_diff(audio_map.unsqueeze(1), intermediates["audio_adapter_p1_0_spatial_att_maps"]) <= BOUND
        assert _max_diff(visual_map.unsqueeze(1), intermediates["vis_adapter_p1_0_spatial_att_maps"]) <= BOUND

        output = model(input_values=log_mel, pixel_values=io["visual"], clip_features=io["visual_st"])
        assert _max_diff(output.visual_pooler_output, intermediates["pooled_visual"]) <= BOUND
        assert _max_diff(output.audio_pooler_output, intermediates["pooled_audio"]) <= BOUND

        # Head parts, each from the original's own recorded inputs.
        audio = head.audio_projection(intermediates["pooled_audio"])
        visual, audio_attended = head.temporal_attention(head.visual_projection(intermediates["pooled_visual"]), audio)
        assert _max_diff(visual, intermediates["temporal_attn_out_visual"]) <= BOUND
        assert _max_diff(audio_attended, intermediates["temporal_attn_out_audio"]) <= BOUND
        fused = head.fusion(torch.cat([intermediates["temporal_attn_out_visual"], head.clip_projection(io["visual_st"])], -1))
        assert _max_diff(fused, intermediates["fc_fusion_out"]) <= BOUND
        groups, assignment, soft = head.visual_grouping(intermediates["fc_fusion_out"], head.visual_class_tokens)
        assert _max_diff(groups, intermediates["visual_cug_x"]) <= BOUND
        assert _max_diff(soft, intermediates["visual_cug_attn_soft"].squeeze(1)) <= BOUND
        assert _max_diff(assignment, intermediates["visual_cug_attn_hard"].squeeze(1)) <= BOUND
        groups, assignment, soft = head.audio_grouping(audio, head.audio_class_tokens, intermediates["fc_fusion_out"])
        assert _max_diff(groups, intermediates["audio_cug_x"]) <= BOUND
        assert _max_diff(soft, intermediates["audio_cug_attn_soft"].squeeze(1)) <= BOUND
        assert _max_diff(assignment, intermediates["audio_cug_attn_hard"].squeeze(1)) <= BOUND
        joint = head.audio_visual_grouping(intermediates["audio_cug_x"], intermediates["visual_cug_x"])[0]
        assert _max_diff(joint, intermediates["av_mcg_x"]) <= BOUND
    for original, field in OUTPUTS.items():
        assert _max_diff(getattr(output, field), io[original]) <= BOUND, original


def test_avvp_key_map_rejects_unknown_keys(state_dict):
    broken = dict(state_dict)
    broken["audio_cug.unknown.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointConversionError, match="audio_cug.unknown"):
        dg_sct_task_key_map("avvp").convert(broken)


def test_script_converts_with_task_and_the_folder_reloads(tmp_path, converted, state_dict, io):
    """`convert_dg_sct_original_to_hf.py --task avvp`: safetensors + config + processor + card; reloads equal."""
    import runpy

    from modeling.dg_sct import DgSctForAudioVisualVideoParsing

    script = Path(__file__).resolve().parents[2] / "conversion_scripts" / "convert_dg_sct_original_to_hf.py"
    output_dir = tmp_path / "avvp"
    main = runpy.run_path(str(script))["main"]
    code = main([
        "--task", "avvp", "--checkpoint", str(FIXTURES / "avvp_tiny_state_dict.pth"), "--output-dir", str(output_dir),
        "--original-config", str(FIXTURES / "config.json"),
    ])
    assert code == 0
    assert (output_dir / "model.safetensors").exists() and (output_dir / "README.md").exists()
    assert "52.8" in (output_dir / "README.md").read_text()  # the paper's segment-level AV F-score
    assert any(output_dir.glob("*processor_config.json"))  # the DG-SCT processor settings
    reloaded = DgSctForAudioVisualVideoParsing.from_pretrained(output_dir).eval()
    model, _ = converted
    inputs = {
        "input_values": original_log_mel(io["audio"][:1], state_dict),
        "pixel_values": io["visual"][:1],
        "clip_features": io["visual_st"][:1],
    }
    with torch.no_grad():  # 1e-6: MKL kernels depend on the tensors' memory alignment
        assert _max_diff(reloaded(**inputs).global_probs, model(**inputs).global_probs) <= 1e-6


def test_family_converter_dispatches_the_task_and_auto_classes_load_it(tmp_path, converted, state_dict, io):
    """`hf-av convert --model dg-sct --original-model avvp` (the registry's converter) -> AutoConfig / AutoModel /
    AutoProcessor load the folder as the AVVP head."""
    import hf_av  # noqa: F401  (Auto registration)
    from transformers import AutoConfig, AutoModel, AutoProcessor

    from hf_av.conversion.dg_sct import convert_dg_sct_checkpoint
    from modeling.dg_sct import DgSctForAudioVisualVideoParsing, DgSctVideoParsingConfig

    output_dir = convert_dg_sct_checkpoint(
        FIXTURES / "avvp_tiny_state_dict.pth", tmp_path / "avvp", FIXTURES / "config.json", original_model="avvp"
    )
    assert isinstance(AutoConfig.from_pretrained(output_dir), DgSctVideoParsingConfig)
    reloaded = AutoModel.from_pretrained(output_dir).eval()
    assert isinstance(reloaded, DgSctForAudioVisualVideoParsing)
    assert AutoProcessor.from_pretrained(output_dir) is not None
    model, _ = converted
    inputs = {
        "input_values": original_log_mel(io["audio"][:1], state_dict),
        "pixel_values": io["visual"][:1],
        "clip_features": io["visual_st"][:1],
    }
    with torch.no_grad():
        assert _max_diff(reloaded(**inputs).global_probs, model(**inputs).global_probs) <= 1e-6
