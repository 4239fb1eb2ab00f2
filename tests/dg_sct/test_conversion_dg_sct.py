"""DG-SCT parity with the ORIGINAL code (haoyi-duan/DG-SCT @ 211fc57), on the shared fixtures saved by it.

`ave_tiny_*`: a tiny `MMIL_Net` (Swin-V2 depths 2/2/18/2 so the 18-vs-6 stage-3 pairing runs; HTS-AT freq_ratio 1)
with its inputs, every recorded intermediate and its outputs. `dgsct_adapter_*`: one standalone DG-SCT module
(`VisualAdapter`) with non-square token mixing. All fp32; bounds are stated per comparison.
"""

import gzip
import json
import runpy
from pathlib import Path

import pytest
import torch

from hf_av.conversion.dg_sct import (
    convert_dg_sct_checkpoint,
    dg_sct_config_from_original,
    dg_sct_key_map,
    dg_sct_module_key_map,
    load_original_dg_sct,
)
from hf_av.conversion.toolkit import load_torch_checkpoint
from hf_av.errors import CheckpointConversionError
from hf_av.processing.dg_sct import DgSctFeatureExtractor
from modeling.dg_sct import DgSctConfig, DgSctCrossModalModule, DgSctForAudioVisualEventLocalization

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dg-sct"
ROOT = Path(__file__).resolve().parents[2]
BOUND = 1e-5  # fp32 max abs diff for everything computed by the model


@pytest.fixture(scope="module")
def original_config():
    return json.loads((FIXTURES / "config.json").read_text())


@pytest.fixture(scope="module")
def io():
    return torch.load(FIXTURES / "ave_tiny_io.pt", weights_only=True)


@pytest.fixture(scope="module")
def converted(original_config):
    model, report = load_original_dg_sct(FIXTURES / "ave_tiny_state_dict.pth", original_config)
    return model, report


def _tiny_feature_extractor(config):
    audio = config["htsat"]
    return DgSctFeatureExtractor(
        sampling_rate=32000,
        num_segments=10,
        segment_seconds=config["inputs"]["samples_per_segment"] / 32000,
        tile_repeats=1,  # the fixture feeds each 0.1-s segment untiled
        n_fft=audio["n_fft"],
        hop_length=320,
        num_mel_bins=audio["mel_bins"],
    )


def _max_diff(actual, expected):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return (actual.double() - expected.double()).abs().max().item()


def test_spectrogram_parity(original_config, io):
    """DgSctFeatureExtractor vs torchlibrosa in the original model (`htsat.logmel_extractor` output)."""
    extractor = _tiny_feature_extractor(original_config)
    clips = [clip.reshape(-1).numpy() for clip in io["wave"]]  # each clip: its 10 segments back to back
    log_mel = extractor(clips, sampling_rate=32000, return_tensors="pt")["input_values"]
    reference = io["intermediates"]["htsat_logmel"].reshape(2, 10, 11, 32)
    # The extractor's STFT is torchlibrosa's float32 DFT convolution, so it rounds as the original did: one value
    # of 7040 differs, by one float32 step (1.9e-6). (torch.stft's own rounding was 1.1e-4 dB away.)
    assert _max_diff(log_mel, reference) <= BOUND


