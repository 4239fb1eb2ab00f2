"""The tensor-bundle reader equals TensorFlow's own checkpoint reader; bad checkpoints give clear errors.

TensorFlow (``tensorflow-cpu``) is part of the ``dev`` extra, so this test runs in CI; hf_av itself never needs it.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_av.conversion.tf_checkpoint import (
    _block_entries,
    _varint,
    list_tensor_bundle,
    load_tf_checkpoint,
    read_tensor_bundle,
    resolve_checkpoint_prefix,
)
from hf_av.conversion.toolkit import KeyMap, rename, tf_conv1d_kernel, tf_conv3d_kernel, transpose
from hf_av.errors import CheckpointConversionError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
try:
    import tensorflow as tf
except ImportError as error:  # not a skip: the equality proof must run wherever the test suite runs
    raise ImportError("test_tf_checkpoint.py needs tensorflow-cpu (pip install -e '.[dev]')") from error

VATT = Path(__file__).parent.parent / "fixtures" / "vatt"
# The four tiny checkpoints saved by the original VATT TF2 code (see /research and the fixture README).
CHECKPOINTS = {"tx_fac": "ckpt-500000", "ut_fac": "ckpt-500000", "video_cls": "ckpt-100000", "audio_cls": "ckpt-100000"}


def _assert_same_as_tensorflow(prefix):
    reader = tf.train.load_checkpoint(str(prefix))
    expected_keys = set(reader.get_variable_to_shape_map())
    ours = read_tensor_bundle(prefix)
    assert set(ours) == expected_keys
    assert list_tensor_bundle(prefix) == {key: tuple(shape) for key, shape in tf.train.list_variables(str(prefix))}
    for key in expected_keys:
        expected = reader.get_tensor(key)
        if isinstance(expected, bytes):  # scalar string tensor, e.g. the object graph
            assert ours[key].shape == () and ours[key].item() == expected, key
        elif expected.dtype == object:
            assert ours[key].shape == expected.shape and list(ours[key].flat) == list(expected.flat), key
        else:
            assert ours[key].dtype == expected.dtype and ours[key].shape == expected.shape, key
            np.testing.assert_array_equal(ours[key], expected, err_msg=key)  # bit-exact
    return ours


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_reader_equals_tensorflow_on_the_vatt_checkpoints(name):
    prefix = VATT / name / CHECKPOINTS[name]
    everything = _assert_same_as_tensorflow(prefix)
    variables, report = load_tf_checkpoint(prefix)
    # Model variables only, keyed by variable path; everything else reported as dropped with its reason.
    assert all(k.startswith("model/") and "OPTIMIZER_SLOT" not in k for k in variables)
    assert {f"{k}/.ATTRIBUTES/VARIABLE_VALUE" for k in variables} | {k for k, _ in report.dropped} == set(everything)
    reasons = report.dropped_by_reason()
    assert reasons["TensorFlow object graph (checkpoint metadata)"] == ["_CHECKPOINTABLE_OBJECT_GRAPH"]
    slots = reasons["optimizer slot (training state)"]
    assert slots and {key.split("/.OPTIMIZER_SLOT/")[0] for key in slots} <= set(variables)  # slots of kept variables
    assert reasons["checkpoint save counter"] == ["save_counter/.ATTRIBUTES/VARIABLE_VALUE"]
    assert all(k.startswith("optimizer/") for k in reasons["optimizer state (training state)"])
    only_graph = read_tensor_bundle(prefix, select=lambda key: key == "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert list(only_graph) == ["_CHECKPOINTABLE_OBJECT_GRAPH"]
    # The directory (through its `checkpoint` state file) and the .index path name the same checkpoint.
    assert resolve_checkpoint_prefix(VATT / name) == prefix
    assert resolve_checkpoint_prefix(f"{prefix}.index") == prefix


def test_reader_equals_tensorflow_on_other_dtypes_and_multi_block_indexes(tmp_path):
    # Enough variables that the index table spans several blocks, in every dtype a model checkpoint may hold.
    generator = np.random.default_rng(0)
    variables = {
        f"weight_{i:04d}_{'with_a_long_name_to_fill_several_index_blocks_' * 3}": tf.Variable(
            generator.normal(size=(i % 3 + 1, 2))
        )
        for i in range(2500)
    }
    for dtype in (tf.float16, tf.bfloat16, tf.float64, tf.int32, tf.int64, tf.int8, tf.uint8, tf.bool):
        variables[f"typed_{dtype.name}"] = tf.Variable(tf.cast(generator.normal(size=(3, 4)) * 10, dtype))
    variables["scalar"] = tf.Variable(3.5)
    variables["empty"] = tf.Variable(tf.zeros((0, 4)))
    variables["strings"] = tf.Variable(tf.constant([b"a", b"", b"longer string"]))
    prefix = tf.train.Checkpoint(**variables).write(str(tmp_path / "ckpt"))
    ours = read_tensor_bundle(prefix)
    reader = tf.train.load_checkpoint(prefix)
    for key in reader.get_variable_to_shape_map():
        expected = reader.get_tensor(key)
        if key.startswith("typed_bfloat16"):  # numpy has no bfloat16: widened exactly to float32
            np.testing.assert_array_equal(ours[key], np.asarray(expected, dtype=np.float32))
        elif key.startswith("strings"):
            assert list(ours[key]) == list(expected)
        elif not isinstance(expected, bytes):
            assert ours[key].dtype == expected.dtype and ours[key].shape == expected.shape, key
            np.testing.assert_array_equal(ours[key], expected)
    index = Path(f"{prefix}.index").read_bytes()
    assert _count_data_blocks(index) > 1, "the test meant to cover an index spanning several table blocks"


def _count_data_blocks(index):
    """Entries of the table's index block, one per data block (the footer holds the index block's handle)."""
    footer = index[-48:]
    _, position = _varint(footer, 0)  # metaindex handle, unused
    _, position = _varint(footer, position)
    offset, position = _varint(footer, position)
    size, _ = _varint(footer, position)
    return len(_block_entries(index, offset, size))


def test_bad_checkpoints_fail_clearly(tmp_path):
    looked_for = r"looked for .*ckpt-7\.index and .*ckpt-7\.data-00000-of-00001"
    with pytest.raises(CheckpointConversionError, match=looked_for):
        load_tf_checkpoint(tmp_path / "ckpt-7")
    with pytest.raises(CheckpointConversionError, match="without a TensorFlow 'checkpoint' state file"):
        load_tf_checkpoint(tmp_path)

    source = VATT / "audio_cls"
    copy = tmp_path / "audio_cls"
    shutil.copytree(source, copy)
    data = copy / "ckpt-100000.data-00000-of-00001"
    full = data.read_bytes()
    truncated = r"data-00000-of-00001 is truncated: .* needs bytes up to \d+ but the file has \d+ bytes"
    for cut in (len(full) // 2, len(full) - 1):  # even when only the last byte is missing
        data.write_bytes(full[:cut])
        with pytest.raises(CheckpointConversionError, match=truncated):
            load_tf_checkpoint(copy)
    data.unlink()
    with pytest.raises(CheckpointConversionError, match="checkpoint data file missing: .*data-00000-of-00001"):
        load_tf_checkpoint(copy)

    not_checkpoint = tmp_path / "model.index"
    not_checkpoint.write_bytes(b"PK\x03\x04 this is a zip or a .pth, not a tensor bundle" * 4)
    with pytest.raises(CheckpointConversionError, match="model.index is not a TensorFlow checkpoint index"):
        read_tensor_bundle(tmp_path / "model")
    (tmp_path / "short.index").write_bytes(b"x")
    with pytest.raises(CheckpointConversionError, match="short.index is not a TensorFlow checkpoint index"):
        read_tensor_bundle(tmp_path / "short")
    index = (copy / "ckpt-100000.index").read_bytes()
    (tmp_path / "damaged.index").write_bytes(index[:100] + b"\xff" * 400 + index[500:])
    with pytest.raises(CheckpointConversionError, match="damaged"):
        read_tensor_bundle(tmp_path / "damaged")


def test_toolkit_transforms_on_vatt_kernels_reproduce_tensorflow_ops():
    # The real VATT patch and dense kernels, converted by toolkit rules, give in torch what TF computes with them.
    variables, _ = load_tf_checkpoint(VATT / "tx_fac")
    base = "model/layer_with_weights-0/_base_layer"
    converted, _ = KeyMap(
        [
            rename(rf"{base}/vid_backbone/_base/voxel_to_patch/kernel", "voxel", tf_conv3d_kernel),
            rename(rf"{base}/aud_backbone/_base/wave_to_patch/kernel", "wave", tf_conv1d_kernel),
            rename(rf"{base}/vid_backbone/_base/tx/layers/0/mha/q/kernel", "query", transpose),
        ],
        name="VATT kernels",
    ).convert(variables, allow_unmatched=True)
    generator = np.random.default_rng(0)

    video = generator.normal(size=(2, 4, 32, 32, 3)).astype(np.float32)  # TF layout [B, T, H, W, C]
    kernel = variables[f"{base}/vid_backbone/_base/voxel_to_patch/kernel"]
    expected = tf.nn.conv3d(video, kernel, strides=[1, 2, 8, 8, 1], padding="VALID").numpy()
    found = torch.nn.functional.conv3d(torch.from_numpy(video).permute(0, 4, 1, 2, 3), converted["voxel"],
                                       stride=(2, 8, 8))
    np.testing.assert_allclose(found.permute(0, 2, 3, 4, 1).numpy(), expected, rtol=0, atol=1e-5)

    audio = generator.normal(size=(2, 256, 1)).astype(np.float32)  # TF layout [B, L, 1]
    kernel = variables[f"{base}/aud_backbone/_base/wave_to_patch/kernel"]
    expected = tf.nn.conv1d(audio, kernel, stride=16, padding="VALID").numpy()
    found = torch.nn.functional.conv1d(torch.from_numpy(audio).permute(0, 2, 1), converted["wave"], stride=16)
    np.testing.assert_allclose(found.permute(0, 2, 1).numpy(), expected, rtol=0, atol=1e-5)

    tokens = generator.normal(size=(3, 32)).astype(np.float32)
    expected = tf.matmul(tokens, variables[f"{base}/vid_backbone/_base/tx/layers/0/mha/q/kernel"]).numpy()
    found = torch.nn.functional.linear(torch.from_numpy(tokens), converted["query"])
    np.testing.assert_allclose(found.numpy(), expected, rtol=0, atol=1e-5)
