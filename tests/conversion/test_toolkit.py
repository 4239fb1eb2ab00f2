"""The converter toolkit: rules, transforms, strict accounting, report, safe checkpoint reading."""

import numpy as np
import pytest
import torch

from hf_av.conversion import common
from hf_av.conversion.toolkit import (
    ConversionReport,
    KeyMap,
    check_against_model,
    compose,
    concat,
    drop,
    load_torch_checkpoint,
    permute,
    rename,
    reshape,
    split,
    tf_conv1d_kernel,
    tf_conv2d_kernel,
    tf_conv3d_kernel,
    transpose,
)
from hf_av.errors import CheckpointConversionError


def test_rename_split_concat_drop_and_report():
    qkv = torch.arange(24.0).reshape(6, 4)
    source = {
        "blocks.0.qkv.weight": qkv,
        "blocks.0.q": torch.ones(2),
        "blocks.0.k": torch.zeros(3),
        "blocks.0.mask": torch.zeros(1),
        "dense/kernel": np.arange(6, dtype=np.float32).reshape(2, 3),  # TF layout [in, out]
    }
    key_map = KeyMap(
        [
            drop(r".*\.mask", "buffer"),
            split(r"blocks\.(\d+)\.qkv\.weight", [r"l.\1.query", r"l.\1.key", r"l.\1.value"]),
            concat([r"blocks\.(\d+)\.q", r"blocks\.(\d+)\.k"], r"l.\1.in_proj"),
            rename(r"dense/kernel", "dense.weight", transpose),
        ],
        name="toy",
    )
    converted, report = key_map.convert(source)
    torch.testing.assert_close(converted["l.0.query"], qkv[:2])
    torch.testing.assert_close(converted["l.0.key"], qkv[2:4])
    torch.testing.assert_close(converted["l.0.value"], qkv[4:])
    torch.testing.assert_close(converted["l.0.in_proj"], torch.tensor([1.0, 1, 0, 0, 0]))
    torch.testing.assert_close(converted["dense.weight"], torch.arange(6.0).reshape(2, 3).t())
    assert set(converted) == {"l.0.query", "l.0.key", "l.0.value", "l.0.in_proj", "dense.weight"}
    assert report.dropped == [("blocks.0.mask", "buffer")]
    assert report.num_source_keys == len(source) and report.num_target_keys == 5
    assert report.dropped_by_reason() == {"buffer": ["blocks.0.mask"]}
    assert (("blocks.0.q", "blocks.0.k"), ("l.0.in_proj",), "") in report.mapped
    text = report.format(verbose=True)
    assert "dense/kernel -> dense.weight [transpose]" in text and "dropped 1 (buffer): blocks.0.mask" in text
    assert report.to_dict()["dropped"] == [{"key": "blocks.0.mask", "reason": "buffer"}]
    assert isinstance(report.merge(ConversionReport("other", dropped=[("x", "y")])), ConversionReport)


def test_split_with_sizes_and_transform():
    fused = torch.arange(10.0).reshape(2, 5)  # TF [in, out] with out = 2 + 3
    converted, _ = KeyMap([split("w", ["a", "b"], sizes=[2, 3], transform=transpose)]).convert({"w": fused})
    torch.testing.assert_close(converted["a"], fused.t()[:2])
    torch.testing.assert_close(converted["b"], fused.t()[2:])
    assert converted["a"].is_contiguous()
    with pytest.raises(CheckpointConversionError, match=r"w of shape \(5, 2\) does not split into 3 equal parts"):
        KeyMap([split("w", ["a", "b", "c"], transform=transpose)]).convert({"w": fused})
    with pytest.raises(CheckpointConversionError, match=r"split sizes \(1, 1\) do not add up to 5"):
        KeyMap([split("w", ["a", "b"], sizes=[1, 1], transform=transpose)]).convert({"w": fused})


