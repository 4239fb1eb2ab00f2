"""DG-SCT AVQA parity with the ORIGINAL code (haoyi-duan/DG-SCT @ 211fc57, `AVQA/net_grd_avst/net_avst.py`
`AVQA_Fusion_Net`) on the shared fixture saved by it: a tiny model (its 4 release-size shape literals generalised, see
the fixture README), its inputs, intermediates and the 3 outputs. fp32; bound stated per comparison."""

import json
from pathlib import Path

import pytest
import torch

from hf_av.conversion.dg_sct_tasks import dg_sct_task_key_map, load_original_dg_sct_task
from hf_av.conversion.toolkit import load_torch_checkpoint
from hf_av.errors import CheckpointConversionError
from tests.dg_sct.original_front_end import original_log_mel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dg-sct-avqa"
BOUND = 1e-5  # fp32 max abs diff, every recorded tensor


def _max_diff(actual, expected):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return (actual.double() - expected.double()).abs().max().item()


@pytest.fixture(scope="module")
def state_dict():
    return load_torch_checkpoint(FIXTURES / "avqa_tiny_state_dict.pth")  # strips DataParallel's `module.`


@pytest.fixture(scope="module")
def io():
    return torch.load(FIXTURES / "avqa_tiny_io.pt", weights_only=True)


@pytest.fixture(scope="module")
def converted(state_dict):
    original_config = json.loads((FIXTURES / "config.json").read_text())
    return load_original_dg_sct_task("avqa", FIXTURES / "avqa_tiny_state_dict.pth", original_config)


def test_avqa_converts_strictly(converted):
    model, report = converted
    assert report.num_source_keys == 1946  # every key of the DataParallel state dict mapped or dropped with a reason
    reasons = " ".join(report.dropped_by_reason())
    assert "never used" in reasons
    config = model.config
    assert (config.num_latent_tokens, config.latent_token_init, config.adapter_batch_norm) == (2, "zeros", False)
    assert config.gate_audio_adapters is False and model.dg_sct.cross_modal_blocks[0].audio_before_attention.gate is None
    assert (config.question_vocab_size, config.question_embedding_size, config.question_hidden_size) == (93, 12, 10)
    assert config.match_hidden_sizes == [24, 16, 8] and config.num_labels == 42


def test_avqa_matches_every_recorded_output(converted, state_dict, io):
    model, _ = converted
    intermediates = io["intermediates"]
    log_mel = original_log_mel(io["audio"], state_dict)
    with torch.no_grad():
        audio_backbone = model.dg_sct.audio_backbone
        folded = audio_backbone.normalize_and_fold(log_mel.flatten(0, 1).unsqueeze(1))
        assert _max_diff(folded, intermediates["htsat_patch_embed_input"]) <= BOUND
        # The first DG-SCT module of each direction (original conv layout [B', C, N, 1]).
        visual_tokens, _ = model.dg_sct.visual_backbone.embed(io["visual_posi"].flatten(0, 1))
        audio_tokens, _ = audio_backbone.embed(log_mel.flatten(0, 1).unsqueeze(1))
        first = model.dg_sct.cross_modal_blocks[0]
        audio_out, audio_map = first.audio_before_attention(audio_tokens, visual_tokens)
        visual_out, visual_map = first.visual_before_attention(visual_tokens, audio_tokens)
        assert _max_diff(audio_out.transpose(1, 2).unsqueeze(-1), intermediates["audio_adapter_p1_0_output"]) <= BOUND
        assert _max_diff(visual_out.transpose(1, 2).unsqueeze(-1), intermediates["vis_adapter_p1_0_output"]) <= BOUND
        assert _max_diff(audio_map.unsqueeze(1), intermediates["audio_adapter_p1_0_spatial_att_maps"]) <= BOUND
        assert _max_diff(visual_map.unsqueeze(1), intermediates["vis_adapter_p1_0_spatial_att_maps"]) <= BOUND
        output = model(
            input_values=log_mel,
            pixel_values=io["visual_posi"],
            input_ids=io["question"],
            negative_pixel_values=io["visual_nega"],
            output_hidden_states=True,
        )
    assert _max_diff(output.visual_hidden_states[-1].flatten(0, 1), intermediates["swin_norm_out_adapted"]) <= BOUND
    assert _max_diff(output.audio_pooler_output, intermediates["pooled_audio"]) <= BOUND
    assert _max_diff(output.question_embeds, intermediates["qst_feature"]) <= BOUND
    assert _max_diff(output.logits, io["out_qa"]) <= BOUND
    assert _max_diff(output.match_logits.flatten(0, 1), io["out_match_posi"]) <= BOUND
    assert _max_diff(output.negative_match_logits.flatten(0, 1), io["out_match_nega"]) <= BOUND


def test_avqa_key_map_rejects_unknown_keys(state_dict):
    broken = dict(state_dict)
    broken["fc_unknown.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointConversionError, match="fc_unknown"):
        dg_sct_task_key_map("avqa").convert(broken)


def test_avqa_rejects_a_non_dg_sct_checkpoint():
    with pytest.raises(CheckpointConversionError, match="swin"):
        load_original_dg_sct_task("avqa", {"fc_ans.weight": torch.zeros(42, 4)})


def test_question_json_must_match_the_checkpoint(tmp_path):
    from hf_av.conversion.dg_sct_tasks import convert_dg_sct_task_checkpoint

    samples = [{"question_content": "Is the <Object> playing?", "templ_values": "['piano']", "anser": "yes"}]
    question_json = tmp_path / "avqa-train.json"
    question_json.write_text(json.dumps(samples))
    with pytest.raises(CheckpointConversionError, match="gives 5 question words and 1 answers; the checkpoint has 93 and 42"):
        convert_dg_sct_task_checkpoint(
            "avqa", FIXTURES / "avqa_tiny_state_dict.pth", tmp_path / "out", FIXTURES / "config.json",
            question_json=question_json,
        )
    assert not (tmp_path / "out").exists()
