"""VATT conversion: the four tiny TF2 checkpoints saved by the ORIGINAL code (tests/fixtures/vatt, see its README)
go through the conversion script's code path and must reproduce every output the original recorded in io.npz.

Tolerance: fp32, max abs diff <= 1e-5 (observed ~2e-6) on every recorded output, except the audio tower on an input
shorter than pre-training (`out_interp/*`), see `INTERPOLATION_ATOL`.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import hf_av  # noqa: F401  (registers VATT with the Auto classes)
from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, AutoModelForPreTraining, AutoProcessor

from hf_av.conversion.vatt import (
    build_config,
    convert_vatt_checkpoint,
    infer_original_kind,
    key_map,
    load_original_model,
    read_checkpoint,
)
from hf_av.errors import CheckpointConversionError
from hf_av.processing.vatt import VattFeatureExtractor, VattProcessor
from modeling.vatt import VattForAudioClassification, VattForPreTraining, VattForVideoClassification, VattModel

FIXTURES = Path(__file__).parent.parent / "fixtures" / "vatt"
ORIGINAL_CONFIG = FIXTURES / "config.json"
CHECKPOINTS = {"tx_fac": "ckpt-500000", "ut_fac": "ckpt-500000", "video_cls": "ckpt-100000", "audio_cls": "ckpt-100000"}
ATOL = 1e-5
# The original resamples a position table by solving the (n+2) x (n+2) polyharmonic-spline system in float32
# (tfa.image.interpolate_spline). For the fixture's 16-entry audio table that system has condition number 8.5e4, so
# TF's float32 solution carries errors of ~1e-3: TF's own float32 and float64 solutions of it differ by 1.5e-3, and
# the outputs after the LayerNorm differ from our float64 solve by 3.3e-3. The bound below is that float32 noise.
INTERPOLATION_ATOL = 5e-3
SCRIPT = Path(__file__).parents[2] / "conversion_scripts" / "convert_vatt_tf_to_hf.py"


def _prefix(kind: str) -> Path:
    return FIXTURES / kind / CHECKPOINTS[kind]


def _max_diff(ours: torch.Tensor, expected: np.ndarray) -> float:
    ours = ours.detach().double().numpy()
    assert ours.shape == expected.shape, (ours.shape, expected.shape)
    return float(np.abs(ours - expected).max())


def _run_script(argv: list[str]) -> int:
    """The conversion script's own `main` (imported from its file, as `python conversion_scripts/...` runs it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("convert_vatt_tf_to_hf", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict[str, Path]:
    """Every fixture checkpoint converted by the script (original sizes from --original-config)."""
    folders = {}
    for kind in CHECKPOINTS:
        folder = tmp_path_factory.mktemp(kind)
        argv = ["--checkpoint", str(_prefix(kind)), "--output-dir", str(folder),
                "--original-config", str(ORIGINAL_CONFIG), "--original-model", kind]
        assert _run_script(argv) == 0
        folders[kind] = folder
    return folders


