"""Which parameters train: a list of glob patterns over parameter names, everything else frozen.

`freeze_except(model, ["adapter_blocks.*", "classifier.*"])` sets `requires_grad` from the patterns
(`fnmatch` globs matched against the full names of `model.named_parameters()`; `*` also crosses dots) and returns
a `TrainableReport` with the trainable / total counts and the names each pattern matched. A pattern that matches
no parameter is an error naming it: a misspelt pattern must not silently freeze the part it meant to train.

The policy only freezes: a parameter the model itself keeps fixed (`requires_grad=False` at construction, e.g.
CAV-MAE's sin-cos position tables) stays fixed even when a pattern matches it, and `patterns=None` changes nothing.
Apply the policy to a model as built or loaded (the training entry point does).

Only `requires_grad` changes. Train/eval mode of the frozen parts is left alone, as the originals do: LAVisH and
DG-SCT freeze their Swin-V2 / HTS-AT backbones by `requires_grad=False` and then call `model.train()` on the whole
model, so DropPath inside the frozen backbone stays active in training and BatchNorm layers of frozen parts (HTS-AT's
`bn0`) keep updating their running statistics. Put a frozen part in eval mode yourself if you want it fixed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase

from torch import nn


@dataclass(frozen=True)
class TrainableReport:
    """Outcome of a trainable-parameter policy.

    Attributes:
        patterns: the policy (None: every parameter trains).
        trainable: number of trainable parameter elements.
        total: number of parameter elements (shared tensors counted once).
        trainable_names: names of the trainable parameters, in model order.
        matched: pattern -> names it matched (empty for `patterns=None`).
    """

    patterns: tuple[str, ...] | None
    trainable: int
    total: int
    trainable_names: tuple[str, ...]
    matched: dict[str, tuple[str, ...]]

    @property
    def frozen(self) -> int:
        return self.total - self.trainable

    @property
    def trainable_fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def summary(self) -> str:
        policy = ", ".join(self.patterns) if self.patterns is not None else "everything"
        return (
            f"trainable parameters: {self.trainable:,} of {self.total:,} ({100 * self.trainable_fraction:.2f}%; "
            f"{len(self.trainable_names)} tensors) - policy: {policy}"
        )

    def to_dict(self) -> dict:
        """JSON-ready (tuples as lists)."""
        data = asdict(self)
        data["patterns"] = list(self.patterns) if self.patterns is not None else None
        data["trainable_names"] = list(self.trainable_names)
        data["matched"] = {pattern: list(names) for pattern, names in self.matched.items()}
        data["trainable_fraction"] = self.trainable_fraction
        return data


def _parameters_by_tensor(model: nn.Module) -> list[tuple[nn.Parameter, list[str]]]:
    """Each parameter tensor once, with every name it has (tied weights have several)."""
    by_id: dict[int, tuple[nn.Parameter, list[str]]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        by_id.setdefault(id(parameter), (parameter, []))[1].append(name)
    return list(by_id.values())


def trainable_report(model: nn.Module, patterns: Iterable[str] | None = None) -> TrainableReport:
    """The report of `model` as it is (no change); `patterns` is only recorded."""
    trainable = total = 0
    names: list[str] = []
    for parameter, parameter_names in _parameters_by_tensor(model):
        total += parameter.numel()
        if parameter.requires_grad:
            trainable += parameter.numel()
            names.append(parameter_names[0])
    patterns = tuple(patterns) if patterns is not None else None
    return TrainableReport(patterns, trainable, total, tuple(names), {})


def freeze_except(model: nn.Module, patterns: Iterable[str] | None) -> TrainableReport:
    """Train only the parameters whose name matches one of `patterns`; freeze the others.

    Args:
        model: any `nn.Module` (names as `model.named_parameters()` gives them, e.g. `classifier.weight`).
        patterns: fnmatch globs (case-sensitive). None: every parameter the model trains keeps training (no change).
            A tied parameter trains when any of its names matches.

    Raises:
        ValueError: `patterns` is empty or a string, or a pattern matches no parameter (the message names it and
            shows some parameter names).
    """
    if patterns is None:
        return trainable_report(model)
    if isinstance(patterns, str):
        raise ValueError(f"patterns must be a list of glob patterns, got the string {patterns!r}")
    patterns = tuple(patterns)
    if not patterns:
        raise ValueError(
            "an empty trainable-parameter policy freezes every parameter; give patterns, or None to train all"
        )
    tensors = _parameters_by_tensor(model)
    matched: dict[str, list[str]] = {pattern: [] for pattern in patterns}
    trains: list[bool] = []
    for _, names in tensors:
        hit = False
        for name in names:
            for pattern in patterns:
                if fnmatchcase(name, pattern):
                    matched[pattern].append(name)
                    hit = True
        trains.append(hit)
    unmatched = [pattern for pattern, names in matched.items() if not names]
    if unmatched:
        examples = ", ".join(names[0] for _, names in tensors[:8])
        raise ValueError(
            f"trainable-parameter pattern(s) {unmatched} match no parameter of {type(model).__name__} "
            f"(names look like: {examples}, ...)"
        )
    # applied only once every pattern is known to match, so a failed call leaves the model unchanged
    for (parameter, _), hit in zip(tensors, trains):
        if not hit:
            parameter.requires_grad_(False)
    report = trainable_report(model, patterns)
    return TrainableReport(
        report.patterns, report.trainable, report.total, report.trainable_names,
        {pattern: tuple(names) for pattern, names in matched.items()},
    )


__all__ = ["TrainableReport", "freeze_except", "trainable_report"]