def test_tf_kernel_permutes_match_torch_convolution_semantics():
    # A TF kernel applied as TF does it (channels-last correlation) equals torch's conv with the permuted kernel.
    generator = torch.Generator().manual_seed(0)
    kernel_3d = torch.randn(2, 3, 3, 4, 5, generator=generator)  # [t, h, w, in, out]
    video = torch.randn(1, 4, 4, 5, 5, generator=generator)  # [batch, in, t, h, w]
    expected = torch.einsum("bcthw,thwco->bo", video[:, :, :2, :3, :3], kernel_3d)
    found = torch.nn.functional.conv3d(video, tf_conv3d_kernel(kernel_3d))[:, :, 0, 0, 0]
    torch.testing.assert_close(found, expected, atol=1e-5, rtol=1e-5)
    kernel_2d = torch.randn(3, 2, 4, 5, generator=generator)  # [h, w, in, out]
    image = torch.randn(1, 4, 3, 2, generator=generator)
    expected = torch.einsum("bchw,hwco->bo", image, kernel_2d)
    torch.testing.assert_close(torch.nn.functional.conv2d(image, tf_conv2d_kernel(kernel_2d))[:, :, 0, 0], expected)
    kernel_1d = torch.randn(3, 4, 5, generator=generator)  # [w, in, out]
    wave = torch.randn(1, 4, 3, generator=generator)
    expected = torch.einsum("bcw,wco->bo", wave, kernel_1d)
    torch.testing.assert_close(torch.nn.functional.conv1d(wave, tf_conv1d_kernel(kernel_1d))[:, :, 0], expected)
    with pytest.raises(CheckpointConversionError, match=r"permute\(4, 3, 0, 1, 2\) expects a 5-d tensor"):
        KeyMap([rename("k", "w", tf_conv3d_kernel)]).convert({"k": kernel_2d})


def test_reshape_compose_and_permute():
    x = torch.arange(12.0)
    converted, report = KeyMap([rename("x", "y", compose(reshape(3, 4), transpose))]).convert({"x": x})
    torch.testing.assert_close(converted["y"], x.reshape(3, 4).t())
    assert report.mapped[0][2] == "reshape(3, 4) then transpose"
    torch.testing.assert_close(permute(1, 0)(x.reshape(3, 4)), x.reshape(3, 4).t())
    with pytest.raises(CheckpointConversionError, match=r"cannot reshape a tensor of shape \(12,\) to \(5, 5\)"):
        KeyMap([rename("x", "y", reshape(5, 5))]).convert({"x": x})


def test_unaccounted_duplicate_and_incomplete_keys_are_named():
    with pytest.raises(CheckpointConversionError, match="neither mapped nor deliberately dropped: b, c"):
        KeyMap([rename("a", "x")]).convert({"a": torch.ones(1), "b": torch.ones(1), "c": torch.ones(1)})
    with pytest.raises(CheckpointConversionError, match="target key 'x' is produced twice.*'a'.*'b'"):
        KeyMap([rename("a|b", "x")]).convert({"a": torch.ones(1), "b": torch.ones(1)})
    with pytest.raises(CheckpointConversionError, match=r"incomplete concatenation.*l\.1\.in.*missing"):
        KeyMap([concat([r"(\d)\.q", r"(\d)\.k"], r"l.\1.in")]).convert(
            {"0.q": torch.ones(1), "0.k": torch.ones(1), "1.q": torch.ones(1)}
        )
    with pytest.raises(CheckpointConversionError, match="'a' of dtype object is not numeric"):
        KeyMap([rename("a", "x")]).convert({"a": np.array([b"text"], dtype=object)})
    with pytest.raises(CheckpointConversionError, match="not a tensor or array"):
        KeyMap([rename("a", "x")]).convert({"a": [1.0]})
    with pytest.raises(ValueError, match="needs a reason"):
        drop("a", "")
    converted, _ = KeyMap([rename("a", "x")]).convert({"a": torch.ones(1), "b": torch.zeros(1)}, allow_unmatched=True)
    assert set(converted) == {"x", "b"}