def _video(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(0, 1, 4, 2, 3)  # TF [B, T, H, W, 3] -> hf_av [B, T, 3, H, W]


def _audio(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array)[..., 0]  # TF [B, L, 1] -> hf_av [B, L]


@pytest.mark.parametrize("kind", ["tx_fac", "ut_fac"])
def test_pretraining_checkpoints_match_the_original(converted, kind):
    io = np.load(FIXTURES / kind / "io.npz")
    model = VattForPreTraining.from_pretrained(converted[kind]).eval()
    inputs = {"pixel_values": _video(io["in/video"]), "input_values": _audio(io["in/audio"]),
              "input_ids": torch.from_numpy(io["in/text_ids"]).long()}
    with torch.no_grad():
        out = model(**inputs, return_loss=False)
    video_features = out.video_last_hidden_state[:, 1:].reshape(io["out/video/features"].shape)
    recorded = {
        "out/video/features_pooled": out.video_pooler_output,
        "out/video/features": video_features,
        "out/audio/features_pooled": out.audio_pooler_output,
        "out/audio/features": out.audio_last_hidden_state[:, 1:],
        "out/text/features_pooled": out.text_pooler_output,
        "out/text/features": out.text_last_hidden_state[:, 1:],
        "out/head_stack/bridge/video/toaud": out.video_audio_embeds,
        "out/head_stack/bridge/video/totxt": out.video_text_embeds,
        "out/head_stack/bridge/audio/tovid": out.audio_embeds,
        "out/head_stack/bridge/text/tovid": out.text_embeds,
    }
    diffs = {key: _max_diff(value, io[key]) for key, value in recorded.items()}
    assert max(diffs.values()) <= ATOL, diffs
    # every recorded output is compared (the mask is an input-derived integer output)
    assert set(io.files) - set(recorded) - {"out/text/attention_mask"} == {
        key for key in io.files if key.startswith(("in/", "out_interp/"))}
    np.testing.assert_array_equal((inputs["input_ids"] != 0).int().numpy(), io["out/text/attention_mask"])


def test_position_table_interpolation_matches_the_original(converted):
    io = np.load(FIXTURES / "tx_fac" / "io.npz")
    model = VattModel.from_pretrained(converted["tx_fac"]).eval()
    audio = _audio(io["in/audio_interp"])  # 160 samples: 10 patches against a 16-entry table
    with torch.no_grad():
        tower = model.encode_audio(audio)
    assert _max_diff(tower.pooler_output, io["out_interp/audio/features_pooled"]) <= INTERPOLATION_ATOL
    assert _max_diff(tower.last_hidden_state[:, 1:], io["out_interp/audio/features"]) <= INTERPOLATION_ATOL


@pytest.mark.parametrize("kind, model_class", [("video_cls", VattForVideoClassification),
                                                ("audio_cls", VattForAudioClassification)])
def test_classifier_checkpoints_match_the_original(converted, kind, model_class):
    io = np.load(FIXTURES / kind / "io.npz")
    model = model_class.from_pretrained(converted[kind]).eval()
    values = _video(io["in/images"]) if kind == "video_cls" else _audio(io["in/audio"])
    with torch.no_grad():
        out = model(values)
        tower = model.vatt.encode_video(values) if kind == "video_cls" else model.vatt.encode_audio(values)
    diffs = {
        "logits": _max_diff(out.logits, io["out/logits"]),
        "probabilities": _max_diff(out.probabilities, io["out/probabilities"]),
        "features_pooled": _max_diff(out.pooled_output, io["out/features_pooled"]),
        "features": _max_diff(tower.last_hidden_state[:, 1:].reshape(io["out/features"].shape), io["out/features"]),
    }
    assert max(diffs.values()) <= ATOL, diffs
    assert model.config.num_labels == io["out/logits"].shape[1]


def test_converted_folders_reload_identically_through_the_auto_classes(converted, tmp_path):
    io = np.load(FIXTURES / "tx_fac" / "io.npz")
    inputs = {"pixel_values": _video(io["in/video"]), "input_values": _audio(io["in/audio"]),
              "input_ids": torch.from_numpy(io["in/text_ids"]).long()}
    folder = converted["tx_fac"]
    assert type(AutoConfig.from_pretrained(folder)).__name__ == "VattConfig"
    base = AutoModel.from_pretrained(folder).eval()
    assert isinstance(base, VattModel)
    pretraining = AutoModelForPreTraining.from_pretrained(folder).eval()
    assert isinstance(pretraining, VattForPreTraining)
    with torch.no_grad():
        first = base(**inputs)
        base.save_pretrained(tmp_path)
        again = AutoModel.from_pretrained(tmp_path).eval()(**inputs)
        inner = pretraining(**inputs, return_loss=False)
    for key, value in first.items():
        assert torch.equal(value, again[key]), key
        assert torch.equal(value, inner[key]), key
    processor = AutoProcessor.from_pretrained(folder)
    assert isinstance(processor, VattProcessor)
    assert processor.feature_extractor.num_samples == 256 and processor.video_processor.crop_size == 32
    assert (folder / "README.md").read_text().count("VattForPreTraining") >= 1
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.bin"))


def test_every_variable_is_mapped_or_dropped_with_a_reason():
    for kind in CHECKPOINTS:
        model, found_kind, report = load_original_model(_prefix(kind), ORIGINAL_CONFIG, kind)
        assert found_kind == kind
        reasons = report.dropped_by_reason()
        assert all("optimizer" in r or "save counter" in r or "object graph" in r for r in reasons), reasons
        mapped_targets = {t for _, targets, _ in report.mapped for t in targets}
        state = model.state_dict()
        # everything but the BatchNorm step counters (no TF counterpart) comes from the checkpoint
        assert set(state) - mapped_targets == {k for k in state if k.endswith("num_batches_tracked")}


def test_config_from_the_original_arguments():
    original = json.loads(ORIGINAL_CONFIG.read_text())
    variables, _ = read_checkpoint(_prefix("tx_fac"))
    config = build_config(variables, "tx_fac", original, "tx_fac")
    assert (config.video_hidden_size, config.video_num_attention_heads, config.video_num_frames) == (32, 4, 4)
    assert (config.text_hidden_size, config.text_num_attention_heads, config.text_relative_attention_max_distance) \
        == (24, 3, 16)
    assert (config.video_audio_projection_size, config.video_text_projection_size) == (16, 8)
    assert config.batch_norm_momentum == pytest.approx(0.1)  # TF 0.9 -> PyTorch 0.1
    variables, _ = read_checkpoint(_prefix("audio_cls"))
    config = build_config(variables, "audio_cls", original, "audio_cls")
    assert config.modalities == ["audio"] and config.audio_pre_projection and config.audio_post_projection_size == 20


def test_released_sizes_are_inferred_from_shapes():
    """Without --original-config the released layout (64 dims per head) is read from the shapes: here the tiny
    checkpoint's 32-wide towers with 64-dim heads cannot exist, so the error asks for --original-config."""
    variables, _ = read_checkpoint(_prefix("video_cls"))
    with pytest.raises(CheckpointConversionError, match="--original-config"):
        build_config(variables, "video_cls")
    # with the head width known, everything else comes from the shapes and matches the original arguments
    from hf_av.conversion import vatt as vatt_conversion

    original = json.loads(ORIGINAL_CONFIG.read_text())
    for kind in CHECKPOINTS:
        variables, _ = read_checkpoint(_prefix(kind))
        old = vatt_conversion._RELEASED_HEAD_WIDTH
        vatt_conversion._RELEASED_HEAD_WIDTH = 8  # the fixtures' d_kv
        try:
            inferred = build_config(variables, kind)
        finally:
            vatt_conversion._RELEASED_HEAD_WIDTH = old
        expected = build_config(variables, kind, original, kind)
        for key, value in expected.to_diff_dict().items():
            if key in ("text_relative_attention_max_distance", "batch_norm_momentum", "batch_norm_eps",
                       "transformers_version"):
                continue  # not stored in the checkpoint; released defaults are assumed
            assert getattr(inferred, key) == value, (kind, key)


def test_full_size_key_maps_cover_the_released_checkpoints():
    """The released variable lists (shapes from the original code at full size, research/vatt-variables.txt) map
    onto the full-size models completely, with the right shapes (checked on the meta device: no weights needed)."""
    from hf_av.conversion.vatt import convert_variables, infer_config_kwargs, strip_variable_names
    from modeling.vatt import VattConfig

    sections: dict[str, dict] = {}
    current = None
    for line in (FIXTURES / "released_variables.txt").read_text().splitlines():
        if line.startswith("## ") and "total params" not in line:
            current = sections.setdefault(line[3:], {})
        elif line and not line.startswith("#") and current is not None:
            key, shape = line.split("\t")
            current[key] = torch.empty(json.loads(shape), device="meta")
    assert len(sections) == 5
    classes = {"tx_fac": VattForPreTraining, "ut_fac": VattForPreTraining, "video_cls": VattForVideoClassification,
               "audio_cls": VattForAudioClassification}
    for title, variables in sections.items():
        variables = strip_variable_names(variables)
        kind = infer_original_kind(variables)
        config = VattConfig(**infer_config_kwargs(variables, kind))
        with torch.device("meta"):
            model = classes[kind](config)
        convert_variables(variables, kind, model)  # raises on any unmapped, missing or mis-shaped key
        if "BBS" in title:
            assert config.to_diff_dict() == VattConfig.from_preset("bbs").to_diff_dict()
        if "MA-Medium pretrain" in title:
            assert config.is_modality_agnostic and config.shared_hidden_size == 1024


# ---------------------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------------------
def test_missing_checkpoint_prefix_is_a_clear_error(tmp_path, capsys):
    code = _run_script(["--checkpoint", str(tmp_path / "nowhere" / "ckpt-7"), "--output-dir", str(tmp_path / "out")])
    assert code == 1
    assert "no TensorFlow checkpoint at" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointConversionError, match="not a VATT checkpoint"):
        load_original_model(FIXTURES / "other_model" / "ckpt-10")
    with pytest.raises(CheckpointConversionError, match="no TensorFlow checkpoint"):
        load_original_model(Path(__file__).parents[1] / "fixtures" / "cav-mae" / "cavmae_pretrain_original.pth")
    with pytest.raises(CheckpointConversionError, match="variables are those of a tx_fac model"):
        load_original_model(_prefix("tx_fac"), ORIGINAL_CONFIG, "video_cls")