def test_converted_model_matches_every_recorded_output(converted, io):
    model, report = converted
    assert report.num_source_keys == 2642
    intermediates = io["intermediates"]
    log_mel = intermediates["htsat_logmel"].reshape(2, 10, 11, 32)  # the original's own spectrogram
    pixels = io["image"]
    visual_backbone, audio_backbone = model.dg_sct.visual_backbone, model.dg_sct.audio_backbone
    with torch.no_grad():
        # Spectrogram image: bn0 + bicubic time stretch + fold (original `reshape_wav2img`).
        folded = audio_backbone.normalize_and_fold(intermediates["htsat_logmel"])
        assert _max_diff(folded, intermediates["htsat_patch_embed_input"]) <= BOUND
        visual_tokens, _ = visual_backbone.embed(pixels.flatten(0, 1))
        audio_tokens, _ = audio_backbone.embed(intermediates["htsat_logmel"])
        assert _max_diff(visual_tokens, intermediates["swin_patch_embed_output"]) <= BOUND
        assert _max_diff(audio_tokens, intermediates["htsat_patch_embed_output"]) <= BOUND
        # The first DG-SCT module of each direction (original conv layout [B', C, N, 1]).
        first = model.dg_sct.cross_modal_blocks[0]
        audio_out, audio_map = first.audio_before_attention(audio_tokens, visual_tokens)
        visual_out, visual_map = first.visual_before_attention(visual_tokens, audio_tokens)
        assert _max_diff(audio_out.transpose(1, 2).unsqueeze(-1), intermediates["audio_adapter_p1_0_output"]) <= BOUND
        assert _max_diff(visual_out.transpose(1, 2).unsqueeze(-1), intermediates["vis_adapter_p1_0_output"]) <= BOUND
        assert _max_diff(audio_map.unsqueeze(1), intermediates["audio_adapter_p1_0_spatial_att_maps"]) <= BOUND
        assert _max_diff(visual_map.unsqueeze(1), intermediates["vis_adapter_p1_0_spatial_att_maps"]) <= BOUND
        # AVE outputs, end to end from the original's spectrogram.
        output = model(input_values=log_mel, pixel_values=pixels, output_hidden_states=True)
        # Whole encoder: final Swin norm tokens and the attention-pooled features fed to the temporal attention.
        final_visual = output.visual_hidden_states[-1].flatten(0, 1)
        assert _max_diff(final_visual, intermediates["swin_final_norm_out"]) <= BOUND
        assert _max_diff(output.visual_pooler_output, intermediates["temporal_attn_in_visual"]) <= BOUND
        assert _max_diff(output.audio_pooler_output, intermediates["temporal_attn_in_audio"]) <= BOUND
        # Temporal attention (the original returns [segments, batch, ...]).
        visual_query, audio_query, gate = model.temporal_attention(
            intermediates["temporal_attn_in_visual"], intermediates["temporal_attn_in_audio"]
        )
        assert _max_diff(visual_query.transpose(0, 1), intermediates["temporal_attn_out_video"]) <= BOUND
        assert _max_diff(audio_query.transpose(0, 1), intermediates["temporal_attn_out_audio"]) <= BOUND
        assert _max_diff(gate.transpose(0, 1), intermediates["temporal_attn_out_gate"]) <= BOUND
    assert _max_diff(output.is_event_logits, io["is_event_scores"].squeeze(-1).T) <= BOUND
    assert _max_diff(output.logits, io["event_scores"]) <= BOUND
    assert _max_diff(output.audio_visual_gate, io["audio_visual_gate"].squeeze(-1).T) <= BOUND
    assert _max_diff(output.av_class_logits, io["av_score"]) <= BOUND


def test_end_to_end_from_waveform(converted, original_config, io):
    """Waveform -> DgSctFeatureExtractor -> model: the AVE outputs match the original's (1.6e-7 achieved)."""
    model, _ = converted
    extractor = _tiny_feature_extractor(original_config)
    log_mel = extractor([clip.reshape(-1).numpy() for clip in io["wave"]], sampling_rate=32000,
                        return_tensors="pt")["input_values"]
    with torch.no_grad():
        output = model(input_values=log_mel, pixel_values=io["image"])
    assert _max_diff(output.logits, io["event_scores"]) <= BOUND
    assert _max_diff(output.is_event_logits, io["is_event_scores"].squeeze(-1).T) <= BOUND
    assert _max_diff(output.audio_visual_gate, io["audio_visual_gate"].squeeze(-1).T) <= BOUND
    assert _max_diff(output.av_class_logits, io["av_score"]) <= BOUND
    assert output.logits.argmax(-1).tolist() == json.loads((FIXTURES / "summary.json").read_text())[
        "event_scores_argmax"
    ]


