"""Read TensorFlow 2 object-based checkpoints (``ckpt-N.index`` + ``ckpt-N.data-*``) into numpy, without TensorFlow.

A TF checkpoint is a "tensor bundle": the ``.index`` file is a LevelDB-format table (sorted keys, prefix-compressed
blocks, a 48-byte footer) whose values are ``BundleEntryProto`` messages (dtype, shape, shard, offset, size); the
``.data-SSSSS-of-NNNNN`` shards hold the raw little-endian tensor bytes. This module parses both directly, so users
converting VATT do not need the 500 MB TensorFlow package; tests/conversion/test_tf_checkpoint.py proves it reads
exactly what ``tf.train.load_checkpoint`` reads on the four VATT fixture checkpoints.

* `read_tensor_bundle(prefix, select=None)`: the entries (all, or those ``select(key)`` accepts) as
  ``{checkpoint key: np.ndarray}`` (string tensors as object arrays of bytes, bfloat16 widened to float32 exactly).
* `list_tensor_bundle(prefix)`: ``{checkpoint key: shape}`` from the index alone (to infer a config cheaply).
* `load_tf_checkpoint(prefix)`: model variables only, keyed by variable path (the checkpoint key without the
  ``/.ATTRIBUTES/VARIABLE_VALUE`` suffix), plus a `ConversionReport` listing what was left out and why: optimizer
  slots (``.OPTIMIZER_SLOT``), optimizer state (``optimizer/...``), ``save_counter`` and the object graph.

``prefix`` is what TensorFlow calls the checkpoint path (``.../ckpt-500000``); the ``.index`` file's path and a
directory holding a ``checkpoint`` state file are accepted too.

Example::

    from hf_av.conversion.tf_checkpoint import load_tf_checkpoint
    from hf_av.conversion.toolkit import KeyMap, rename, transpose

    variables, report = load_tf_checkpoint("vatt_checkpoints/ckpt-500000")
    # {"model/layer_with_weights-0/_base/agg_embedding": array([...], dtype=float32), ...}
    converted, mapped = KeyMap([...]).convert(variables, expected=model.state_dict())
    print(report.merge(mapped).format())
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import CheckpointConversionError
from .toolkit import ConversionReport

__all__ = ["list_tensor_bundle", "load_tf_checkpoint", "read_tensor_bundle", "resolve_checkpoint_prefix"]

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5  # compression type byte + crc32c
_VARIABLE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"

# TensorFlow DataType enum -> numpy dtype (little-endian); bfloat16 (14) is handled separately.
_NUMPY_DTYPES = {
    1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 4: np.dtype("u1"), 5: np.dtype("<i2"),
    6: np.dtype("i1"), 8: np.dtype("<c8"), 9: np.dtype("<i8"), 10: np.dtype("?"), 17: np.dtype("<u2"),
    18: np.dtype("<c16"), 19: np.dtype("<f2"), 22: np.dtype("<u4"), 23: np.dtype("<u8"),
}
_DT_STRING = 7
_DT_BFLOAT16 = 14


class _Corrupt(Exception):
    """Internal: a parse went past the end of a buffer or met an impossible value."""


def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(buffer) or shift > 63:
            raise _Corrupt("truncated varint")
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, position


def _protobuf_fields(message: bytes) -> list[tuple[int, int | bytes]]:
    """``[(field number, value)]`` of a serialized protobuf: varints as int, length-delimited as bytes."""
    fields = []
    position = 0
    while position < len(message):
        tag, position = _varint(message, position)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, position = _varint(message, position)
        elif wire_type == 2:
            length, position = _varint(message, position)
            value = message[position:position + length]
            if len(value) != length:
                raise _Corrupt("truncated field")
            position += length
        elif wire_type == 5:
            value = int.from_bytes(message[position:position + 4], "little")
            position += 4
        elif wire_type == 1:
            value = int.from_bytes(message[position:position + 8], "little")
            position += 8
        else:
            raise _Corrupt(f"unsupported protobuf wire type {wire_type}")
        fields.append((number, value))
    if position != len(message):
        raise _Corrupt("truncated message")
    return fields


def _block_entries(table: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` entries of one table block (uncompressed, keys prefix-compressed)."""
    if offset + size + _BLOCK_TRAILER_SIZE > len(table) or size < 4:
        raise _Corrupt("block outside the file")
    compression = table[offset + size]
    if compression != 0:
        raise _Corrupt(f"compressed table block (type {compression}); TensorFlow writes bundles uncompressed")
    block = table[offset:offset + size]
    num_restarts = struct.unpack_from("<I", block, size - 4)[0]
    entries_end = size - 4 - 4 * num_restarts
    if entries_end < 0:
        raise _Corrupt("bad restart count")
    entries = []
    key = b""
    position = 0
    while position < entries_end:
        shared, position = _varint(block, position)
        unshared, position = _varint(block, position)
        value_length, position = _varint(block, position)
        if shared > len(key) or position + unshared + value_length > entries_end:
            raise _Corrupt("bad block entry")
        key = key[:shared] + block[position:position + unshared]
        position += unshared
        entries.append((key, block[position:position + value_length]))
        position += value_length
    return entries


