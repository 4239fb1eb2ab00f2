"""Checkpoint safety for the CAV-MAE converter: safe loading, named failures, atomic output.

Extends ``tests/cav_mae/test_conversion_cav_mae.py`` (which covers one truncation point, a pickle holding a custom
class, a DG-SCT checkpoint, a missing and an unknown key) with: pickles that try to run code, truncation at
several points, garbled bytes, wrong-size tensors and configs, containers that are not state dicts, and a failure
in the middle of writing the output folder.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from hf_av.conversion.cav_mae import convert_cav_mae_checkpoint
from hf_av.errors import CheckpointConversionError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cav-mae"
PRETRAIN = FIXTURES / "cavmae_pretrain_original.pth"
FINETUNE = FIXTURES / "cavmae_finetune_original.pth"
CONFIG = FIXTURES / "config.json"
MARKER = "hf_av_robustness_code_ran"


class _RunsCode:
    """Unpickling this calls os.system (a classic payload); it must never run."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _Eval:
    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


def _no_leftovers(tmp_path):
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def _fails(tmp_path, checkpoint, match, *extra):
    with pytest.raises(CheckpointConversionError, match=match):
        convert_cav_mae_checkpoint(checkpoint, tmp_path / "out", *extra)
    _no_leftovers(tmp_path)


@pytest.mark.parametrize("payload", ["os_system", "eval", "state_dict_with_payload", "raw_pickle_protocol_2"])
def test_code_executing_pickles_are_refused_and_never_run(tmp_path, payload):
    target = tmp_path / MARKER
    path = tmp_path / f"{payload}.pth"
    if payload == "os_system":
        torch.save(_RunsCode(target), path)
    elif payload == "eval":
        torch.save({"model": _Eval()}, path)
    elif payload == "state_dict_with_payload":
        state_dict = torch.load(FINETUNE, weights_only=True)
        state_dict["module.evil"] = _RunsCode(target)
        torch.save(state_dict, path)
    else:  # legacy (non-zip) serialisation
        with open(path, "wb") as handle:
            pickle.dump(_RunsCode(target), handle, protocol=2)
    _fails(tmp_path, path, "executing code|could not be read")
    assert not target.exists(), "the pickle's code ran"


def test_every_load_is_weights_only(monkeypatch, tmp_path):
    seen = []
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    convert_cav_mae_checkpoint(FINETUNE, tmp_path / "out", CONFIG)
    assert seen and all(flag is True for flag in seen)


@pytest.mark.parametrize("fraction", [0.0005, 0.05, 0.25, 0.75, 0.99])
def test_truncated_checkpoints(tmp_path, fraction):
    data = PRETRAIN.read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: max(1, int(len(data) * fraction))])
    _fails(tmp_path, path, "cut.pth could not be read as a PyTorch checkpoint .truncated or corrupt")


@pytest.mark.parametrize("where", ["header", "middle", "central_directory"])
def test_garbled_checkpoints(tmp_path, where):
    data = bytearray(PRETRAIN.read_bytes())
    start = {"header": 0, "middle": len(data) // 2, "central_directory": len(data) - 300}[where]
    data[start:start + 64] = bytes(64)
    path = tmp_path / "garbled.pth"
    path.write_bytes(bytes(data))
    try:
        convert_cav_mae_checkpoint(path, tmp_path / "out", CONFIG)
    except CheckpointConversionError as error:
        assert "garbled.pth" in str(error) or "CAV-MAE" in str(error)
        _no_leftovers(tmp_path)
    else:  # zeroed bytes inside a tensor payload are numerically valid data; the folder must then be complete
        assert (tmp_path / "out" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    "container, match",
    [
        ([1, 2, 3], "holds a list, not a state dict"),
        ({}, "empty state dict"),
        ({"epoch": 3, "lr": 0.1}, "not tensors: epoch, lr"),
        (torch.zeros(3), "holds a Tensor"),
    ],
    ids=["list", "empty", "no_tensors", "bare_tensor"],
)
def test_not_a_state_dict(tmp_path, container, match):
    torch.save(container, tmp_path / "odd.pth")
    _fails(tmp_path, tmp_path / "odd.pth", match)


def test_wrapped_state_dict_is_unwrapped(tmp_path):
    state_dict = torch.load(FINETUNE, weights_only=True)
    torch.save({"state_dict": state_dict, "epoch": 3}, tmp_path / "wrapped.pth")
    assert (convert_cav_mae_checkpoint(tmp_path / "wrapped.pth", tmp_path / "out", CONFIG) / "config.json").is_file()


def test_wrong_size_tensor_names_key_and_shapes(tmp_path):
    state_dict = torch.load(FINETUNE, weights_only=True)
    key = "module.blocks_u.0.mlp.fc1.weight"
    state_dict[key] = torch.zeros(state_dict[key].shape[0] + 1, state_dict[key].shape[1])
    torch.save(state_dict, tmp_path / "resized.pth")
    _fails(tmp_path, tmp_path / "resized.pth", r"shared_layers.0.mlp.fc1.weight: checkpoint \(\d+, \d+\) vs model", CONFIG)


def test_wrong_size_config_names_the_field(tmp_path):
    import json

    config = json.loads(CONFIG.read_text())
    section = config.get("finetune", config)
    section["embed_dim"] = section["embed_dim"] * 2
    (tmp_path / "wrong.json").write_text(json.dumps(config))
    _fails(tmp_path, FINETUNE, "hidden_size: config", tmp_path / "wrong.json")


def test_unreadable_original_config(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    _fails(tmp_path, FINETUNE, "cannot read --original-config", tmp_path / "bad.json")


@pytest.mark.parametrize("stage", ["weights", "processor", "model_card"])
def test_failure_while_writing_leaves_nothing(tmp_path, monkeypatch, stage):
    """A crash in the middle of saving (disk full, killed writer) leaves no folder and keeps an existing one."""
    from hf_av.conversion import cav_mae as module

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if stage == "weights":
        import transformers.modeling_utils

        monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", boom)
    elif stage == "processor":
        monkeypatch.setattr(module, "_save_processor", boom)
    else:
        import hf_av.hub.model_card as card

        monkeypatch.setattr(card, "write_model_card", boom)
    with pytest.raises(OSError, match="No space left"):
        convert_cav_mae_checkpoint(FINETUNE, tmp_path / "out", CONFIG)
    _no_leftovers(tmp_path)

    # An earlier good conversion survives a failed re-conversion untouched.
    monkeypatch.undo()
    convert_cav_mae_checkpoint(FINETUNE, tmp_path / "out", CONFIG)
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    monkeypatch.setattr(module, "_save_processor", boom)
    with pytest.raises(OSError):
        convert_cav_mae_checkpoint(FINETUNE, tmp_path / "out", CONFIG)
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_output_path_that_is_a_file(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(CheckpointConversionError, match="not a directory"):
        convert_cav_mae_checkpoint(FINETUNE, tmp_path / "out", CONFIG)
    assert (tmp_path / "out").read_text() == "a file"


def test_zip_without_data_is_named(tmp_path):
    path = tmp_path / "empty_zip.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/version", "3\n")
    _fails(tmp_path, path, "empty_zip.pth could not be read")
