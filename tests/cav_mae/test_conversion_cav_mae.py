"""Conversion of ORIGINAL CAV-MAE checkpoints and numerical parity with the ORIGINAL code's recorded outputs.

The fixtures (`tests/fixtures/cav-mae/`) were saved by the original `CAVMAE` / `CAVMAEFT` classes (tiny config,
`module.` keys). The checkpoints are converted WITH THE SCRIPT (`conversion_scripts/convert_cav_mae_original_to_hf.py`,
through its `main()` and once as a subprocess), loaded back with the Auto classes and compared in fp32.

Max abs differences observed when this suite was written (CPU, torch 2.13, fp32; tolerance 1e-5, masks/ids exact):

| output | max abs diff |
|---|---|
| finetune logits multimodal / audioonly / videoonly / missingaudioonly / missingvideoonly | 6.0e-7 / 7.2e-7 / 9.5e-7 / 6.0e-7 / 6.6e-7 |
| logits.audioonly_from_waveform (fixture fbank -> model) | 5.4e-7 |
| finetune forward_feat av audio / av video / a audio | 2.2e-6 / 1.6e-6 / 2.2e-6 |
| pretrain forward_feat audio / video | 1.9e-6 / 1.6e-6 |
| patch+position+modality embeddings audio / video | 1.9e-6 / 3.3e-6 |
| encoder latent / latent_c_a / latent_c_v | 1.6e-6 / 1.4e-6 / 1.4e-6 |
| decoder pred_a / pred_v | 8.3e-7 / 7.2e-7 |
| loss, loss_mae, loss_mae_a, loss_mae_v, c_acc | 0.0 |
| loss_c | 2.8e-9 |
| contrastive nce single / bidirectional, acc | <= 1e-7 / <= 1e-7, exact |
| mae loss without norm-pix audio / video | <= 1e-6 |
| masks, ids_restore (from recorded noise and from torch.manual_seed(1234)) | exact |
The exact figures of a run are printed by the tests (`pytest -s`).
"""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import hf_av  # noqa: F401
from hf_av.conversion.cav_mae import convert_state_dict
from hf_av.conversion.cav_mae_checkpoints import RELEASED_CHECKPOINTS, find_released_checkpoint
from hf_av.errors import CheckpointConversionError
from modeling.cav_mae import CavMaeConfig, CavMaeForAudioVisualClassification, CavMaeForPreTraining, CavMaeModel
from modeling.cav_mae.modeling_cav_mae import contrastive_loss, masked_reconstruction_loss

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "conversion_scripts" / "convert_cav_mae_original_to_hf.py"
FIXTURES = REPO / "tests" / "fixtures" / "cav-mae"
TOL = 1e-5


