"""Streaming audio-visual sources as ``datasets.IterableDataset``.

A stream is built in two layers:

1. **light rows** (file path or bytes, raw label fields, a sample id) grouped into many small shards by a
   generator (``IterableDataset.from_generator``), or the rows of a user's HF dataset;
2. a ``map`` that decodes and preprocesses each row with the given ``processor`` and encodes its labels.
   Undecodable rows are dropped there (``batched=True, batch_size=1`` lets the map return zero rows) and
   handled by a :class:`~hf_av.data.errors.DecodeErrorPolicy`.

Because decoding happens *after* the rows are split, every DataLoader worker and every distributed rank
decodes only its own rows (``split_by_node`` uses the ``"shards"`` strategy), and ``state_dict()`` /
``load_state_dict()`` of the returned ``IterableDataset`` resume at the next row: a resumed run skips
light rows without decoding them (only the last consumed row is decoded once more, inside the map, and
its output dropped) and sees neither lost nor repeated samples.

Every example the stream yields holds the processor outputs with their batch dimension of 1 removed
(``input_values``, ``pixel_values``, ...), ``labels`` (when the rows carry labels) and ``sample_id``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import DecodeErrorPolicy
from .labels import LabelEncoder

logger = logging.getLogger("hf_av.data")

__all__ = [
    "VIDEO_EXTENSIONS",
    "read_manifest",
    "scan_folder",
    "stream_from_rows",
    "stream_from_manifest",
    "stream_from_folder",
    "stream_from_hf_dataset",
    "split_by_node",
    "stream_label_names",
]

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".wav", ".flac", ".mp3", ".ogg")
_ROW_KEY = "__hf_av_row__"


# ----------------------------------------------------------------------------------------------- rows


def _parse_list_field(value) -> Optional[list]:
    """A csv cell or json value holding a list: JSON list, or items separated by ';' or '|'."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    text = str(value).strip()
    if text == "":
        return None
    if text.startswith("["):
        return list(json.loads(text))
    sep = ";" if ";" in text else ("|" if "|" in text else None)
    return [t.strip() for t in text.split(sep)] if sep else [text]


def read_manifest(path: Union[str, os.PathLike], root: Optional[Union[str, os.PathLike]] = None) -> List[Dict]:
    """Rows of a csv or jsonl manifest.

    Columns: ``path`` (required; relative paths are resolved against ``root``, default the manifest's
    folder), ``label`` (one label: class name or id) or ``labels`` (several: JSON list or ``;``-separated),
    optional ``segment_labels`` (one label per second: JSON list or ``;``-separated). Other columns are kept
    as they are (strings for csv).
    """
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    if path.suffix.lower() in (".jsonl", ".json"):
        with open(path, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
    elif path.suffix.lower() in (".csv", ".tsv"):
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    else:
        raise ValueError(f"Manifest {path} must be .csv, .tsv or .jsonl")
    if rows and "path" not in rows[0]:
        raise ValueError(f"Manifest {path} has no 'path' column (columns: {sorted(rows[0])})")
    for row in rows:
        p = Path(str(row["path"]))
        row["path"] = str(p if p.is_absolute() else root / p)
        for key in ("labels", "segment_labels"):
            if key in row:
                row[key] = _parse_list_field(row[key])
    return rows


def scan_folder(root: Union[str, os.PathLike], extensions: Sequence[str] = VIDEO_EXTENSIONS) -> Tuple[List[Dict], List[str]]:
    """Rows for every media file under ``root``; a file's label is its parent folder's name
    (``root/<class>/<file>``). Files directly in ``root`` get no label. Returns ``(rows, label_names)`` with
    the label names sorted."""
    root = Path(root)
    exts = tuple(e.lower() for e in extensions)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts)
    rows = []
    for p in files:
        row = {"path": str(p)}
        if p.parent != root:
            row["label"] = p.parent.name
        rows.append(row)
    names = sorted({r["label"] for r in rows if "label" in r})
    return rows, names


# ------------------------------------------------------------------------------------------ decoding


