"""Converter toolkit: key maps as rules with tensor transforms, strict accounting, safe checkpoint reading.

Every family converter describes the original -> hf_av key layout as an ordered list of rules. A rule's source
pattern is a regular expression that must match a whole key; its target is a template expanded with the match
(``\\1``, ``\\g<name>``). The first rule that matches a key decides its fate:

* `rename(pattern, target, transform)`  one source key -> one target key (optionally transformed)
* `split(pattern, targets, dim)`        one source key -> several target keys (e.g. fused ``qkv`` -> q, k, v)
* `concat(patterns, target, dim)`       several source keys -> one target key (e.g. separate q, k, v -> ``in_proj``)
* `drop(pattern, reason)`              the key is left out on purpose; the reason goes into the report

Accounting is strict: a source key no rule matches, a target produced twice, a `concat` with a missing part, and
(when the model's state dict is given) a target the model does not have, a model key nobody produced, or a shape
that differs, all raise `CheckpointConversionError` naming the keys (and shapes). The `ConversionReport` lists
what was mapped and what was dropped with why; scripts print it and model cards cite `report.dropped_by_reason()`.

Composing: ``key_map.with_prefixes("swin.", "visual_encoder.")`` moves every rule under a literal source prefix and
a target prefix; ``map_a + map_b`` concatenates rule lists (e.g. the shared timm Swin-V2 map + a family's adapter
rules); ``report_a.merge(report_b)`` joins reports (e.g. a TF checkpoint's dropped optimizer state + the key map).

Transforms (`Tensor -> Tensor`, named for the report): `transpose` (TF dense kernels ``[in, out]``), `permute`,
`reshape`, `tf_conv1d_kernel` / `tf_conv2d_kernel` / `tf_conv3d_kernel` (TF ``[..., in, out]`` -> torch
``[out, in, ...]``), `compose`. Sources may be numpy arrays (TF checkpoints); they become torch tensors first.

Example::

    from hf_av.conversion.toolkit import KeyMap, drop, rename, split, transpose, load_torch_checkpoint

    key_map = KeyMap([
        drop(r".*\\.relative_position_index", "buffer, recomputed from the window size"),
        split(r"blocks\\.(\\d+)\\.attn\\.qkv\\.weight",
              [r"layers.\\1.attention.query.weight", r"layers.\\1.attention.key.weight",
               r"layers.\\1.attention.value.weight"]),
        rename(r"blocks\\.(\\d+)\\.mlp\\.fc1\\.(weight|bias)", r"layers.\\1.intermediate.dense.\\2"),
        rename(r"dense_(\\d+)/kernel", r"dense\\1.weight", transpose),
    ], name="my original")
    state_dict = load_torch_checkpoint("original.pth")
    converted, report = key_map.convert(state_dict, expected=model.state_dict())
    model.load_state_dict(converted, strict=True)
    print(report.format())
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointConversionError

__all__ = [
    "ConversionReport",
    "KeyMap",
    "Rule",
    "Transform",
    "atomic_output_dir",
    "check_against_model",
    "compose",
    "concat",
    "drop",
    "format_keys",
    "load_torch_checkpoint",
    "permute",
    "rename",
    "reshape",
    "split",
    "strip_prefix",
    "tf_conv1d_kernel",
    "tf_conv2d_kernel",
    "tf_conv3d_kernel",
    "transpose",
]


def format_keys(keys: Iterable[str], limit: int = 20) -> str:
    """Sorted, comma-separated keys, cut after ``limit`` with a count of the rest (for error messages)."""
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{shown}{more}"


# ---------------------------------------------------------------------------------------------------------------
# Transforms


@dataclass(frozen=True)
class Transform:
    """A named tensor transform (the name appears in the report)."""

    name: str
    function: Callable[[torch.Tensor], torch.Tensor]

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.function(tensor)


def permute(*dims: int) -> Transform:
    """``tensor.permute(*dims)``; the tensor must have ``len(dims)`` dimensions."""

    def function(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.dim() != len(dims):
            raise CheckpointConversionError(
                f"permute{dims} expects a {len(dims)}-d tensor, found shape {tuple(tensor.shape)}"
            )
        return tensor.permute(*dims)

    return Transform(f"permute{dims}", function)


def _transpose(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.dim() != 2:
        raise CheckpointConversionError(f"transpose expects a 2-d kernel, found shape {tuple(tensor.shape)}")
    return tensor.t()


transpose = Transform("transpose", _transpose)
"""Swap the two axes of a 2-d tensor: a TF dense kernel ``[in, out]`` becomes a torch Linear weight ``[out, in]``."""

tf_conv1d_kernel = permute(2, 1, 0)
"""TF Conv1D kernel ``[width, in, out]`` -> torch Conv1d weight ``[out, in, width]``."""

tf_conv2d_kernel = permute(3, 2, 0, 1)
"""TF Conv2D kernel ``[height, width, in, out]`` -> torch Conv2d weight ``[out, in, height, width]``."""

tf_conv3d_kernel = permute(4, 3, 0, 1, 2)
"""TF Conv3D kernel ``[time, height, width, in, out]`` -> torch Conv3d weight ``[out, in, time, height, width]``."""


def reshape(*shape: int) -> Transform:
    """``tensor.reshape(*shape)`` (one dimension may be -1); a size mismatch names both shapes."""

    def function(tensor: torch.Tensor) -> torch.Tensor:
        try:
            return tensor.reshape(*shape)
        except RuntimeError as error:
            raise CheckpointConversionError(
                f"cannot reshape a tensor of shape {tuple(tensor.shape)} to {shape}"
            ) from error

    return Transform(f"reshape{shape}", function)


def compose(*transforms: Transform) -> Transform:
    """Apply ``transforms`` left to right."""

    def function(tensor: torch.Tensor) -> torch.Tensor:
        for transform in transforms:
            tensor = transform(tensor)
        return tensor

    return Transform(" then ".join(t.name for t in transforms), function)


# ---------------------------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True)
class Rule:
    """One line of a key map; build it with `rename`, `split`, `concat` or `drop` rather than directly.

    ``patterns`` has one regex (rename / split / drop) or one per part (concat); ``targets`` has one template
    (rename / concat), several (split) or none (drop).
    """

    kind: str
    patterns: tuple[str, ...]
    targets: tuple[str, ...] = ()
    transform: Transform | None = None
    dim: int = 0
    sizes: tuple[int, ...] | None = None
    reason: str = ""
    _compiled: tuple[re.Pattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            compiled = tuple(re.compile(p) for p in self.patterns)
        except re.error as error:
            raise ValueError(f"invalid key-map pattern in {self.patterns}: {error}") from error
        object.__setattr__(self, "_compiled", compiled)

    def match(self, key: str) -> tuple[int, re.Match] | None:
        """``(part index, match)`` of the first pattern that matches all of ``key``, else None."""
        for index, pattern in enumerate(self._compiled):
            found = pattern.fullmatch(key)
            if found:
                return index, found
        return None

    def with_prefixes(self, source_prefix: str = "", target_prefix: str = "") -> Rule:
        """The same rule for keys that start with the literal ``source_prefix``, targets under ``target_prefix``."""
        return Rule(
            kind=self.kind,
            # (?:...) keeps a pattern with a top-level "|" entirely under the prefix; group numbers are unchanged.
            patterns=tuple(f"{re.escape(source_prefix)}(?:{p})" for p in self.patterns),
            targets=tuple(target_prefix + t for t in self.targets),
            transform=self.transform,
            dim=self.dim,
            sizes=self.sizes,
            reason=self.reason,
        )


def rename(pattern: str, target: str, transform: Transform | None = None) -> Rule:
    """One source key (full match of ``pattern``) -> the target template expanded with the match."""
    return Rule("rename", (pattern,), (target,), transform=transform)


def split(
    pattern: str,
    targets: Sequence[str],
    dim: int = 0,
    sizes: Sequence[int] | None = None,
    transform: Transform | None = None,
) -> Rule:
    """One source key -> ``len(targets)`` target keys, cut along ``dim`` into equal parts or the given ``sizes``.

    ``transform`` applies to the whole source tensor before the cut (e.g. `transpose` for a fused TF kernel).
    """
    if len(targets) < 2:
        raise ValueError("split needs at least two targets")
    if sizes is not None and len(sizes) != len(targets):
        raise ValueError(f"split: {len(sizes)} sizes for {len(targets)} targets")
    return Rule(
        "split", (pattern,), tuple(targets), transform=transform, dim=dim,
        sizes=None if sizes is None else tuple(sizes),
    )


def concat(patterns: Sequence[str], target: str, dim: int = 0, transform: Transform | None = None) -> Rule:
    """Several source keys (one per pattern, in this order) -> one target key, concatenated along ``dim``.

    Every pattern must expand ``target`` to the same key for parts that belong together; ``transform`` applies to
    each part before concatenation.
    """
    if len(patterns) < 2:
        raise ValueError("concat needs at least two source patterns")
    return Rule("concat", tuple(patterns), (target,), transform=transform, dim=dim)


def drop(pattern: str, reason: str) -> Rule:
    """Source keys matching ``pattern`` are left out on purpose, for ``reason`` (shown in the report)."""
    if not reason:
        raise ValueError("every dropped key needs a reason")
    return Rule("drop", (pattern,), reason=reason)


# ---------------------------------------------------------------------------------------------------------------
# Report


@dataclass
class ConversionReport:
    """What a conversion did: each mapping (sources -> targets, transform) and each dropped key with its reason."""

    name: str = "checkpoint"
    mapped: list[tuple[tuple[str, ...], tuple[str, ...], str]] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def num_source_keys(self) -> int:
        return sum(len(sources) for sources, _, _ in self.mapped) + len(self.dropped)

    @property
    def num_target_keys(self) -> int:
        return sum(len(targets) for _, targets, _ in self.mapped)

    def dropped_by_reason(self) -> dict[str, list[str]]:
        """``{reason: [dropped keys]}`` in first-seen order (what a model card cites)."""
        grouped: dict[str, list[str]] = {}
        for key, reason in self.dropped:
            grouped.setdefault(reason, []).append(key)
        return grouped

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "num_source_keys": self.num_source_keys,
            "num_target_keys": self.num_target_keys,
            "mapped": [
                {"sources": list(sources), "targets": list(targets), "transform": transform}
                for sources, targets, transform in self.mapped
            ],
            "dropped": [{"key": key, "reason": reason} for key, reason in self.dropped],
        }

    def format(self, verbose: bool = False, limit: int = 5) -> str:
        """Human-readable summary; ``verbose`` lists every mapping, otherwise counts and a few dropped keys."""
        lines = [
            f"{self.name}: {self.num_source_keys} source keys -> {self.num_target_keys} target keys "
            f"({len(self.mapped)} mappings), {len(self.dropped)} dropped"
        ]
        if verbose:
            for sources, targets, transform in self.mapped:
                suffix = f" [{transform}]" if transform else ""
                lines.append(f"  {', '.join(sources)} -> {', '.join(targets)}{suffix}")
        for reason, keys in self.dropped_by_reason().items():
            shown = keys if verbose else keys[:limit]
            more = "" if len(shown) == len(keys) else f", ... ({len(keys) - len(shown)} more)"
            lines.append(f"  dropped {len(keys)} ({reason}): {', '.join(shown)}{more}")
        return "\n".join(lines)

    def merge(self, other: ConversionReport) -> ConversionReport:
        """One report for a conversion done in parts (e.g. backbone map + head map)."""
        return ConversionReport(self.name, self.mapped + other.mapped, self.dropped + other.dropped)


# ---------------------------------------------------------------------------------------------------------------
# Key map


def _as_tensor(value: Any, key: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        try:
            return torch.from_numpy(np.array(value, copy=True))
        except TypeError as error:  # e.g. a string tensor of a TF checkpoint
            raise CheckpointConversionError(f"source entry {key!r} of dtype {value.dtype} is not numeric") from error
    raise CheckpointConversionError(f"source entry {key!r} is a {type(value).__name__}, not a tensor or array")


def _shape_of(value: Any) -> tuple[int, ...]:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return tuple(value.shape)
    return tuple(value)  # a torch.Size or plain tuple


def check_against_model(
    converted: Mapping[str, Any], expected: Mapping[str, Any], what: str = "checkpoint"
) -> None:
    """Strict-load check: name missing keys (model keys not produced), unexpected keys (produced keys the model
    does not have) and shape mismatches (``key: checkpoint <found> vs model <expected>``).

    ``expected`` maps every model key to a tensor or a shape (``model.state_dict()`` works).
    """
    missing = set(expected) - set(converted)
    unexpected = set(converted) - set(expected)
    mismatched = [
        f"{key}: checkpoint {_shape_of(converted[key])} vs model {_shape_of(expected[key])}"
        for key in sorted(set(converted) & set(expected))
        if _shape_of(converted[key]) != _shape_of(expected[key])
    ]
    problems = []
    if missing:
        problems.append(f"missing key(s) {format_keys(missing)}")
    if unexpected:
        problems.append(f"unexpected key(s) {format_keys(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch(es) {'; '.join(mismatched[:20])}")
    if problems:
        raise CheckpointConversionError(f"{what} does not fit the model: " + " | ".join(problems))


class KeyMap:
    """An ordered list of rules; `convert` applies them to a whole state dict with strict accounting."""

    def __init__(self, rules: Iterable[Rule], name: str = "checkpoint"):
        self.rules = list(rules)
        self.name = name

    def __add__(self, other: KeyMap) -> KeyMap:
        return KeyMap(self.rules + other.rules, self.name)

    def with_prefixes(self, source_prefix: str = "", target_prefix: str = "") -> KeyMap:
        """All rules moved under a literal source prefix (e.g. ``"swin."``) and a target prefix."""
        return KeyMap([r.with_prefixes(source_prefix, target_prefix) for r in self.rules], self.name)

    def convert(
        self,
        state_dict: Mapping[str, Any],
        expected: Mapping[str, Any] | None = None,
        allow_unmatched: bool = False,
    ) -> tuple[dict[str, torch.Tensor], ConversionReport]:
        """Map ``state_dict`` (tensors or numpy arrays) to target keys; return ``(converted, report)``.

        With ``expected`` (the model's state dict, or ``{key: shape}``), the result must provide exactly the
        model's keys with the model's shapes. ``allow_unmatched=True`` returns keys no rule matches in
        ``converted`` under their source names unchanged instead of raising -- for converters that apply
        several key maps in turn; the final step must be strict.
        """
        report = ConversionReport(self.name)
        converted: dict[str, torch.Tensor] = {}
        produced_from: dict[str, str] = {}
        pending_parts: dict[tuple[int, str], dict[int, tuple[str, torch.Tensor]]] = {}
        unmatched: list[str] = []

        def emit(target: str, tensor: torch.Tensor, source: str) -> None:
            if target in converted:
                raise CheckpointConversionError(
                    f"{self.name}: target key {target!r} is produced twice (from {produced_from[target]!r} and "
                    f"{source!r})"
                )
            converted[target] = tensor.contiguous()
            produced_from[target] = source

        for key, value in state_dict.items():
            for rule_index, rule in enumerate(self.rules):
                found = rule.match(key)
                if found is not None:
                    break
            else:
                unmatched.append(key)
                continue
            part, match = found
            if rule.kind == "drop":
                report.dropped.append((key, rule.reason))
                continue
            tensor = _as_tensor(value, key)
            transform_name = rule.transform.name if rule.transform else ""
            if rule.kind == "concat":
                target = match.expand(rule.targets[0])
                parts = pending_parts.setdefault((rule_index, target), {})
                if part in parts:
                    raise CheckpointConversionError(
                        f"{self.name}: {parts[part][0]!r} and {key!r} are both part {part} of {target!r}"
                    )
                parts[part] = (key, rule.transform(tensor) if rule.transform else tensor)
                continue
            if rule.transform is not None:
                try:
                    tensor = rule.transform(tensor)
                except CheckpointConversionError as error:
                    raise CheckpointConversionError(f"{self.name}: {key}: {error}") from error
            if rule.kind == "rename":
                target = match.expand(rule.targets[0])
                emit(target, tensor, key)
                report.mapped.append(((key,), (target,), transform_name))
            else:  # split
                targets = tuple(match.expand(t) for t in rule.targets)
                pieces = self._split(key, tensor, rule, len(targets))
                for target, piece in zip(targets, pieces):
                    emit(target, piece, key)
                report.mapped.append(((key,), targets, transform_name))

        incomplete = []
        for (rule_index, target), parts in pending_parts.items():
            rule = self.rules[rule_index]
            if len(parts) != len(rule.patterns):
                missing = [rule.patterns[i] for i in range(len(rule.patterns)) if i not in parts]
                incomplete.append(f"{target} (found {[parts[i][0] for i in sorted(parts)]}, missing {missing})")
                continue
            sources = tuple(parts[i][0] for i in range(len(rule.patterns)))
            tensors = [parts[i][1] for i in range(len(rule.patterns))]
            try:
                joined = torch.cat(tensors, dim=rule.dim)
            except RuntimeError as error:
                shapes = [tuple(t.shape) for t in tensors]
                raise CheckpointConversionError(
                    f"{self.name}: cannot concatenate {list(sources)} (shapes {shapes}) along dim {rule.dim} into "
                    f"{target!r}"
                ) from error
            emit(target, joined, " + ".join(sources))
            report.mapped.append((sources, (target,), rule.transform.name if rule.transform else ""))
        if incomplete:
            raise CheckpointConversionError(f"{self.name}: incomplete concatenation(s): {'; '.join(incomplete)}")

        if unmatched:
            if not allow_unmatched:
                raise CheckpointConversionError(
                    f"{len(unmatched)} key(s) of the {self.name} are neither mapped nor deliberately dropped: "
                    f"{format_keys(unmatched)} (a checkpoint of another model or variant?)"
                )
            for key in unmatched:
                if key in converted:
                    raise CheckpointConversionError(f"{self.name}: unmatched key {key!r} collides with a target")
                converted[key] = _as_tensor(state_dict[key], key)
        if expected is not None:
            check_against_model(converted, expected, what=self.name)
        return converted, report

    def _split(self, key: str, tensor: torch.Tensor, rule: Rule, count: int) -> tuple[torch.Tensor, ...]:
        length = tensor.shape[rule.dim] if -tensor.dim() <= rule.dim < tensor.dim() else None
        if length is None:
            raise CheckpointConversionError(
                f"{self.name}: {key} of shape {tuple(tensor.shape)} has no dim {rule.dim} to split"
            )
        sizes = rule.sizes
        if sizes is None:
            if length % count:
                raise CheckpointConversionError(
                    f"{self.name}: {key} of shape {tuple(tensor.shape)} does not split into {count} equal parts "
                    f"along dim {rule.dim}"
                )
            sizes = (length // count,) * count
        elif sum(sizes) != length:
            raise CheckpointConversionError(
                f"{self.name}: {key} of shape {tuple(tensor.shape)}: split sizes {sizes} do not add up to {length}"
            )
        return torch.split(tensor, list(sizes), dim=rule.dim)


# ---------------------------------------------------------------------------------------------------------------
# Reading PyTorch checkpoints

# Container keys training scripts wrap a state dict in; unwrapped when the top level holds no tensors.
_STATE_DICT_CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net")


def strip_prefix(state_dict: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Remove ``prefix`` (e.g. DataParallel's ``"module."``) from every key that has it; other keys are kept."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def load_torch_checkpoint(path: str | os.PathLike, strip_module_prefix: bool = True) -> dict[str, torch.Tensor]:
    """Read a PyTorch checkpoint safely (``torch.load(weights_only=True, map_location="cpu")``) into a flat dict.

    Unwraps a state dict nested under a common container key (``state_dict``, ``model``, ...) and, with
    ``strip_module_prefix``, the ``module.`` prefix of (Distributed)DataParallel when every key has it. Raises
    `CheckpointConversionError` for a missing or empty file, a truncated / corrupt file, a pickle that needs code
    execution (refused by ``weights_only=True``; the message says how to re-save), or content that is not a flat
    ``{name: tensor}`` state dict.
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
            f"{path} is not a plain state dict: these entries are not tensors: {format_keys(map(str, not_tensors))}"
        )
    if not obj:
        raise CheckpointConversionError(f"{path} holds an empty state dict")
    state_dict = dict(obj)
    if strip_module_prefix and all(k.startswith("module.") for k in state_dict):
        state_dict = strip_prefix(state_dict, "module.")
    return state_dict


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
