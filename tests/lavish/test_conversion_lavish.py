"""LAVisH conversion parity against the ORIGINAL code's outputs (GenjiB/LAVISH `MMIL_Net`, timm 0.6.7).

Fixtures (`tests/fixtures/lavish/`, see its README): `lavish_ave_tiny.pth` + `inputs_outputs.pt` (4-stage tiny
Swin-V2, README AVE flags) and `lavish_ave_other_size.pth` + `other_size_inputs_outputs.pt` (3 stages, window 3,
5 latent tokens, 3 conv groups, no BatchNorm, no audio gate, no LayerNorm before; 2 clips x 2 segments), both saved
by the original code. Every comparison is fp32 with max abs diff <= 1e-5. Measured: stage features <= 3.1e-6,
adapter inputs/outputs <= 2.9e-6, logits <= 2.4e-7, probabilities <= 1.5e-8.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hf_av.conversion.lavish import infer_original_config, lavish_key_map
from hf_av.conversion.toolkit import load_torch_checkpoint
from hf_av.errors import CheckpointConversionError
from modeling.lavish import LavishForAudioVisualEventLocalization

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "conversion_scripts" / "convert_lavish_original_to_hf.py"
FIXTURES = REPO / "tests" / "fixtures" / "lavish"
TOL = 1e-5
ADAPTER_LISTS = {
    "audio_adapter_blocks_p1": "audio_attention_adapter",
    "vis_adapter_blocks_p1": "visual_attention_adapter",
    "audio_adapter_blocks_p2": "audio_mlp_adapter",
    "vis_adapter_blocks_p2": "visual_mlp_adapter",
}
CASES = {
    "tiny": ("lavish_ave_tiny.pth", "config.json", "inputs_outputs.pt"),
    "other_size": ("lavish_ave_other_size.pth", "other_size_config.json", "other_size_inputs_outputs.pt"),
}


def run_script(*args) -> int:
    import importlib.util

    spec = importlib.util.spec_from_file_location("convert_lavish_original_to_hf", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(a) for a in args])


def check(name: str, ours: torch.Tensor, reference: torch.Tensor, tol: float = TOL) -> float:
    assert tuple(ours.shape) == tuple(reference.shape), f"{name}: {tuple(ours.shape)} vs {tuple(reference.shape)}"
    diff = (ours.detach().double() - reference.double()).abs().max().item()
    print(f"parity {name}: max abs diff {diff:.3e}")
    assert diff <= tol, f"{name}: max abs diff {diff}"
    return diff


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    for case, (checkpoint, config, _) in CASES.items():
        assert run_script("--checkpoint", FIXTURES / checkpoint, "--output-dir", out / case,
                          "--original-config", FIXTURES / config) == 0
    return out


def run_with_records(model, recorded):
    """Forward the recorded inputs; capture adapter inputs/outputs in the original's (N, C, L, 1) layout."""
    captured = {}

    def hook(name):
        def record(module, args, output):
            for suffix, tensor in (("in_x", args[0]), ("in_other", args[1]), ("out", output)):
                captured[f"{name}.{suffix}"] = tensor.transpose(1, 2).unsqueeze(-1)
        return record

    handles = []
    for key in recorded:
        if key.endswith(".out"):
            original_list, index = key.split(".")[:2]
            adapter = getattr(model.lavish.adapter_blocks[int(index)], ADAPTER_LISTS[original_list])
            handles.append(adapter.register_forward_hook(hook(f"{original_list}.{index}")))
    with torch.no_grad():
        output = model(input_values=recorded["audio"], pixel_values=recorded["vis"], output_hidden_states=True)
    for handle in handles:
        handle.remove()
    return output, captured


@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_the_original(converted, case):
    recorded = torch.load(FIXTURES / CASES[case][2], weights_only=True)
    model = LavishForAudioVisualEventLocalization.from_pretrained(converted / case).eval()
    output, captured = run_with_records(model, recorded)
    rows = recorded["probs"].shape[0]
    compared = set()
    for key, reference in recorded.items():
        if key in ("audio", "vis"):
            continue
        if key.startswith("stage"):
            stage, stream = int(key[5]), key.split(".")[1].split("_")[0]
            ours = output[f"{stream}_hidden_states"][stage + 1]
        elif key == "pooled_av":
            ours = output.pooler_output.reshape(rows, -1)
        elif key in ("logits", "probs"):
            ours = output["logits" if key == "logits" else "probabilities"].reshape(rows, -1)
        else:
            ours = captured[key]
        check(f"{case} {key}", ours, reference)
        compared.add(key)
    assert len(compared) == len(recorded) - 2  # every recorded output was compared
    num_stages = len(json.loads((FIXTURES / CASES[case][1]).read_text())["swin"]["depths"])
    assert sum(key.startswith("stage") for key in compared) == 2 * num_stages
    assert sum(key.endswith(".out") for key in compared) == 8