def _media_source(value):
    """Path string or bytes from a row value (str, PathLike, bytes, or an HF {'path', 'bytes'} dict)."""
    if isinstance(value, Mapping):
        if value.get("bytes") is not None:
            return value["bytes"]
        if value.get("path") is not None:
            return value["path"]
        raise ValueError(f"media value has neither bytes nor path: keys {sorted(value)}")
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _describe(row: Mapping, input_columns: Mapping[str, str]) -> str:
    if "sample_id" in row and row["sample_id"] is not None:
        return str(row["sample_id"])
    for col in input_columns.values():
        v = row.get(col)
        if isinstance(v, Mapping) and v.get("path"):
            return str(v["path"])
        if isinstance(v, (str, os.PathLike)):
            return str(v)
    return "<bytes>"


def _squeeze_batch(outputs: Mapping[str, Any]) -> Dict[str, Any]:
    result = {}
    for key, value in outputs.items():
        if hasattr(value, "shape") and len(value.shape) >= 1 and value.shape[0] == 1:
            value = value[0]
        elif isinstance(value, list) and len(value) == 1:
            value = value[0]
        result[key] = value
    return result


class _DecodeBatch:
    """The picklable map function: decodes each row of a batch, drops the failures (policy), encodes labels."""

    def __init__(self, processor: Callable, input_columns: Mapping[str, str], label_encoder: Optional[LabelEncoder],
                 policy: DecodeErrorPolicy, processor_kwargs: Optional[Mapping] = None,
                 keep_columns: Sequence[str] = (), id_column: Optional[str] = None):
        self.processor = processor
        self.id_column = id_column
        self.input_columns = dict(input_columns)
        self.label_encoder = label_encoder
        self.policy = policy
        self.processor_kwargs = dict(processor_kwargs or {})
        self.processor_kwargs.setdefault("return_tensors", "pt")
        self.keep_columns = tuple(keep_columns)

    def decode_row(self, row: Mapping) -> Optional[Dict]:
        if self.id_column:
            row = dict(row, sample_id=str(row[self.id_column]))
        sample_id = _describe(row, self.input_columns)
        try:
            inputs = {arg: _media_source(row[col]) for arg, col in self.input_columns.items()}
            outputs = _squeeze_batch(self.processor(**inputs, **self.processor_kwargs))
            if self.label_encoder is not None:
                labels = self.label_encoder(row)
                if labels is not None:
                    outputs["labels"] = labels
        except self.policy.catch as err:  # MediaDecodingError is a ValueError
            self.policy.record_failure(sample_id, err)
            return None
        self.policy.record_success()
        outputs["sample_id"] = sample_id
        for col in self.keep_columns:
            if col in row:
                outputs[col] = row[col]
        return outputs

    def __call__(self, batch: Dict[str, list]) -> Dict[str, list]:
        n = len(next(iter(batch.values()))) if batch else 0
        decoded = [self.decode_row({k: v[i] for k, v in batch.items()}) for i in range(n)]
        decoded = [d for d in decoded if d is not None]
        if not decoded:
            return {}
        return {key: [d[key] for d in decoded] for key in decoded[0]}


def _rows_generator(shards):
    for shard in shards:
        yield from shard