def _table_entries(table: bytes) -> list[tuple[bytes, bytes]]:
    if len(table) < _FOOTER_SIZE:
        raise _Corrupt("file shorter than a table footer")
    footer = table[-_FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, _FOOTER_SIZE - 8)[0] != _TABLE_MAGIC:
        raise _Corrupt("no table magic number at the end of the file")
    position = 0
    _, position = _varint(footer, position)  # metaindex handle (unused by tensor bundles)
    _, position = _varint(footer, position)
    index_offset, position = _varint(footer, position)
    index_size, position = _varint(footer, position)
    entries = []
    for _, handle in _block_entries(table, index_offset, index_size):
        block_offset, next_position = _varint(handle, 0)
        block_size, _ = _varint(handle, next_position)
        entries.extend(_block_entries(table, block_offset, block_size))
    return entries


def resolve_checkpoint_prefix(path: str | os.PathLike) -> Path:
    """The checkpoint prefix for ``path``: a prefix, its ``.index`` file, or a directory with a ``checkpoint`` file.

    Raises `CheckpointConversionError` naming the files looked for when there is no checkpoint there.
    """
    path = Path(path)
    if path.is_dir():
        state = path / "checkpoint"
        found = re.search(r'^model_checkpoint_path:\s*"(.*)"', state.read_text(), re.M) if state.is_file() else None
        if found is None:
            raise CheckpointConversionError(
                f"{path} is a directory without a TensorFlow 'checkpoint' state file; pass the checkpoint prefix "
                f"(e.g. {path}/ckpt-500000)"
            )
        path = path / found.group(1) if not Path(found.group(1)).is_absolute() else Path(found.group(1))
    if path.name.endswith(".index"):
        path = path.with_name(path.name[: -len(".index")])
    elif re.search(r"\.data-\d{5}-of-\d{5}$", path.name):
        path = path.with_name(re.sub(r"\.data-\d{5}-of-\d{5}$", "", path.name))
    index = path.with_name(path.name + ".index")
    data = path.with_name(path.name + ".data-00000-of-00001")
    if not index.is_file():
        raise CheckpointConversionError(
            f"no TensorFlow checkpoint at {path}: looked for {index} and {data}"
            + ("" if data.is_file() else " (neither exists)")
        )
    return path


def _decode_entry(key: str, message: bytes) -> dict:
    entry = {"dtype": 0, "shape": [], "shard_id": 0, "offset": 0, "size": 0, "sliced": False}
    for number, value in _protobuf_fields(message):
        if number == 1:
            entry["dtype"] = value
        elif number == 2:
            for shape_field, dim in _protobuf_fields(value):
                if shape_field == 2:
                    size = dict(_protobuf_fields(dim)).get(1, 0)
                    entry["shape"].append(size - (1 << 64) if size >= 1 << 63 else size)
                elif shape_field == 3 and dim:
                    raise _Corrupt(f"{key}: tensor of unknown rank")
        elif number == 3:
            entry["shard_id"] = value
        elif number == 4:
            entry["offset"] = value
        elif number == 5:
            entry["size"] = value
        elif number == 7:
            entry["sliced"] = True
    return entry


def _decode_strings(raw: bytes, count: int) -> np.ndarray:
    lengths = []
    position = 0
    for _ in range(count):
        length, position = _varint(raw, position)
        lengths.append(length)
    position += 4  # crc32c of the lengths
    values = np.empty(count, dtype=object)
    for i, length in enumerate(lengths):
        values[i] = raw[position:position + length]
        position += length
    if position != len(raw):
        raise _Corrupt("string tensor size does not match its lengths")
    return values


def _read_index(prefix: Path) -> tuple[Path, int, dict[str, dict]]:
    """``(index path, number of data shards, {key: decoded BundleEntryProto})`` of a resolved prefix."""
    index_path = prefix.with_name(prefix.name + ".index")
    try:
        entries = _table_entries(index_path.read_bytes())
    except (_Corrupt, struct.error) as error:
        raise CheckpointConversionError(
            f"{index_path} is not a TensorFlow checkpoint index (or is damaged): {error}"
        ) from error
    header = None
    tensors: dict[str, dict] = {}
    try:
        for raw_key, message in entries:
            if raw_key == b"":
                header = dict(_protobuf_fields(message))
            else:
                key = raw_key.decode("utf-8")
                tensors[key] = _decode_entry(key, message)
    except (_Corrupt, UnicodeDecodeError) as error:
        raise CheckpointConversionError(f"{index_path}: damaged checkpoint entry: {error}") from error
    if header is None:
        raise CheckpointConversionError(f"{index_path} has no tensor-bundle header: not a TensorFlow checkpoint")
    if header.get(2, 0) != 0:
        raise CheckpointConversionError(f"{index_path}: big-endian checkpoints are not supported")
    return index_path, header.get(1, 1), tensors


