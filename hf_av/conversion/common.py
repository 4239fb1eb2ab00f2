"""Compatibility layer: the general converter helpers now live in `hf_av.conversion.toolkit`.

New converters use the toolkit's rule API (`KeyMap`, `rename`, `split`, `concat`, `drop`, transforms,
`ConversionReport`). This module keeps the older ``(regex, replacement)`` interface that the CAV-MAE converter uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .toolkit import (
    KeyMap,
    atomic_output_dir,
    check_against_model,
    drop,
    load_torch_checkpoint,
    rename,
    strip_prefix,
)


def load_original_state_dict(path) -> dict[str, torch.Tensor]:
    """`load_torch_checkpoint` without stripping ``module.`` (the CAV-MAE converter strips it itself)."""
    return load_torch_checkpoint(path, strip_module_prefix=False)


def apply_key_map(
    state_dict: Mapping[str, torch.Tensor],
    rules: Sequence[tuple[str, str]],
    dropped: Sequence[str] = (),
    what: str = "checkpoint",
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename keys with the first matching ``(regex, replacement)`` rule; keys matching ``dropped`` are left out.

    Returns ``(converted, dropped_keys)``; unknown keys raise `CheckpointConversionError` (see `KeyMap.convert`).
    """
    key_map = KeyMap(
        [drop(pattern, "dropped by the converter") for pattern in dropped]
        + [rename(pattern, replacement) for pattern, replacement in rules],
        name=what,
    )
    converted, report = key_map.convert(state_dict)
    return converted, [key for key, _ in report.dropped]


__all__ = [
    "apply_key_map",
    "atomic_output_dir",
    "check_against_model",
    "load_original_state_dict",
    "strip_prefix",
]