def stream_from_rows(
    rows: Sequence[Mapping],
    processor: Callable,
    *,
    label_names: Optional[Sequence[str]] = None,
    label_mode: Optional[str] = None,
    background_label: Optional[str] = None,
    shuffle: bool = False,
    seed: int = 0,
    max_shards: int = 1024,
    error_policy: Optional[DecodeErrorPolicy] = None,
    processor_kwargs: Optional[Mapping] = None,
    media_column: str = "path",
    processor_input: str = "videos",
    input_columns: Optional[Mapping[str, str]] = None,
    keep_columns: Sequence[str] = (),
):
    """A streaming ``datasets.IterableDataset`` over light ``rows`` (dicts with a media path/bytes column).

    Args:
        rows: dicts with ``media_column`` (path or bytes) and label fields (``label``, ``labels`` or
            ``segment_labels``, see :class:`~hf_av.data.labels.LabelEncoder`).
        processor: a callable such as ``CavMaeProcessor()``: called as
            ``processor(videos=<path or bytes>, return_tensors="pt", **processor_kwargs)`` and returning a dict
            of tensors with a leading batch dimension of 1 (removed in the stream's examples).
        label_names, label_mode, background_label: see :class:`~hf_av.data.labels.LabelEncoder`; the mode is
            inferred from the rows when not given. Label names are inferred (sorted) when not given.
        shuffle, seed: a fixed, seeded permutation of the rows (no shuffle buffer, so resuming is exact).
            Later epochs (``ds.set_epoch(e)``) additionally permute the shard order, seeded by the epoch.
        max_shards: rows are grouped into ``min(len(rows), max_shards)`` contiguous shards; keep it at least
            ``num_workers * world_size`` (DataLoader workers beyond the shard count get nothing).
        error_policy: what to do with undecodable samples (default ``DecodeErrorPolicy()``: skip and log,
            fail when more than 5 % of at least 20 attempted samples failed in a process).
        input_columns: ``{processor keyword: row column}`` when the processor needs several inputs
            (default ``{processor_input: media_column}``).
        keep_columns: row columns copied unchanged into the examples (e.g. ``("mnist_index",)``).
    """
    import datasets

    rows = [dict(r) for r in rows]
    if not rows:
        raise ValueError("no rows to stream")
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(rows))
        rows = [rows[i] for i in order]
    for i, row in enumerate(rows):
        if "sample_id" not in row:
            src = row.get(media_column)
            row["sample_id"] = str(src) if isinstance(src, (str, os.PathLike)) else f"row{i}"
    encoder = LabelEncoder.from_rows(rows, label_names=label_names, mode=label_mode, background_label=background_label)
    num_shards = max(1, min(len(rows), int(max_shards)))
    bounds = np.linspace(0, len(rows), num_shards + 1).round().astype(int)
    shards = [rows[bounds[i]:bounds[i + 1]] for i in range(num_shards)]
    base = datasets.IterableDataset.from_generator(_rows_generator, gen_kwargs={"shards": shards})
    columns = sorted({k for r in rows for k in r})
    fn = _DecodeBatch(processor, input_columns or {processor_input: media_column}, encoder,
                      error_policy if error_policy is not None else DecodeErrorPolicy(),
                      processor_kwargs, keep_columns)
    ds = base.map(fn, batched=True, batch_size=1, remove_columns=columns)
    ds.info.description = json.dumps({"hf_av_label_names": encoder.label_names if encoder else None,
                                      "hf_av_label_mode": encoder.mode if encoder else None})
    return ds


def stream_from_manifest(manifest: Union[str, os.PathLike], processor: Callable, *, root=None, **kwargs):
    """:func:`stream_from_rows` over the rows of a csv/jsonl manifest (see :func:`read_manifest`)."""
    return stream_from_rows(read_manifest(manifest, root=root), processor, **kwargs)


def stream_from_folder(folder: Union[str, os.PathLike], processor: Callable, *,
                       extensions: Sequence[str] = VIDEO_EXTENSIONS, **kwargs):
    """:func:`stream_from_rows` over every media file under ``folder`` (label = parent folder name)."""
    rows, names = scan_folder(folder, extensions)
    if not rows:
        raise ValueError(f"no media files with extensions {tuple(extensions)} under {folder}")
    kwargs.setdefault("label_names", names or None)
    return stream_from_rows(rows, processor, **kwargs)