def test_standalone_dg_sct_module(original_config):
    settings, opt = original_config["adapter"], original_config["opt"]
    config = DgSctConfig(
        num_latent_tokens=opt["num_tokens"],
        adapter_reduction_factor=opt["Adapter_downsample"],
        adapter_conv_groups=opt["num_conv_group"],
    )
    module = DgSctCrossModalModule(
        config,
        width=settings["input_dim"],
        num_tokens=settings["conv_dim_out"],
        other_width=settings["linear_in"],
        other_num_tokens=settings["conv_dim_in"],
    ).eval()
    state_dict = load_torch_checkpoint(FIXTURES / "dgsct_adapter_state_dict.pth")
    converted, report = dg_sct_module_key_map().convert(state_dict, expected=module.state_dict())
    assert [key for key, _ in report.dropped] == ["gate_tk"]
    module.load_state_dict(converted, strict=True)
    data = torch.load(FIXTURES / "dgsct_adapter_io.pt", weights_only=True)
    with torch.no_grad():
        own, other = data["x"].squeeze(-1).transpose(1, 2), data["vis_token"].squeeze(-1).transpose(1, 2)
        output, attention_map = module(own, other)
    assert _max_diff(output.transpose(1, 2).unsqueeze(-1), data["output"]) <= BOUND
    assert _max_diff(attention_map.unsqueeze(1), data["spatial_att_maps"]) <= BOUND


def test_config_inferred_from_shapes_matches_the_original_config(original_config):
    state_dict = load_torch_checkpoint(FIXTURES / "ave_tiny_state_dict.pth")
    given = dg_sct_config_from_original(original_config, state_dict)
    # Without --original-config only what shapes cannot tell (image size, window sizes) must be supplied.
    partial = {"swin": {k: original_config["swin"][k] for k in ("img_size", "window_size")},
               "htsat": {k: original_config["htsat"][k]
                         for k in ("spec_size", "window_size", "patch_size", "patch_stride")}}
    inferred = dg_sct_config_from_original(partial, state_dict)
    for name in ("num_latent_tokens", "adapter_reduction_factor", "adapter_conv_groups", "temporal_hidden_size",
                 "temporal_visual_dim", "temporal_audio_dim", "temporal_intermediate_size", "num_labels"):
        assert getattr(inferred, name) == getattr(given, name), name
    assert inferred.vision_config.to_dict() == given.vision_config.to_dict()
    assert inferred.audio_config.to_dict() == given.audio_config.to_dict()
    assert given.paired_visual_blocks[2] == [2, 5, 8, 11, 14, 17]


def test_released_checkpoint_layout_maps_completely():
    """Every key of the released AVE model (shapes from instantiating the original with train.sh flags) maps onto
    `DgSctForAudioVisualEventLocalization(DgSctConfig())` with the right shape (built on the meta device)."""
    shapes = {}
    with gzip.open(FIXTURES / "released_state_dict_keys.txt.gz", "rt") as handle:
        for line in handle:
            key, shape = line.rstrip("\n").split("\t")[:2]
            shapes[key] = tuple(int(v) for v in shape.strip("()").split(",") if v.strip())
    original = {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}
    config = dg_sct_config_from_original(None, original)
    with torch.device("meta"):
        model = DgSctForAudioVisualEventLocalization(config)
    converted, report = dg_sct_key_map().convert(original, expected=model.state_dict())
    assert report.num_source_keys == 2646
    default = DgSctConfig()
    assert config.vision_config.to_dict() == default.vision_config.to_dict()
    assert config.audio_config.to_dict() == default.audio_config.to_dict()
    assert (config.num_latent_tokens, config.adapter_reduction_factor, config.num_labels) == (32, 8, 29)
    # The DG-SCT modules hold exactly the original adapters' parameters (minus the 48 unused `gate_tk`).
    buffers = ("running_mean", "running_var", "num_batches_tracked", "gate_tk")
    adapters = sum(v.numel() for k, v in original.items() if "_adapter_blocks_" in k and not k.endswith(buffers))
    modules = sum(p.numel() for n, p in model.named_parameters() if ".cross_modal_blocks." in n)
    assert modules == adapters and round(modules / 1e6, 1) == 188.5