def list_tensor_bundle(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """``{checkpoint key: shape}`` of every tensor, read from the index only (like ``tf.train.list_variables``)."""
    _, _, tensors = _read_index(resolve_checkpoint_prefix(path))
    return {key: tuple(entry["shape"]) for key, entry in tensors.items()}


def _decode_tensor(index_path: Path, key: str, entry: dict, raw: bytes) -> np.ndarray:
    shape = tuple(entry["shape"])
    count = int(np.prod(shape, dtype=np.int64))
    dtype = entry["dtype"]
    try:
        if dtype == _DT_STRING:
            return _decode_strings(raw, count).reshape(shape)
        if dtype == _DT_BFLOAT16:
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            return bits.view(np.float32).reshape(shape)
        if dtype in _NUMPY_DTYPES:
            return np.frombuffer(raw, dtype=_NUMPY_DTYPES[dtype]).reshape(shape).copy()
    except (ValueError, _Corrupt) as error:
        raise CheckpointConversionError(
            f"{index_path}: {key} holds {len(raw)} bytes, which do not fit shape {shape}: {error}"
        ) from error
    raise CheckpointConversionError(f"{index_path}: {key} has TensorFlow dtype {dtype}, not supported")


def read_tensor_bundle(
    path: str | os.PathLike, select: Callable[[str], bool] | None = None
) -> dict[str, np.ndarray]:
    """The tensors of a TF checkpoint as ``{checkpoint key: np.ndarray}`` (see the module docstring).

    ``select(key)`` picks the tensors to read (default: all); others are never read from the data files, so
    leaving out optimizer slots saves their memory.

    Raises `CheckpointConversionError` for a missing prefix (naming the ``.index`` and ``.data`` files looked for),
    a file that is not a checkpoint index, a missing or truncated data shard (naming the tensor and the sizes),
    partitioned (sliced) variables and data types the reader does not know.
    """
    prefix = resolve_checkpoint_prefix(path)
    index_path, num_shards, tensors = _read_index(prefix)
    result: dict[str, np.ndarray] = {}
    shards: dict[int, tuple[Path, object, int]] = {}
    # The last byte any entry of a shard needs: a shorter file is an incomplete download even when the tensors
    # asked for happen to be intact.
    shard_ends: dict[int, tuple[int, str]] = {}
    for key, entry in tensors.items():
        end = entry["offset"] + entry["size"]
        if end >= shard_ends.get(entry["shard_id"], (0, ""))[0]:
            shard_ends[entry["shard_id"]] = (end, key)
    try:
        for key, entry in tensors.items():
            if select is not None and not select(key):
                continue
            if entry["sliced"]:
                raise CheckpointConversionError(
                    f"{index_path}: {key} is a partitioned (sliced) variable; not supported"
                )
            shard_id = entry["shard_id"]
            if shard_id not in shards:
                shard_path = prefix.with_name(f"{prefix.name}.data-{shard_id:05d}-of-{num_shards:05d}")
                if not shard_path.is_file():
                    raise CheckpointConversionError(
                        f"checkpoint data file missing: {shard_path} (index: {index_path})"
                    )
                shard_size = shard_path.stat().st_size
                end, last_key = shard_ends[shard_id]
                if end > shard_size:
                    raise CheckpointConversionError(
                        f"{shard_path} is truncated: {last_key} needs bytes up to {end} but the file has "
                        f"{shard_size} bytes (incomplete download?)"
                    )
                shards[shard_id] = (shard_path, open(shard_path, "rb"), shard_size)
            shard_path, shard, _ = shards[shard_id]
            start, size = entry["offset"], entry["size"]
            shard.seek(start)
            result[key] = _decode_tensor(index_path, key, entry, shard.read(size))
    finally:
        for _, handle, _ in shards.values():
            handle.close()
    return result


def _drop_reason(key: str) -> str | None:
    if key == "_CHECKPOINTABLE_OBJECT_GRAPH":
        return "TensorFlow object graph (checkpoint metadata)"
    if "/.OPTIMIZER_SLOT/" in key:
        return "optimizer slot (training state)"
    if key.startswith("optimizer/"):
        return "optimizer state (training state)"
    if key.startswith("save_counter/"):
        return "checkpoint save counter"
    if not key.endswith(_VARIABLE_SUFFIX):
        return "not a variable value"
    return None


def load_tf_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], ConversionReport]:
    """Model variables of a TF2 object-based checkpoint as ``{variable path: np.ndarray}``, and the report.

    The variable path is the checkpoint key without ``/.ATTRIBUTES/VARIABLE_VALUE``. The report lists every
    other entry as dropped with its reason (dropped tensors are never read from disk); merge it with the key map's
    report (`ConversionReport.merge`).
    """
    prefix = resolve_checkpoint_prefix(path)
    report = ConversionReport(name=f"TF checkpoint {prefix.name}")
    for key in list_tensor_bundle(prefix):
        reason = _drop_reason(key)
        if reason is not None:
            report.dropped.append((key, reason))
    variables = {
        key[: -len(_VARIABLE_SUFFIX)]: value
        for key, value in read_tensor_bundle(prefix, select=lambda key: _drop_reason(key) is None).items()
    }
    if not variables:
        raise CheckpointConversionError(f"{prefix} holds no model variables (only {len(report.dropped)} other entries)")
    return variables, report