def stream_from_hf_dataset(
    dataset,
    processor: Callable,
    *,
    video_column: Optional[str] = "video",
    audio_column: Optional[str] = None,
    label_column: Optional[str] = "label",
    label_names: Optional[Sequence[str]] = None,
    label_mode: Optional[str] = None,
    background_label: Optional[str] = None,
    input_columns: Optional[Mapping[str, str]] = None,
    id_column: Optional[str] = None,
    min_shards: int = 64,
    error_policy: Optional[DecodeErrorPolicy] = None,
    processor_kwargs: Optional[Mapping] = None,
    keep_columns: Sequence[str] = (),
):
    """A decoding stream over any HF dataset (``datasets.Dataset`` or streaming ``IterableDataset``) whose
    rows carry media as paths, bytes, or ``{"path", "bytes"}`` dicts (e.g. a ``Video``/``Audio`` column
    cast with ``decode=False``).

    ``video_column`` goes to ``processor(videos=...)`` and ``audio_column`` (if given) to
    ``processor(audio=...)``; ``input_columns`` overrides both with an explicit ``{keyword: column}`` map.
    ``label_column`` holds an int/name (single-label), a list (multi-label) or, with
    ``label_mode="segment"``, one label per second. A map-style ``Dataset`` is turned into an
    ``IterableDataset`` with at least ``min_shards`` shards; a streaming one is resharded when it has fewer
    than ``min_shards`` shards and ``reshard()`` can split it (otherwise its shard count is kept and a
    warning names it).
    """
    import datasets

    if input_columns is None:
        input_columns = {}
        if video_column:
            input_columns["videos"] = video_column
        if audio_column:
            input_columns["audio"] = audio_column
    if not input_columns:
        raise ValueError("give video_column, audio_column or input_columns")
    if isinstance(dataset, datasets.Dataset):
        stream = dataset.to_iterable_dataset(num_shards=max(1, min(len(dataset), int(min_shards))))
    else:
        stream = dataset
        if stream.num_shards < min_shards:
            try:
                stream = stream.reshard()
            except Exception as err:  # noqa: BLE001 - reshard is best-effort
                logger.info("hf_av.data: reshard() not possible (%s)", err)
            if stream.num_shards < min_shards:
                logger.warning("hf_av.data: the dataset has %d shards; DataLoader workers x processes beyond "
                               "that get no data", stream.num_shards)
    encoder = None
    if label_column:
        if label_names is None and isinstance(dataset, datasets.Dataset):
            feat = dataset.features.get(label_column)
            names = getattr(feat, "names", None) or getattr(getattr(feat, "feature", None), "names", None)
            label_names = names
        encoder = LabelEncoder(label_names=label_names, mode=label_mode or "single", column=label_column,
                               background_label=background_label)
        if encoder.label_names is None and encoder.mode != "single":
            raise ValueError("label_names are needed for multi-label or segment labels of an HF dataset")
    mapper = _DecodeBatch(processor, input_columns, encoder,
                          error_policy if error_policy is not None else DecodeErrorPolicy(),
                          processor_kwargs, keep_columns, id_column=id_column)
    columns = stream.column_names
    if columns is None:
        features = getattr(stream, "features", None)
        columns = list(features) if features else None
    if columns is None:
        raise ValueError("the dataset's columns are unknown; give it features (e.g. ds = ds._resolve_features())")
    return stream.map(mapper, batched=True, batch_size=1, remove_columns=list(columns))


def stream_label_names(dataset) -> Optional[List[str]]:
    """The label names a stream built by :func:`stream_from_rows` (manifest, folder) encodes ``labels`` with
    (``None`` when ids were given as integers or the rows had no labels)."""
    try:
        return json.loads(dataset.info.description or "{}").get("hf_av_label_names")
    except (ValueError, AttributeError):
        return None


def split_by_node(dataset, rank: Optional[int] = None, world_size: Optional[int] = None):
    """The part of a stream that process ``rank`` of ``world_size`` decodes (disjoint across ranks).

    Defaults come from ``torch.distributed`` when initialised, else from the ``RANK``/``WORLD_SIZE``
    environment variables that ``accelerate launch``/``torchrun`` set. Uses
    ``datasets.distributed.split_dataset_by_node`` with the ``"shards"`` strategy (whole shards per rank,
    so no rank decodes rows another rank keeps); falls back to ``"examples"`` only if there are fewer shards
    than ranks. With a shard count that is not a multiple of ``world_size`` ranks get unequal shares
    (at most one shard apart); use ``max_steps`` in training.
    """
    from datasets.distributed import split_dataset_by_node

    if rank is None or world_size is None:
        try:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                rank, world_size = dist.get_rank(), dist.get_world_size()
        except ImportError:  # pragma: no cover
            pass
    if rank is None or world_size is None:
        rank = int(os.environ.get("RANK", 0))
        world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size <= 1:
        return dataset
    strategy = "shards" if dataset.num_shards >= world_size else "examples"
    if strategy == "examples":
        logger.warning("hf_av.data: %d shards < %d processes: every process reads every row and keeps 1 of %d",
                       dataset.num_shards, world_size, world_size)
    return split_dataset_by_node(dataset, rank=rank, world_size=world_size, strategy=strategy)