def test_unknown_variables_are_named(tmp_path):
    variables, _ = read_checkpoint(_prefix("video_cls"))
    variables["_base/unexpected_layer/kernel"] = np.zeros((2, 2), np.float32)
    with pytest.raises(CheckpointConversionError, match="unexpected_layer"):
        load_original_model(variables, ORIGINAL_CONFIG, "video_cls")


def test_wrong_sample_rate_frame_count_and_text_length_are_clear_errors(converted):
    processor = VattProcessor.from_pretrained(converted["tx_fac"])
    refusing = VattFeatureExtractor(num_samples=256, resample_input=False)
    with pytest.raises(ValueError, match="16000"):
        refusing(np.zeros(1000, np.float32), sampling_rate=16000)
    model = VattModel.from_pretrained(converted["tx_fac"]).eval()
    with pytest.raises(ValueError, match="frames \\(3\\) must be a multiple of 2"):
        model(pixel_values=torch.zeros(1, 3, 3, 32, 32))
    with pytest.raises(ValueError, match="more than this model's maximum"):
        model(input_ids=torch.ones(1, model.config.text_max_length + 1, dtype=torch.long))
    assert processor.tokenizer.max_length == model.config.text_max_length


def test_hf_av_cli_converts_a_tf_checkpoint_prefix(tmp_path):
    from hf_av.cli import main

    folder = tmp_path / "audio_cls"
    assert main(["convert", "--model", "vatt", "--checkpoint", str(_prefix("audio_cls")), "--output-dir", str(folder),
                 "--original-config", str(ORIGINAL_CONFIG), "--original-model", "audio_cls"]) == 0
    assert isinstance(AutoModelForAudioClassification.from_pretrained(folder), VattForAudioClassification)