def test_target_keys_checked_against_the_model():
    model = torch.nn.Linear(3, 2)
    key_map = KeyMap([rename(r"fc\.(weight|bias)", r"\1")])
    converted, _ = key_map.convert({"fc.weight": torch.ones(2, 3), "fc.bias": torch.ones(2)}, model.state_dict())
    model.load_state_dict(converted, strict=True)
    with pytest.raises(CheckpointConversionError, match="missing key.s. bias"):
        key_map.convert({"fc.weight": torch.ones(2, 3)}, expected=model.state_dict())
    with pytest.raises(CheckpointConversionError, match=r"weight: checkpoint \(3, 2\) vs model \(2, 3\)"):
        key_map.convert({"fc.weight": torch.ones(3, 2), "fc.bias": torch.ones(2)}, expected=model.state_dict())
    with pytest.raises(CheckpointConversionError, match="unexpected key.s. extra"):
        check_against_model({"weight": torch.ones(2, 3), "bias": torch.ones(2), "extra": torch.ones(1)},
                            {"weight": (2, 3), "bias": torch.Size([2])})


def test_prefixes():
    key_map = KeyMap([rename(r"norm\.(weight|bias)", r"layernorm.\1"), drop(r"head\..*", "unused")])
    converted, report = key_map.with_prefixes("swin.", "visual.").convert(
        {"swin.norm.weight": torch.ones(1), "swin.head.bias": torch.ones(1)}
    )
    assert list(converted) == ["visual.layernorm.weight"] and report.dropped == [("swin.head.bias", "unused")]
    either = KeyMap([rename(r"a|(b)", "x")]).with_prefixes("p.", "q.")
    assert list(either.convert({"p.b": torch.ones(1)})[0]) == ["q.x"]
    with pytest.raises(CheckpointConversionError, match="neither mapped"):  # the prefix applies to both branches
        either.convert({"b": torch.ones(1)})
    with pytest.raises(CheckpointConversionError, match="norm.weight"):  # the prefix is literal and required
        key_map.with_prefixes("swin.", "").convert({"norm.weight": torch.ones(1)})


def test_load_torch_checkpoint_unwraps_and_fails_clearly(tmp_path):
    tensors = {"a.weight": torch.ones(2), "b": torch.zeros(1)}
    torch.save({"state_dict": {f"module.{k}": v for k, v in tensors.items()}, "epoch": 3}, tmp_path / "wrapped.pth")
    loaded = load_torch_checkpoint(tmp_path / "wrapped.pth")
    assert set(loaded) == set(tensors)
    assert set(load_torch_checkpoint(tmp_path / "wrapped.pth", strip_module_prefix=False)) == {"module.a.weight",
                                                                                               "module.b"}
    torch.save({"model": tensors}, tmp_path / "model.pth")
    assert set(load_torch_checkpoint(tmp_path / "model.pth")) == set(tensors)
    with pytest.raises(CheckpointConversionError, match="not found"):
        load_torch_checkpoint(tmp_path / "nope.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointConversionError, match="empty"):
        load_torch_checkpoint(tmp_path / "empty.pth")
    data = (tmp_path / "model.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointConversionError, match="truncated or corrupt"):
        load_torch_checkpoint(tmp_path / "cut.pth")
    torch.save({"state_dict": torch.nn.Linear(1, 1)}, tmp_path / "module.pth")
    with pytest.raises(CheckpointConversionError, match="executing code"):
        load_torch_checkpoint(tmp_path / "module.pth")
    torch.save({"a": torch.ones(1), "step": 3}, tmp_path / "mixed.pth")
    with pytest.raises(CheckpointConversionError, match="not tensors: step"):
        load_torch_checkpoint(tmp_path / "mixed.pth")


def test_common_keeps_the_old_interface():
    converted, dropped = common.apply_key_map({"a.x": torch.ones(1), "b": torch.ones(1)}, [(r"a\.(.*)", r"z.\1")],
                                              dropped=["b"])
    assert list(converted) == ["z.x"] and dropped == ["b"]
