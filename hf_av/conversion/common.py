"""Helpers shared by every checkpoint converter: safe reading, key mapping with an explicit drop list, atomic output.

Reading: original checkpoints are opened with ``torch.load(..., map_location="cpu", weights_only=True)``, which
never executes code from the file. Files that need code execution to unpickle, truncated or corrupt files and
files that hold something other than a flat ``{name: tensor}`` state dict raise `CheckpointConversionError` with
the reason.

Key mapping: a converter lists ordered ``(regex, replacement)`` rules and the regexes of keys it drops on purpose;
every original key must match exactly one of the two, otherwise the error names the unknown keys. After mapping,
the converted keys are compared with the target model's state dict and missing keys / shape mismatches are named.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

from ..errors import CheckpointConversionError

# Container keys some training scripts wrap the state dict in; unwrapped when they hold the only tensors.
_STATE_DICT_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "module")


def _format_keys(keys: Iterable[str], limit: int = 20) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{shown}{more}"


def load_original_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a PyTorch checkpoint safely into a flat ``{name: tensor}`` dict on the CPU.

    Raises `CheckpointConversionError` for a missing file, a truncated / corrupt file, a pickle that needs code
    execution (``weights_only=True`` refuses it; the message says so), or content that is not a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointConversionError(f"checkpoint file not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointConversionError(f"checkpoint file is empty: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointConversionError(
            f"{path} contains Python objects that can only be loaded by executing code from the file; hf_av only "
            f"reads plain tensor checkpoints (torch.load(weights_only=True)). Re-save the state dict with "
            f"torch.save(model.state_dict(), ...) in the original environment. Details: {error}"
        ) from error
    except (EOFError, zipfile.BadZipFile, RuntimeError, OSError, ValueError) as error:
        raise CheckpointConversionError(
            f"{path} could not be read as a PyTorch checkpoint (truncated or corrupt download?): "
            f"{type(error).__name__}: {error}"
        ) from error

    if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in _STATE_DICT_CONTAINER_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise CheckpointConversionError(f"{path} holds a {type(obj).__name__}, not a state dict of tensors")
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointConversionError(
            f"{path} is not a plain state dict: these entries are not tensors: {_format_keys(map(str, not_tensors))}"
        )
    if not obj:
        raise CheckpointConversionError(f"{path} holds an empty state dict")
    return dict(obj)


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Remove ``prefix`` (e.g. DataParallel's ``"module."``) from every key that has it; other keys are kept."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def apply_key_map(
    state_dict: Mapping[str, torch.Tensor],
    rules: Sequence[tuple[str, str]],
    dropped: Sequence[str] = (),
    what: str = "checkpoint",
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename every key with the first matching ``(regex, replacement)`` rule (full match).

    Keys fully matching a regex in ``dropped`` are left out on purpose and returned as the second value. Any key
    matching neither raises `CheckpointConversionError` naming the keys (a checkpoint of another model, or of a
    variant this converter does not know).
    """
    compiled_rules = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    compiled_dropped = [re.compile(pattern) for pattern in dropped]
    converted: dict[str, torch.Tensor] = {}
    dropped_keys: list[str] = []
    unknown: list[str] = []
    for key, tensor in state_dict.items():
        if any(p.fullmatch(key) for p in compiled_dropped):
            dropped_keys.append(key)
            continue
        for pattern, replacement in compiled_rules:
            if pattern.fullmatch(key):
                new_key = pattern.sub(replacement, key)
                if new_key in converted:
                    raise CheckpointConversionError(f"two {what} keys map to {new_key!r} (second: {key!r})")
                converted[new_key] = tensor
                break
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointConversionError(
            f"{len(unknown)} key(s) of the {what} are neither mapped nor deliberately dropped: {_format_keys(unknown)}"
        )
    return converted, dropped_keys


def check_against_model(
    converted: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], what: str = "checkpoint"
) -> None:
    """Raise `CheckpointConversionError` naming missing, unexpected and wrongly-shaped keys (strict load)."""
    missing = set(expected) - set(converted)
    unexpected = set(converted) - set(expected)
    mismatched = [
        f"{k}: checkpoint {tuple(converted[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(converted) & set(expected))
        if tuple(converted[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing key(s) {_format_keys(missing)}")
    if unexpected:
        problems.append(f"unexpected key(s) {_format_keys(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch(es) {'; '.join(mismatched[:20])}")
    if problems:
        raise CheckpointConversionError(f"{what} does not fit the model: " + " | ".join(problems))


@contextmanager
def atomic_output_dir(output_dir: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``output_dir``; on success it replaces ``output_dir``.

    On any exception the temporary directory is removed and ``output_dir`` is left untouched, so a failed
    conversion never leaves a half-written model behind. An existing non-empty ``output_dir`` is replaced only with
    ``overwrite=True`` (the previous content is moved aside first and deleted after the swap).
    """
    output_dir = Path(output_dir).absolute()
    if output_dir.exists() and not output_dir.is_dir():
        raise CheckpointConversionError(f"output path exists and is not a directory: {output_dir}")
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise CheckpointConversionError(f"output directory is not empty: {output_dir}")
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.tmp-", dir=output_dir.parent))
    try:
        yield staging
        backup = None
        if output_dir.exists():
            backup = output_dir.parent / f".{output_dir.name}.old-{os.getpid()}"
            os.replace(output_dir, backup)
        os.replace(staging, output_dir)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


__all__ = [
    "apply_key_map",
    "atomic_output_dir",
    "check_against_model",
    "load_original_state_dict",
    "strip_prefix",
]
