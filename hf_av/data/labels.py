"""Label encoding for audio-visual streams: single-label, multi-label (multi-hot) and per-second segments."""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

__all__ = ["LabelEncoder"]

_MODES = ("single", "multi", "segment")
_DEFAULT_COLUMN = {"single": "label", "multi": "labels", "segment": "segment_labels"}


def _is_int_like(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalar
        return "int" in str(value.dtype)
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


class LabelEncoder:
    """Turns a row's label fields into the ``labels`` a head expects.

    Modes (``mode``), with the row column each reads by default:

    * ``"single"`` (``label``): one class, name or id -> ``int`` (stacked into a ``LongTensor [B]``).
    * ``"multi"`` (``labels``): several classes -> multi-hot ``FloatTensor [C]`` (BCE / mAP targets).
    * ``"segment"`` (``segment_labels``): one class per second (AVE-style, background is a class)
      -> ``LongTensor [T]``.

    ``label_names`` maps names to ids (index in the list). Without it, ids must be given as integers (or
    digit strings); ``"multi"`` then needs ``num_classes``. ``background_label`` (segment mode) is
    appended to inferred names as the last class, as in AVE (28 events + background = 29 classes).
    """

    def __init__(self, label_names: Optional[Sequence[str]] = None, mode: str = "single",
                 column: Optional[str] = None, background_label: Optional[str] = None,
                 num_classes: Optional[int] = None):
        if mode not in _MODES:
            raise ValueError(f"label mode must be one of {_MODES}, got {mode!r}")
        self.mode = mode
        self.column = column or _DEFAULT_COLUMN[mode]
        self.label_names = list(label_names) if label_names is not None else None
        self.background_label = background_label
        if self.label_names is not None and background_label is not None and background_label not in self.label_names:
            self.label_names.append(background_label)
        self._index: Dict[str, int] = {n: i for i, n in enumerate(self.label_names or [])}
        self.num_classes = len(self.label_names) if self.label_names is not None else num_classes

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping], label_names=None, mode: Optional[str] = None,
                  background_label: Optional[str] = None) -> Optional["LabelEncoder"]:
        """The encoder for a list of rows; the mode is inferred from the columns present
        (``segment_labels`` > ``labels`` > ``label``); ``None`` when the rows carry no label."""
        if mode is None:
            keys = {k for r in rows for k, v in r.items() if v is not None}
            mode = next((m for m in ("segment", "multi", "single") if _DEFAULT_COLUMN[m] in keys), None)
            if mode is None:
                return None
        column = _DEFAULT_COLUMN[mode]
        num_classes = None
        if label_names is None:
            values = []
            for r in rows:
                v = r.get(column)
                if v is None:
                    continue
                values.extend(v if mode != "single" else [v])
            values = [v for v in values if not (background_label is not None and v == background_label)]
            if values and all(_is_int_like(v) for v in values):
                num_classes = max(int(v) for v in values) + 1
            elif values:
                label_names = sorted({str(v) for v in values})
        return cls(label_names=label_names, mode=mode, background_label=background_label, num_classes=num_classes)

    def to_id(self, value) -> int:
        if self._index and str(value) in self._index:
            return self._index[str(value)]
        if _is_int_like(value):
            idx = int(value)
            if self.num_classes is not None and not 0 <= idx < self.num_classes:
                raise ValueError(f"label id {idx} outside [0, {self.num_classes})")
            return idx
        raise ValueError(f"unknown label {value!r} (known: {self.label_names})")

    def __call__(self, row: Mapping):
        import torch

        value = row.get(self.column)
        if value is None:
            return None
        if self.mode == "single":
            return self.to_id(value)
        if isinstance(value, str):
            from .stream import _parse_list_field

            value = _parse_list_field(value)
        ids = [self.to_id(v) for v in value]
        if self.mode == "segment":
            return torch.tensor(ids, dtype=torch.long)
        if self.num_classes is None:
            raise ValueError("multi-label encoding needs label_names or num_classes")
        hot = torch.zeros(self.num_classes, dtype=torch.float32)
        if ids:
            hot[ids] = 1.0
        return hot

    def decode(self, ids) -> List:
        """Ids back to names (ids themselves when there are no names)."""
        if self.label_names is None:
            return [int(i) for i in ids]
        return [self.label_names[int(i)] for i in ids]