def test_output_folder(converted):
    folder = converted / "tiny"
    files = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "processor_config.json"} <= files
    card = (folder / "README.md").read_text()
    assert "library_name: hf_av" in card and "license: mit" in card and "adapter_token_downsampler" not in card
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "lavish" and config["backbone_config"]["model_type"] == "swinv2"
    assert config["adapter_num_latent_tokens"] == 2 and config["classifier_hidden_size"] == 64
    other = json.loads((converted / "other_size" / "config.json").read_text())
    assert (other["adapter_conv_groups"], other["adapter_num_latent_tokens"], other["adapter_batch_norm"],
            other["audio_adapter_gate"], other["adapter_layernorm_before"]) == (3, 5, False, False, False)
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    assert type(processor).__name__ == "LavishProcessor"
    assert processor.image_processor.size["height"] == 32


@pytest.mark.parametrize("case", list(CASES))
def test_every_original_key_is_mapped_or_dropped_with_a_reason(case):
    state_dict = load_torch_checkpoint(FIXTURES / CASES[case][0])
    config = json.loads((FIXTURES / CASES[case][1]).read_text())
    from hf_av.conversion.lavish import config_from_original

    model = LavishForAudioVisualEventLocalization(config_from_original(config))
    converted, report = lavish_key_map().convert(state_dict, expected=model.state_dict())
    assert set(converted) == set(model.state_dict())
    dropped = {key for keys in report.dropped_by_reason().values() for key in keys}
    assert dropped | {key for key in state_dict if key not in dropped} == set(state_dict)
    assert all(reason for reason in report.dropped_by_reason())
    assert {key.split(".")[0] for key in dropped} <= {"swin", "adapter_token_downsampler"}


@pytest.mark.parametrize("case", list(CASES))
def test_shapes_alone_give_the_original_config(case):
    """Without --original-config the converter reads the same architecture from the tensor shapes."""
    inferred = infer_original_config(load_torch_checkpoint(FIXTURES / CASES[case][0]))
    given = json.loads((FIXTURES / CASES[case][1]).read_text())
    for key in ("img_size", "patch_size", "window_size", "embed_dim", "depths", "num_heads", "mlp_ratio"):
        assert inferred["swin"][key] == given["swin"][key], key
    for key in ("Adapter_downsample", "num_conv_group", "num_tokens", "is_bn", "is_gate", "is_before_layernorm",
                "is_post_layernorm"):
        assert inferred["opt"][key] == given["opt"][key], key
    assert (inferred["mlp_hidden"], inferred["num_classes"]) == (given["mlp_hidden"], given["num_classes"])


def test_script_as_subprocess_without_original_config(tmp_path, converted):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--checkpoint", str(FIXTURES / "lavish_ave_tiny.pth"),
         "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    ours = load_file(tmp_path / "out" / "model.safetensors")
    theirs = load_file(converted / "tiny" / "model.safetensors")
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)


def test_bad_checkpoints_raise_naming_the_problem(tmp_path):
    state_dict = load_torch_checkpoint(FIXTURES / "lavish_ave_tiny.pth")
    state_dict["surprise.weight"] = torch.zeros(1)
    torch.save(state_dict, tmp_path / "extra.pth")
    with pytest.raises(CheckpointConversionError, match="surprise.weight"):
        from hf_av.conversion.lavish import load_original_model

        load_original_model(tmp_path / "extra.pth", FIXTURES / "config.json")
    assert run_script("--checkpoint", tmp_path / "extra.pth", "--output-dir", tmp_path / "out") == 1
    assert not (tmp_path / "out").exists()
    torch.save({"foo": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointConversionError, match="not an original LAVisH Swin checkpoint"):
        infer_original_config(load_torch_checkpoint(tmp_path / "other.pth"))
    config = json.loads((FIXTURES / "config.json").read_text())
    config["opt"]["vis_encoder_type"] = "vit"
    with pytest.raises(CheckpointConversionError, match="only the Swin-V2 path"):
        from hf_av.conversion.lavish import config_from_original

        config_from_original(config)


def test_window_masks_of_the_checkpoint_must_match_the_config(tmp_path):
    """The dropped attn_mask buffers are checked against the port's masks: a wrong image size is caught."""
    from hf_av.conversion.lavish import load_original_model

    config = json.loads((FIXTURES / "config.json").read_text())
    config["swin"]["img_size"] = 48  # 24 x 24 tokens: other masks than the checkpoint's 16 x 16 grid
    with pytest.raises(CheckpointConversionError, match="attn_mask"):
        load_original_model(FIXTURES / "lavish_ave_tiny.pth", config)