def load_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("convert_cav_mae_original_to_hf", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(*args) -> int:
    return load_script().main([str(a) for a in args])


def check(name: str, ours: torch.Tensor, reference: torch.Tensor, tol: float = TOL) -> float:
    assert tuple(ours.shape) == tuple(reference.shape), name
    diff = (ours.detach().double() - reference.double()).abs().max().item() if ours.numel() else 0.0
    print(f"parity {name}: max abs diff {diff:.3e}")
    assert diff <= tol, f"{name}: max abs diff {diff}"
    return diff


@pytest.fixture(scope="module")
def inputs():
    return load_file(FIXTURES / "inputs.safetensors")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    for kind, name in (("finetune", "cavmae_finetune_original.pth"), ("pretrain", "cavmae_pretrain_original.pth")):
        code = run_script("--checkpoint", FIXTURES / name, "--output-dir", out / kind,
                          "--original-config", FIXTURES / "config.json", "--original-model", kind)
        assert code == 0
    return out


@pytest.fixture(scope="module")
def finetuned(converted):
    from transformers import AutoModelForAudioClassification

    model = AutoModelForAudioClassification.from_pretrained(converted / "finetune").eval()
    assert isinstance(model, CavMaeForAudioVisualClassification)
    return model


@pytest.fixture(scope="module")
def pretrained(converted):
    from transformers import AutoModelForPreTraining

    model = AutoModelForPreTraining.from_pretrained(converted / "pretrain").eval()
    assert isinstance(model, CavMaeForPreTraining)
    return model



def test_output_folder_contents(converted):
    for kind in ("finetune", "pretrain"):
        files = set(os.listdir(converted / kind))
        assert {"config.json", "model.safetensors", "README.md"} <= files
        assert not any(name.startswith(".") for name in os.listdir(converted))  # no staging dirs left
    card = (converted / "finetune" / "README.md").read_text()
    assert "library_name: hf_av" in card and "license: bsd-2-clause" in card and "pipeline_tag: audio-classification" in card
    config = json.loads((converted / "finetune" / "config.json").read_text())
    assert config["model_type"] == "cav-mae" and config["num_attention_heads"] == 4 and len(config["id2label"]) == 5


def test_processor_is_saved_and_matches_the_model(converted):
    pytest.importorskip("hf_av.processing")
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(converted / "finetune")
    assert type(processor).__name__ == "CavMaeProcessor"
    assert processor.feature_extractor.target_length == 64  # the tiny model's audio_length


@pytest.mark.parametrize("mode", ["multimodal", "audioonly", "videoonly", "missingaudioonly", "missingvideoonly"])
def test_finetune_logits_all_modes(finetuned, inputs, mode):
    reference = load_file(FIXTURES / "finetune_outputs.safetensors")
    with torch.no_grad():
        logits = finetuned(input_values=inputs["audio"], pixel_values=inputs["image"], mode=mode).logits
    check(f"logits.{mode}", logits, reference[f"logits.{mode}"])


def test_finetune_forward_feat(finetuned, inputs):
    reference = load_file(FIXTURES / "finetune_outputs.safetensors")
    with torch.no_grad():
        both = finetuned.cav_mae(input_values=inputs["audio"], pixel_values=inputs["image"])
        audio = finetuned.cav_mae.get_audio_features(inputs["audio"])
    check("forward_feat_av.audio", both.audio_last_hidden_state, reference["forward_feat_av.audio"])
    check("forward_feat_av.video", both.visual_last_hidden_state, reference["forward_feat_av.video"])
    check("forward_feat_a.audio", audio.last_hidden_state, reference["forward_feat_a.audio"])
    # embeddings = mean-pooled, L2-normalised forward_feat (the original retrieval.py)
    expected = torch.nn.functional.normalize(reference["forward_feat_av.audio"].mean(1), dim=-1)
    check("audio_embeds", both.audio_embeds, expected)
    expected = torch.nn.functional.normalize(reference["forward_feat_av.video"].mean(1), dim=-1)
    check("visual_embeds", both.visual_embeds, expected)


def test_audioonly_from_waveform(finetuned, inputs):
    reference = load_file(FIXTURES / "finetune_outputs.safetensors")["logits.audioonly_from_waveform"]
    with torch.no_grad():
        logits = finetuned(input_values=inputs["fbank_input_tiny"][None]).logits  # original preprocessing output
    check("logits.audioonly_from_waveform (fixture fbank)", logits, reference)


def test_waveform_through_feature_extractor(finetuned, inputs):
    processing = pytest.importorskip("hf_av.processing")
    extractor = processing.CavMaeFeatureExtractor(target_length=64)
    features = extractor(inputs["waveform"][0].numpy(), sampling_rate=16000, return_tensors="pt")["input_values"]
    # our Kaldi fbank is not bit-identical to torchaudio's (<= 1e-4 on the normalised fbank), hence 1e-4 here
    check("fbank (feature extractor vs original)", features[0], inputs["fbank_input_tiny"], tol=1e-4)
    reference = load_file(FIXTURES / "finetune_outputs.safetensors")["logits.audioonly_from_waveform"]
    with torch.no_grad():
        logits = finetuned(input_values=features).logits
    check("logits.audioonly_from_waveform (waveform -> feature extractor)", logits, reference, tol=1e-4)


def test_pretrain_features_and_embeddings(pretrained, inputs):
    reference = load_file(FIXTURES / "pretrain_outputs.safetensors")
    encoder = pretrained.cav_mae
    with torch.no_grad():
        out = encoder(input_values=inputs["audio"], pixel_values=inputs["image"])
        check("embed.audio", encoder.audio_embeddings(inputs["audio"]), reference["embed.audio"])
        check("embed.video", encoder.visual_embeddings(inputs["image"]), reference["embed.video"])
    check("forward_feat.audio", out.audio_last_hidden_state, reference["forward_feat.audio"])
    check("forward_feat.video", out.visual_last_hidden_state, reference["forward_feat.video"])


def _compare_pretraining_forward(out, reference):
    for ours, key in (
        ("loss", "forward.loss"), ("loss_mae", "forward.loss_mae"), ("loss_mae_audio", "forward.loss_mae_a"),
        ("loss_mae_visual", "forward.loss_mae_v"), ("loss_contrastive", "forward.loss_c"),
        ("contrastive_accuracy", "forward.c_acc"), ("joint_last_hidden_state", "encoder.latent"),
        ("audio_last_hidden_state", "encoder.latent_c_a"), ("visual_last_hidden_state", "encoder.latent_c_v"),
        ("audio_reconstruction", "decoder.pred_a"), ("visual_reconstruction", "decoder.pred_v"),
    ):
        check(ours, out[ours], reference[key])
    for ours, key in (("audio_mask", "forward.mask_a"), ("visual_mask", "forward.mask_v"),
                      ("audio_ids_restore", "encoder.ids_restore_a"), ("visual_ids_restore", "encoder.ids_restore_v")):
        assert torch.equal(out[ours].to(reference[key].dtype), reference[key]), ours


def test_pretraining_from_recorded_noise(pretrained, inputs):
    reference = load_file(FIXTURES / "pretrain_outputs.safetensors")
    with torch.no_grad():
        out = pretrained(input_values=inputs["audio"], pixel_values=inputs["image"],
                         audio_noise=reference["mask.noise_audio"], visual_noise=reference["mask.noise_video"])
    _compare_pretraining_forward(out, reference)
    # the remaining original entry points, from the same latents
    nce, acc = contrastive_loss(out.audio_last_hidden_state.mean(1), out.visual_last_hidden_state.mean(1), 0.05)
    check("contrastive.nce_single", nce, reference["contrastive.nce_single"])
    check("contrastive.acc_single", acc, reference["contrastive.acc_single"], tol=0.0)
    nce, acc = contrastive_loss(out.audio_last_hidden_state.mean(1), out.visual_last_hidden_state.mean(1), 0.05, True)
    check("contrastive.nce_bidirectional", nce, reference["contrastive.nce_bidirectional"])
    check("contrastive.acc_bidirectional", acc, reference["contrastive.acc_bidirectional"], tol=0.0)
    audio_target = pretrained.audio_targets(inputs["audio"])
    visual_target = pretrained.visual_targets(inputs["image"])
    check("target.audio_patches", audio_target, reference["target.audio_patches"], tol=0.0)
    check("target.video_patches", visual_target, reference["target.video_patches"], tol=0.0)
    check("mae_loss_no_normpix.a", masked_reconstruction_loss(out.audio_reconstruction, audio_target, out.audio_mask, False),
          reference["mae_loss_no_normpix.a"])
    check("mae_loss_no_normpix.v", masked_reconstruction_loss(out.visual_reconstruction, visual_target, out.visual_mask, False),
          reference["mae_loss_no_normpix.v"])


def test_pretraining_with_the_original_seed(pretrained, inputs):
    # without explicit noise the model draws torch.rand(B, L_audio) then torch.rand(B, L_visual) like the original
    reference = load_file(FIXTURES / "pretrain_outputs.safetensors")
    torch.manual_seed(1234)
    with torch.no_grad():
        out = pretrained(input_values=inputs["audio"], pixel_values=inputs["image"])
    _compare_pretraining_forward(out, reference)


def test_zero_mask_ratio_permutes_like_the_original(pretrained, inputs):
    reference = load_file(FIXTURES / "pretrain_outputs.safetensors")
    with torch.no_grad():
        out = pretrained(input_values=inputs["audio"], pixel_values=inputs["image"], audio_mask_ratio=0.0,
                         visual_mask_ratio=0.0, audio_noise=reference["encoder_nomask.noise_audio"],
                         visual_noise=reference["encoder_nomask.noise_video"])
    assert torch.equal(out.audio_ids_restore, reference["encoder_nomask.ids_restore_a"])
    assert torch.equal(out.visual_ids_restore, reference["encoder_nomask.ids_restore_v"])
    check("encoder_nomask.latent", out.joint_last_hidden_state, reference["encoder_nomask.latent"])


def test_save_and_auto_model_reload_identical(pretrained, inputs, tmp_path):
    from transformers import AutoModel

    pretrained.save_pretrained(tmp_path)
    base = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(base, CavMaeModel)
    with torch.no_grad():
        a = pretrained.cav_mae(input_values=inputs["audio"], pixel_values=inputs["image"])
        b = base(input_values=inputs["audio"], pixel_values=inputs["image"])
    for key in ("audio_last_hidden_state", "visual_last_hidden_state", "joint_last_hidden_state", "logits_per_audio"):
        assert torch.equal(a[key], b[key]), key


def test_script_as_subprocess(tmp_path, converted):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--checkpoint", str(FIXTURES / "cavmae_finetune_original.pth"),
         "--output-dir", str(tmp_path / "out"), "--original-config", str(FIXTURES / "config.json")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert load_file(tmp_path / "out" / "model.safetensors").keys() == load_file(converted / "finetune" / "model.safetensors").keys()


# ---------------------------------------------------------------------------------------------------------------------
# A checkpoint of another size: 2 shared layers, other widths / heads, built in the original key layout
# ---------------------------------------------------------------------------------------------------------------------
_TO_ORIGINAL = [
    ("cav_mae.audio_embeddings.patch_embeddings.projection", "patch_embed_a.proj"),
    ("cav_mae.visual_embeddings.patch_embeddings.projection", "patch_embed_v.proj"),
    ("cav_mae.audio_embeddings.position_embeddings", "pos_embed_a"),
    ("cav_mae.visual_embeddings.position_embeddings", "pos_embed_v"),
    ("cav_mae.audio_embeddings.modality_embedding", "modality_a"),
    ("cav_mae.visual_embeddings.modality_embedding", "modality_v"),
    ("cav_mae.audio_layers", "blocks_a"), ("cav_mae.visual_layers", "blocks_v"), ("cav_mae.shared_layers", "blocks_u"),
    ("cav_mae.audio_layernorm", "norm_a"), ("cav_mae.visual_layernorm", "norm_v"), ("cav_mae.joint_layernorm", "norm"),
    ("decoder.embed", "decoder_embed"), ("decoder.mask_token", "mask_token"),
    ("decoder.audio_modality_embedding", "decoder_modality_a"), ("decoder.visual_modality_embedding", "decoder_modality_v"),
    ("decoder.audio_position_embeddings", "decoder_pos_embed_a"),
    ("decoder.visual_position_embeddings", "decoder_pos_embed_v"),
    ("decoder.layers", "decoder_blocks"), ("decoder.layernorm", "decoder_norm"),
    ("decoder.audio_prediction", "decoder_pred_a"), ("decoder.visual_prediction", "decoder_pred_v"),
    (".attention.qkv", ".attn.qkv"), (".attention.proj", ".attn.proj"),
    (".audio_layernorm_before.", ".norm1_a."), (".audio_layernorm_after.", ".norm2_a."),
    (".visual_layernorm_before.", ".norm1_v."), (".visual_layernorm_after.", ".norm2_v."),
    (".layernorm_before.", ".norm1."), (".layernorm_after.", ".norm2."),
]


def to_original_layout(state_dict):
    """hf_av pre-training keys -> original `module.` keys, plus the unused norm*_a/v of non-shared blocks."""
    original = {}
    for key, tensor in state_dict.items():
        for ours, theirs in _TO_ORIGINAL:
            key = key.replace(ours, theirs)
        original["module." + key] = tensor
    for key in list(original):
        if (".blocks_a." in key or ".blocks_v." in key or ".decoder_blocks." in key) and (".norm1." in key or ".norm2." in key):
            for suffix in ("_a", "_v"):
                original[key.replace(".norm1.", f".norm1{suffix}.").replace(".norm2.", f".norm2{suffix}.")] = torch.randn_like(original[key])
    return original


def test_other_size_with_original_config(tmp_path):
    config = CavMaeConfig(hidden_size=48, num_attention_heads=6, intermediate_size=96, num_modality_specific_layers=10,
                          num_shared_layers=2, decoder_hidden_size=24, decoder_num_attention_heads=3,
                          decoder_intermediate_size=48, decoder_num_hidden_layers=2, audio_length=48, image_size=48)
    torch.manual_seed(0)
    source = CavMaeForPreTraining(config).eval()
    with torch.no_grad():
        for name, parameter in source.named_parameters():
            if "position" not in name:
                parameter.add_(0.1 * torch.randn_like(parameter))
    checkpoint = tmp_path / "other_size.pth"
    torch.save(to_original_layout(source.state_dict()), checkpoint)
    original_config = {"pretrain": {"img_size": 48, "audio_length": 48, "patch_size": 16, "in_chans": 3, "embed_dim": 48,
                                    "modality_specific_depth": 10, "num_heads": 6, "decoder_embed_dim": 24, "decoder_depth": 2,
                                    "decoder_num_heads": 3, "mlp_ratio": 2.0, "norm_pix_loss": True, "tr_pos": False}}
    (tmp_path / "config.json").write_text(json.dumps(original_config))
    assert run_script("--checkpoint", checkpoint, "--output-dir", tmp_path / "out", "--original-config", tmp_path / "config.json") == 0
    converted = CavMaeForPreTraining.from_pretrained(tmp_path / "out").eval()
    assert (converted.config.num_shared_layers, converted.config.num_attention_heads, converted.config.decoder_num_attention_heads) == (2, 6, 3)
    generator = torch.Generator().manual_seed(0)
    batch = {"input_values": torch.randn(2, 48, 128, generator=generator), "pixel_values": torch.randn(2, 3, 48, 48, generator=generator),
             "audio_noise": torch.rand(2, 24, generator=generator), "visual_noise": torch.rand(2, 9, generator=generator)}
    with torch.no_grad():
        expected, got = source(**batch), converted(**batch)
    for key in ("loss", "audio_reconstruction", "visual_reconstruction", "audio_last_hidden_state", "joint_last_hidden_state"):
        check(f"other size {key}", got[key], expected[key], tol=0.0)
    # without --original-config the head counts cannot be read from the weights: a wrong guess is caught at parity time,
    # so the converter warns; the sizes themselves are inferred
    assert run_script("--checkpoint", checkpoint, "--output-dir", tmp_path / "guess") == 0
    guessed = CavMaeConfig.from_pretrained(tmp_path / "guess")
    assert (guessed.hidden_size, guessed.num_modality_specific_layers, guessed.num_shared_layers, guessed.audio_length) == (48, 10, 2, 48)


# ---------------------------------------------------------------------------------------------------------------------
# Bad checkpoints: errors name the problem and nothing is left behind
# ---------------------------------------------------------------------------------------------------------------------
def _assert_fails(tmp_path, checkpoint, match, *extra):
    with pytest.raises(CheckpointConversionError, match=match):
        from hf_av.conversion.cav_mae import convert_cav_mae_checkpoint

        convert_cav_mae_checkpoint(checkpoint, tmp_path / "out", *extra)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert run_script("--checkpoint", checkpoint, "--output-dir", tmp_path / "out", *(["--original-config", extra[0]] if extra else [])) == 1


def test_wrong_model_checkpoint(tmp_path):
    _assert_fails(tmp_path, REPO / "tests" / "fixtures" / "dg-sct" / "ave_tiny_state_dict.pth",
                  r"not an original CAV-MAE checkpoint: missing key\(s\) patch_embed_a.proj.weight")


def test_truncated_file(tmp_path):
    data = (FIXTURES / "cavmae_pretrain_original.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(data[: len(data) // 2])
    _assert_fails(tmp_path, tmp_path / "truncated.pth", "truncated or corrupt")


class NotATensor:
    pass


def test_pickle_needing_code_execution(tmp_path):
    torch.save({"weights": NotATensor()}, tmp_path / "code.pth")
    _assert_fails(tmp_path, tmp_path / "code.pth", "executing code")


def test_missing_key(tmp_path):
    state_dict = torch.load(FIXTURES / "cavmae_finetune_original.pth", weights_only=True)
    del state_dict["module.blocks_u.0.norm1_a.weight"]
    torch.save(state_dict, tmp_path / "missing.pth")
    _assert_fails(tmp_path, tmp_path / "missing.pth", r"missing key\(s\) cav_mae.shared_layers.0.audio_layernorm_before.weight",
                  FIXTURES / "config.json")


def test_unknown_key(tmp_path):
    state_dict = torch.load(FIXTURES / "cavmae_finetune_original.pth", weights_only=True)
    state_dict["module.cls_token_av"] = torch.zeros(1, 1, 32)
    torch.save(state_dict, tmp_path / "extra.pth")
    _assert_fails(tmp_path, tmp_path / "extra.pth", "neither mapped nor deliberately dropped: cls_token_av",
                  FIXTURES / "config.json")


def test_kind_mismatch(tmp_path):
    from hf_av.conversion.cav_mae import convert_cav_mae_checkpoint

    with pytest.raises(CheckpointConversionError, match="keys are those of a finetune model"):
        convert_cav_mae_checkpoint(FIXTURES / "cavmae_finetune_original.pth", tmp_path / "out", FIXTURES / "config.json", "pretrain")


def test_every_original_key_is_mapped_or_dropped():
    state_dict = torch.load(FIXTURES / "cavmae_pretrain_original.pth", weights_only=True)
    converted, dropped = convert_state_dict({k.removeprefix("module."): v for k, v in state_dict.items()})
    assert len(converted) + len(dropped) == len(state_dict)
    assert all(".norm1_" in k or ".norm2_" in k for k in dropped)
    assert not any(k.startswith("blocks_u") for k in dropped)


# ---------------------------------------------------------------------------------------------------------------------
# Release registry
# ---------------------------------------------------------------------------------------------------------------------
def test_registry_of_released_checkpoints():
    assert len(RELEASED_CHECKPOINTS) == 23
    scale = find_released_checkpoint("/downloads/audio_model.21.pth")
    assert scale.kind == "pretrain" and scale.name == "CAV-MAE-Scale++"
    assert find_released_checkpoint("symc.pth").config_kwargs()["bidirectional_contrastive_loss"] is True
    assert find_released_checkpoint("time_freq_50.pth").config_kwargs()["audio_mask_mode"] == "tf"
    vgg = find_released_checkpoint("vgg_59.8.pth").config_kwargs()
    assert vgg == {"num_labels": 309, "problem_type": "single_label_classification", "finetuning_mode": "audioonly"}
    assert find_released_checkpoint("as-full-51.2.pth").config_kwargs()["num_labels"] == 527
    for entry in RELEASED_CHECKPOINTS.values():
        CavMaeConfig(**entry.config_kwargs())  # every entry gives a valid config
    assert find_released_checkpoint("my_model.pth") is None


def test_registry_applies_on_file_name(tmp_path):
    # a tiny checkpoint saved under a released file name picks up that release's settings (sizes from the shapes)
    state_dict = torch.load(FIXTURES / "cavmae_finetune_original.pth", weights_only=True)
    path = tmp_path / "as_46.6.pth"
    torch.save(state_dict, path)
    with pytest.raises(CheckpointConversionError, match="num_labels: config 527 vs weights 5"):
        from hf_av.conversion.cav_mae import convert_cav_mae_checkpoint

        convert_cav_mae_checkpoint(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