def test_freq_ratio_4_config_through_the_same_path(original_config, tmp_path):
    """The released HTS-AT folds 4 time quarters into the frequency axis (freq_ratio 4). A config of our own with
    mel_bins 8 and spec_size 32 goes through --original-config; the fold equals the original `reshape_wav2img`."""
    config = json.loads(json.dumps(original_config))
    config["htsat"]["mel_bins"] = 8
    state_dict = load_torch_checkpoint(FIXTURES / "ave_tiny_state_dict.pth")
    for name in ("weight", "bias", "running_mean", "running_var"):
        state_dict[f"htsat.bn0.{name}"] = state_dict[f"htsat.bn0.{name}"][:8].clone()
    state_dict["htsat.logmel_extractor.melW"] = state_dict["htsat.logmel_extractor.melW"][:, :8].clone()
    checkpoint = tmp_path / "freq_ratio_4.pth"
    torch.save(state_dict, checkpoint)
    (tmp_path / "config.json").write_text(json.dumps(config))
    output_dir = tmp_path / "converted"
    script = runpy.run_path(str(ROOT / "conversion_scripts" / "convert_dg_sct_original_to_hf.py"), run_name="script")
    status = script["main"](
        ["--checkpoint", str(checkpoint), "--output-dir", str(output_dir), "--original-config",
         str(tmp_path / "config.json")]
    )
    assert status == 0
    model = DgSctForAudioVisualEventLocalization.from_pretrained(output_dir).eval()
    assert model.dg_sct.audio_backbone.freq_ratio == 4
    log_mel = torch.randn(2, 10, 11, 8, generator=torch.Generator().manual_seed(0)) * 10 - 40
    host = model.dg_sct.audio_backbone
    with torch.no_grad():
        folded = host.normalize_and_fold(log_mel.flatten(0, 1).unsqueeze(1))
        normalized = host.audio_encoder.batch_norm(log_mel.flatten(0, 1).unsqueeze(1).transpose(1, 3)).transpose(1, 3)
        stretched = torch.nn.functional.interpolate(normalized, (128, 8), mode="bicubic", align_corners=True)
        # The original: (B,1,T,F) -> (B,1,F,T) -> (B,1,F,4,T/4) -> (B,1,4,F,T/4) -> (B,1,4F,T/4)
        expected = stretched.permute(0, 1, 3, 2).reshape(20, 1, 8, 4, 32).permute(0, 1, 3, 2, 4).reshape(20, 1, 32, 32)
        assert _max_diff(folded, expected) <= BOUND
        output = model(input_values=log_mel, pixel_values=torch.randn(2, 10, 3, 32, 32))
    assert output.logits.shape == (2, 28) and torch.isfinite(output.logits).all()


def test_conversion_script_writes_a_loadable_folder(tmp_path, io):
    output_dir = tmp_path / "dg-sct-tiny"
    convert_dg_sct_checkpoint(FIXTURES / "ave_tiny_state_dict.pth", output_dir, FIXTURES / "config.json")
    assert (output_dir / "model.safetensors").is_file()
    assert (output_dir / "README.md").read_text().count("DG-SCT") >= 1
    assert (output_dir / "processor_config.json").is_file()
    model = DgSctForAudioVisualEventLocalization.from_pretrained(output_dir).eval()
    with torch.no_grad():
        log_mel = io["intermediates"]["htsat_logmel"].reshape(2, 10, 11, 32)
        output = model(input_values=log_mel, pixel_values=io["image"])
    assert _max_diff(output.logits, io["event_scores"]) <= BOUND


def test_conversion_errors_name_the_keys(tmp_path, original_config):
    state_dict = load_torch_checkpoint(FIXTURES / "ave_tiny_state_dict.pth")
    state_dict["temporal_attn.something_new.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointConversionError, match="something_new"):
        load_original_dg_sct(state_dict, original_config)
    state_dict = load_torch_checkpoint(FIXTURES / "ave_tiny_state_dict.pth")
    del state_dict["audio_adapter_blocks_p2.3.fc.weight"]
    with pytest.raises(CheckpointConversionError, match="cross_modal_blocks.3.audio_before_mlp.channel_projection"):
        load_original_dg_sct(state_dict, original_config)
    with pytest.raises(CheckpointConversionError, match="not a DG-SCT"):
        load_original_dg_sct({"encoder.weight": torch.zeros(1)}, original_config)