_REMOTE_CODE_CHECK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("hf_av", "modeling"):
            raise ImportError(f"{name} must not be needed")
sys.meta_path.insert(0, Block())
import numpy as np, torch
from transformers import AutoModel, AutoProcessor
folder, io_file = sys.argv[1], sys.argv[2]
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
io = np.load(io_file)
with torch.no_grad():
    out = model(pixel_values=torch.from_numpy(io["in/video"]).permute(0, 1, 4, 2, 3),
                input_values=torch.from_numpy(io["in/audio"])[..., 0],
                input_ids=torch.from_numpy(io["in/text_ids"]).long())
diff = np.abs(out.text_embeds.numpy() - io["out/head_stack/bridge/text/tovid"]).max()
print(type(model).__name__, type(processor).__name__, diff)
"""


def test_remote_code_export_loads_without_hf_av(tmp_path):
    import os
    import subprocess
    import sys

    from hf_av.cli import main

    folder = tmp_path / "tx_fac"
    assert main(["convert", "--model", "vatt", "--checkpoint", str(_prefix("tx_fac")), "--output-dir", str(folder),
                 "--original-config", str(ORIGINAL_CONFIG), "--remote-code"]) == 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _REMOTE_CODE_CHECK, str(folder), str(FIXTURES / "tx_fac" / "io.npz")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    name, processor, diff = result.stdout.split()[-3:]
    assert (name, processor) == ("VattModel", "VattProcessor") and float(diff) <= ATOL
