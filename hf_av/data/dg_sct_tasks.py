"""Training data for DG-SCT's other downstream tasks, read from the original datasets' own layouts.

Three readers turn an annotation file into light rows, and three decoders (called by the stream's map, see
`hf_av.data.stream`) turn each row into model inputs with the family processor. A missing or unreadable file is a
decoding failure: the stream's `DecodeErrorPolicy` skips the clip, names the file and fails past its threshold. A
malformed annotation line is an `AnnotationError` at read time, naming the file and the line.

Layouts (paths as the original dataloaders of haoyi-duan/DG-SCT read them; every media path is relative to the
dataset folder, by default the folder the reader names below):

* **LLP / AVVP** (`AVVP/dataloader.py`, `AVVP/main.py`), dataset folder = the annotation file's folder
  (`data/AVVP/`)::

      AVVP_train.csv, AVVP_val_pd.csv, AVVP_test_pd.csv   tab-separated, header; first column `filename`
                                                          (`<11-char YouTube id>_<start>_<end>`), last column
                                                          `event_labels` (comma-separated class names): weak labels
      AVVP_eval_audio.csv, AVVP_eval_visual.csv           tab-separated `filename onset offset event_labels`: one
                                                          annotated event per line, seconds [onset, offset)
      LLP_dataset/frame/<id>/00000001.jpg ...             one frame per 1-s segment (frames 1..10 are read)
      LLP_dataset/wave/<id>.npy                           10 s of mono audio at 32 kHz (320000 float samples)
      LLP_dataset/feats/r2plus1d_18/<id>.npy              (10, 512) R(2+1)D-18 clip features (`visual_st`)

* **MUSIC-AVQA** (`AVQA/net_grd_avst/dataloader_avst.py`, `AVQA/train.sh`), dataset folder = the parent of the
  json folder (`data/AVQA/`)::

      json/avqa-train.json, avqa-val.json, avqa-test.json  a list of {video_id, question_id, question_content (with
                                                          `<Object>`-style slots), templ_values (a list literal),
                                                          anser}; the question and answer vocabularies come from
                                                          avqa-train.json
      frames/<video_id>/00000001.jpg ...                   frames; `linspace(1, n, 10)` of them are read
      audio_wave/<video_id>.npy                            10 s of mono audio at 32 kHz

* **AVSBench S4** (`AVS/avs_scripts/avs_s4/dataloader.py`, `config.py`), dataset folder = the metadata file's folder
  (`Single-source/`)::

      s4_meta_data.csv                                     comma-separated, header; first column the video name,
                                                          third the category, a `split` column (train/val/test)
      s4_data/visual_frames/<split>/<category>/<name>/<name>_1.png .. _5.png   five 224 x 224 frames
      s4_data/gt_masks/<split>/<category>/<name>/<name>_1.png ...              binary masks: frame 1 only for
                                                                              train, all five otherwise
      s4_data/audio_wav/<split>/<category>/<name>.wav                          the 5-s sound

  (DG-SCT's loader reads the same sound from a pickled `wave/<split>/<category>/AVS.npy` dict; pickles are not
  loaded here, so the reader takes AVSBench's own wav, decoded mono at the processor's rate.)

* **AVSBench MS3** (`AVS/avs_scripts/avs_ms3/dataloader.py`, `config.py`), dataset folder = the metadata file's folder
  (`Multi-sources/`)::

      ms3_meta_data.csv                                    comma-separated, header; first column the video name, a
                                                          `split` column (train/val/test)
      ms3_data/visual_frames/<name>/<name>.mp4_1.png .. _5.png   five frames (no split or category folder)
      ms3_data/gt_masks/<split>/<name>/<name>_1.png .. _5.png    palette ('P') masks for all five frames in every
                                                                split, train included
      ms3_data/audio_wav/<split>/<name>.wav                      the 5-s sound

  The original reads a mask with `mode='P'` and `ToTensor`, i.e. palette index / 255 (1 for AVSBench's index-255
  foreground); the decoder takes every non-zero index as foreground, so the targets stay binary.
  `read_avsbench_annotations` picks S4 or MS3 from the metadata file's name (`s4_*` / `ms3_*`), else from the data
  folder beside it (`s4_data/` / `ms3_data/`), or takes `setting=` explicitly.
"""

from __future__ import annotations

import ast
import csv
import json
import logging
import os
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from ..errors import HfAvError

logger = logging.getLogger("hf_av.data")

__all__ = [
    "AVVP_EVAL_AUDIO",
    "AVVP_EVAL_VISUAL",
    "LLP_CATEGORIES",
    "AnnotationError",
    "DgSctQuestionAnsweringDecoder",
    "DgSctSegmentationDecoder",
    "DgSctTaskCollator",
    "DgSctVideoParsingDecoder",
    "read_avsbench_annotations",
    "read_avsbench_ms3_annotations",
    "read_avsbench_s4_annotations",
    "read_llp_annotations",
    "read_music_avqa_annotations",
    "music_avqa_vocabularies",
    "stream_task_rows",
    "write_synthetic_avsbench_ms3",
    "write_synthetic_avsbench_s4",
    "write_synthetic_llp",
    "write_synthetic_music_avqa",
]

# The 25 LLP event classes in the original's order (`AVVP/dataloader.py` `categories`): class id = position.
LLP_CATEGORIES = (
    "Speech", "Car", "Cheering", "Dog", "Cat", "Frying_(food)", "Basketball_bounce", "Fire_alarm", "Chainsaw", "Cello",
    "Banjo", "Singing", "Chicken_rooster", "Violin_fiddle", "Vacuum_cleaner", "Baby_laughter", "Accordion",
    "Lawn_mower", "Motorcycle", "Helicopter", "Acoustic_guitar", "Telephone_bell_ringing", "Baby_cry_infant_cry",
    "Blender", "Clapping",
)
AVVP_EVAL_AUDIO = "AVVP_eval_audio.csv"
AVVP_EVAL_VISUAL = "AVVP_eval_visual.csv"
# the original's wave files hold 1-s segments at HTS-AT's rate
ORIGINAL_WAVE_RATE = 32000


class AnnotationError(HfAvError, ValueError):
    """A malformed annotation line; the message names the file and the line."""


def _where(path, line: int | None = None) -> str:
    return f"{path}" + (f" line {line}" if line is not None else "")


def _read_table(path: Path, delimiter: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and `(line number, cells)` of a delimited annotation file (blank lines skipped)."""
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    with open(path, newline="", encoding="utf-8") as handle:
        lines = list(csv.reader(handle, delimiter=delimiter))
    if not lines:
        raise AnnotationError(f"{path} is empty (a header line is expected)")
    header = [cell.strip() for cell in lines[0]]
    rows = [(number, [cell.strip() for cell in cells]) for number, cells in enumerate(lines[1:], start=2)
            if any(cell.strip() for cell in cells)]
    return header, rows


def _row(sample_id: str, example: dict) -> dict:
    """A light stream row: the sample id the error report names and the example as one JSON string (one arrow
    column whatever the task)."""
    return {"sample_id": sample_id, "example": json.dumps(example)}


# ------------------------------------------------------------------------------------------------ LLP / AVVP
def _llp_labels(cell: str, label_index: Mapping[str, int], path, line: int) -> list[str]:
    names = [name.strip() for name in cell.split(",") if name.strip()]
    if not names:
        raise AnnotationError(f"{_where(path, line)}: no event label (comma-separated class names expected)")
    unknown = [name for name in names if name not in label_index]
    if unknown:
        raise AnnotationError(
            f"{_where(path, line)}: unknown event label(s) {unknown}; known: {sorted(label_index)}"
        )
    return names


def _llp_segment_events(path: Path, label_index: Mapping[str, int], num_segments: int) -> dict[str, list]:
    """`filename -> [[class id, onset, offset], ...]` of an `AVVP_eval_{audio,visual}.csv` file."""
    header, rows = _read_table(path, "\t")
    expected = ["filename", "onset", "offset", "event_labels"]
    if [name.lower() for name in header[:4]] != expected:
        raise AnnotationError(f"{_where(path, 1)}: header {header}, expected the tab-separated columns {expected}")
    events: dict[str, list] = {}
    for line, cells in rows:
        if len(cells) < 4:
            raise AnnotationError(
                f"{_where(path, line)}: {len(cells)} tab-separated fields, expected 4 (filename onset offset "
                f"event_labels): {cells}"
            )
        filename, onset, offset, label = cells[:4]
        try:
            start, end = int(float(onset)), int(float(offset))
        except ValueError:
            raise AnnotationError(f"{_where(path, line)}: onset/offset must be seconds, got {onset!r}/{offset!r}")
        if not 0 <= start < end <= num_segments:
            raise AnnotationError(
                f"{_where(path, line)}: event [{start}, {end}) does not fit the clip's {num_segments} segments "
                "(0 <= onset < offset <= number of segments expected)"
            )
        if label not in label_index:
            raise AnnotationError(f"{_where(path, line)}: unknown event label {label!r}; known: {sorted(label_index)}")
        events.setdefault(filename, []).append([label_index[label], start, end])
    return events


def read_llp_annotations(
    annotation_file,
    media_root=None,
    *,
    label_names: Sequence[str] = LLP_CATEGORIES,
    segment_annotations: bool | None = None,
    num_segments: int = 10,
) -> list[dict]:
    """Rows of an LLP weak-label file (`AVVP_train.csv`, `AVVP_val_pd.csv`, `AVVP_test_pd.csv`).

    Args:
        annotation_file: the tab-separated weak-label file (first column `filename`, last `event_labels`).
        media_root: the dataset folder holding `LLP_dataset/` (default: the annotation file's folder).
        label_names: the event classes; class id = position (default the 25 LLP classes in the original order).
        segment_annotations: attach the per-segment audio and visual events of `AVVP_eval_audio.csv` /
            `AVVP_eval_visual.csv` (beside the annotation file) for the segment-level F-scores; `None` = when both
            files exist.
        num_segments: 1-s segments per clip (10 in LLP); bounds the events' onsets and offsets.
    """
    path = Path(annotation_file)
    root = Path(media_root) if media_root is not None else path.parent
    label_index = {name: index for index, name in enumerate(label_names)}
    header, rows = _read_table(path, "\t")
    if header[0].lower() != "filename" or len(header) < 2:
        raise AnnotationError(
            f"{_where(path, 1)}: header {header}; a tab-separated file with the columns filename ... event_labels "
            "is expected (LLP's AVVP_*.csv)"
        )
    audio_file, visual_file = path.parent / AVVP_EVAL_AUDIO, path.parent / AVVP_EVAL_VISUAL
    if segment_annotations is None:
        segment_annotations = audio_file.is_file() and visual_file.is_file()
    audio_events = visual_events = None
    if segment_annotations:
        audio_events = _llp_segment_events(audio_file, label_index, num_segments)
        visual_events = _llp_segment_events(visual_file, label_index, num_segments)
    features = root / "LLP_dataset" / "feats" / "r2plus1d_18"
    result = []
    for line, cells in rows:
        if len(cells) < 2:
            raise AnnotationError(
                f"{_where(path, line)}: {len(cells)} tab-separated field(s), expected filename<TAB>...<TAB>event_labels"
                f": {cells}"
            )
        filename = cells[0]
        video_id = filename[:11]  # the media are named by the YouTube id (`row[0][:11]` in the original)
        example = {
            "filename": filename,
            "frames_dir": str(root / "LLP_dataset" / "frame" / video_id),
            "wave": str(root / "LLP_dataset" / "wave" / f"{video_id}.npy"),
            # no features folder at all: none (a model with clip_feature_size=None needs none)
            "clip_features": str(features / f"{video_id}.npy") if features.is_dir() else None,
            "labels": [label_index[name] for name in _llp_labels(cells[-1], label_index, path, line)],
        }
        if segment_annotations:
            example["audio_events"] = audio_events.get(filename, [])
            example["visual_events"] = visual_events.get(filename, [])
        result.append(_row(filename, example))
    if not result:
        raise AnnotationError(f"{path} has no annotation lines")
    return result


# ------------------------------------------------------------------------------------------------ MUSIC-AVQA
def _load_avqa_json(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    with open(path, encoding="utf-8") as handle:
        try:
            samples = json.load(handle)
        except json.JSONDecodeError as error:
            raise AnnotationError(f"{_where(path, error.lineno)}: not valid JSON ({error.msg})") from None
    if not isinstance(samples, list):
        raise AnnotationError(f"{path}: a JSON list of question records is expected, got {type(samples).__name__}")
    required = ("video_id", "question_content", "templ_values", "anser")
    for index, sample in enumerate(samples):
        missing = [key for key in required if not isinstance(sample, dict) or key not in sample]
        if missing:
            raise AnnotationError(f"{path} record {index}: missing {missing} (MUSIC-AVQA records have {list(required)})")
        try:
            values = ast.literal_eval(sample["templ_values"]) if isinstance(sample["templ_values"], str) \
                else sample["templ_values"]
        except (ValueError, SyntaxError):
            raise AnnotationError(
                f"{path} record {index}: templ_values {sample['templ_values']!r} is not a list literal"
            ) from None
        slots = sum("<" in word for word in str(sample["question_content"]).rstrip().split(" "))
        if not isinstance(values, (list, tuple)) or len(values) < slots:
            raise AnnotationError(
                f"{path} record {index}: the question has {slots} template slot(s) but templ_values gives "
                f"{values!r}: {sample['question_content']!r}"
            )
    return samples


def music_avqa_vocabularies(train_json) -> tuple[list[str], list[str]]:
    """`(question words, answers)` of a MUSIC-AVQA train json, in the original's order (`<pad>` = word 0)."""
    from ..processing.dg_sct_tasks import build_question_vocabularies

    return build_question_vocabularies(_load_avqa_json(Path(train_json)))


def read_music_avqa_annotations(
    annotation_file,
    media_root=None,
    *,
    num_segments: int = 10,
    negatives: bool = True,
    seed: int = 0,
) -> list[dict]:
    """Rows of a MUSIC-AVQA json (`avqa-train.json`, `avqa-val.json`, `avqa-test.json`).

    Each row holds the template-filled question, the answer text, the clip's frame folder and wave, and (with
    `negatives`) one frame slot of another video per segment for the audio-visual matching loss: the original
    draws them at random on every read; here they are drawn once per row from `seed` (a stream that resumes must
    see the same examples). With a single video in the file there is nothing to draw from and rows have none.
    """
    from ..processing.dg_sct_tasks import fill_question_template

    path = Path(annotation_file)
    root = Path(media_root) if media_root is not None else path.parent.parent
    samples = _load_avqa_json(path)
    videos = list(dict.fromkeys(str(sample["video_id"]) for sample in samples))
    result = []
    for index, sample in enumerate(samples):
        video_id = str(sample["video_id"])
        example = {
            "video_id": video_id,
            "question": fill_question_template(sample["question_content"], sample["templ_values"]),
            "answer": str(sample["anser"]),
            "frames_dir": str(root / "frames" / video_id),
            "wave": str(root / "audio_wave" / f"{video_id}.npy"),
        }
        others = [video for video in videos if video != video_id]
        if negatives and others:
            rng = np.random.default_rng([seed, index])
            picks = rng.integers(0, len(others), size=num_segments)
            slots = rng.integers(0, num_segments, size=num_segments)
            example["negatives"] = [[str(root / "frames" / others[p]), int(s)] for p, s in zip(picks, slots)]
        question_id = sample.get("question_id", index)
        result.append(_row(f"{video_id}#q{question_id}", example))
    if not result:
        raise AnnotationError(f"{path} has no question records")
    return result


# ------------------------------------------------------------------------------------------------ AVSBench
def _read_avsbench_rows(path: Path, split: str, needed: str, required_columns: int, example_for) -> list[dict]:
    """Rows of an AVSBench metadata csv for one `split`; `example_for(cells, line)` builds each example."""
    header, rows = _read_table(path, ",")
    if "split" not in header or len(header) < required_columns:
        raise AnnotationError(f"{_where(path, 1)}: header {header}; {path.name} has {needed}")
    split_column = header.index("split")
    result = []
    for line, cells in rows:
        if len(cells) != len(header):
            raise AnnotationError(
                f"{_where(path, line)}: {len(cells)} comma-separated fields, the header has {len(header)}: {cells}"
            )
        if cells[split_column] == split:
            example = example_for(cells, line)
            result.append(_row(example["name"], example))
    if not result:
        splits = sorted({cells[split_column] for _, cells in rows})
        raise AnnotationError(f"{path} has no clip of split {split!r} (splits present: {splits})")
    return result


def read_avsbench_s4_annotations(annotation_file, media_root=None, *, split: str = "train") -> list[dict]:
    """Rows of AVSBench's `s4_meta_data.csv` for one `split` (train: the first frame's mask; val/test: all five).

    The video name is the first column and the category the third, as the original reads them; the split is the
    `split` column.
    """
    path = Path(annotation_file)
    data = (Path(media_root) if media_root is not None else path.parent) / "s4_data"

    def example_for(cells, line):
        name, category = cells[0], cells[2]
        if not name or not category:
            raise AnnotationError(f"{_where(path, line)}: empty video name or category: {cells}")
        return {
            "name": name,
            "frames_dir": str(data / "visual_frames" / split / category / name),
            "masks_dir": str(data / "gt_masks" / split / category / name),
            "wave": str(data / "audio_wav" / split / category / f"{name}.wav"),
            "num_masks": 1 if split == "train" else 5,
        }

    return _read_avsbench_rows(path, split, "the video name first, the category third and a `split` column", 3,
                               example_for)


def read_avsbench_ms3_annotations(annotation_file, media_root=None, *, split: str = "train") -> list[dict]:
    """Rows of AVSBench's `ms3_meta_data.csv` for one `split`: five masks per clip in every split (the MS3 loss
    trains on all five frames). The video name is the first column, the split the `split` column."""
    path = Path(annotation_file)
    data = (Path(media_root) if media_root is not None else path.parent) / "ms3_data"

    def example_for(cells, line):
        name = cells[0]
        if not name:
            raise AnnotationError(f"{_where(path, line)}: empty video name: {cells}")
        return {
            "name": name,
            "frames_dir": str(data / "visual_frames" / name),
            "frame_pattern": "{name}.mp4_{index}.png",
            "masks_dir": str(data / "gt_masks" / split / name),
            "mask_mode": "P",
            "wave": str(data / "audio_wav" / split / f"{name}.wav"),
            "num_masks": 5,
        }

    return _read_avsbench_rows(path, split, "the video name first and a `split` column", 2, example_for)


AVSBENCH_SETTINGS = {"s4": read_avsbench_s4_annotations, "ms3": read_avsbench_ms3_annotations}


def avsbench_setting(annotation_file, media_root=None) -> str:
    """`"s4"` or `"ms3"`: from the metadata file's name (`s4_meta_data.csv` / `ms3_meta_data.csv`), else from the
    data folder beside it (`s4_data/` / `ms3_data/`)."""
    path = Path(annotation_file)
    for setting in AVSBENCH_SETTINGS:
        if path.name.lower().startswith(f"{setting}_"):
            return setting
    root = Path(media_root) if media_root is not None else path.parent
    found = [setting for setting in AVSBENCH_SETTINGS if (root / f"{setting}_data").is_dir()]
    if len(found) == 1:
        return found[0]
    raise AnnotationError(
        f"{path}: cannot tell AVSBench S4 from MS3 (expected a file named s4_*/ms3_* or exactly one of s4_data/, "
        f"ms3_data/ in {root}, found {found or 'neither'}); pass the setting explicitly"
    )


def read_avsbench_annotations(annotation_file, media_root=None, *, split: str = "train",
                              setting: str | None = None) -> list[dict]:
    """AVSBench rows of either layout: `setting` `"s4"` / `"ms3"`, or `None` to tell them apart by
    `avsbench_setting`."""
    setting = setting if setting is not None else avsbench_setting(annotation_file, media_root)
    if setting not in AVSBENCH_SETTINGS:
        raise ValueError(f"AVSBench setting must be one of {sorted(AVSBENCH_SETTINGS)}, got {setting!r}")
    return AVSBENCH_SETTINGS[setting](annotation_file, media_root, split=split)


# ------------------------------------------------------------------------------------------------ decoding
def _frame_indices(count: int, num_segments: int) -> np.ndarray:
    """`np.linspace(1, count, num_segments, dtype=int)`: the original's 1-based frame choice."""
    return np.linspace(1, count, num_segments, dtype=int)


def _count_jpgs(folder: Path) -> int:
    if not folder.is_dir():
        raise FileNotFoundError(f"frame folder {folder} does not exist")
    count = sum(1 for name in os.listdir(folder) if name.endswith(".jpg"))
    if count == 0:
        raise FileNotFoundError(f"frame folder {folder} holds no .jpg frame")
    return count


def _load_frames(paths: Sequence[Path]) -> np.ndarray:
    from ..media import load_image

    frames = []
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"frame {path} does not exist")
        frames.append(load_image(str(path)))
    if len({frame.shape for frame in frames}) != 1:
        raise ValueError(f"frames of one clip differ in size: {[frame.shape for frame in frames]} ({paths[0]} ...)")
    return np.stack(frames)


def _load_wave(path: Path) -> np.ndarray:
    """A 1-D float wave from an `.npy` file (no pickles)."""
    if not path.is_file():
        raise FileNotFoundError(f"wave {path} does not exist")
    wave = np.load(path, allow_pickle=False)
    if wave.ndim != 1 or not np.issubdtype(wave.dtype, np.floating):
        raise ValueError(f"wave {path} must hold a 1-D float waveform, got {wave.dtype} of shape {wave.shape}")
    return wave.astype(np.float32, copy=False)


class _TaskDecoder:
    """Called by the stream's map as a processor: `decoder(example=<row JSON>, return_tensors="pt")` -> model inputs
    with a batch dimension of 1 (the stream squeezes it)."""

    def __init__(self, processor, wave_sampling_rate: int = ORIGINAL_WAVE_RATE):
        self.processor = processor
        self.wave_sampling_rate = int(wave_sampling_rate)

    @property
    def num_segments(self) -> int:
        return int(self.processor.feature_extractor.num_segments)

    def _audio_visual(self, frames: np.ndarray, wave: np.ndarray, **inputs) -> dict:
        return dict(self.processor(audio=wave, sampling_rate=self.wave_sampling_rate, images=frames,
                                   return_tensors="pt", **inputs))

    def __call__(self, example: str, return_tensors: str = "pt", **unused) -> dict:
        return self.decode(json.loads(example))


class DgSctVideoParsingDecoder(_TaskDecoder):
    """LLP rows -> `input_values`, `pixel_values` (frames 1..T, as the original reads them), `clip_features` (the
    R(2+1)D `.npy` through the processor's `clip_features=`, `[T, clip_feature_size]`; none for a model built with
    `clip_feature_size=None`), `labels` (multi-hot weak labels `[C]`) and, for rows with segment annotations,
    `audio_segment_labels` / `visual_segment_labels` `[T, C]` (the LLP ground truth of the segment-level F-scores).
    `processor` is a `DgSctVideoParsingProcessor`."""

    def __init__(self, processor, num_labels: int, clip_feature_size: int | None,
                 wave_sampling_rate: int = ORIGINAL_WAVE_RATE):
        super().__init__(processor, wave_sampling_rate)
        self.num_labels = int(num_labels)
        self.clip_feature_size = clip_feature_size

    def _segment_matrix(self, events) -> "np.ndarray":
        matrix = np.zeros((1, self.num_segments, self.num_labels), dtype=np.float32)
        for class_id, onset, offset in events:
            matrix[0, onset:offset, class_id] = 1.0
        return matrix

    def decode(self, example: dict) -> dict:
        import torch

        folder = Path(example["frames_dir"])
        frames = _load_frames([folder / f"{index:08d}.jpg" for index in range(1, self.num_segments + 1)])
        inputs = {}
        if self.clip_feature_size is not None:
            if example.get("clip_features") is None:
                raise ValueError(
                    f"{example['filename']}: the model takes {self.clip_feature_size}-d clip features but the layout has "
                    "no LLP_dataset/feats/r2plus1d_18 folder (build the model with clip_feature_size=None instead)"
                )
            inputs["clip_features"] = example["clip_features"]
        outputs = self._audio_visual(frames, _load_wave(Path(example["wave"])), **inputs)
        if "clip_features" in outputs and outputs["clip_features"].shape[-1] != self.clip_feature_size:
            raise ValueError(
                f"clip features {example['clip_features']} have width {outputs['clip_features'].shape[-1]}, the model "
                f"expects {self.clip_feature_size} (config.clip_feature_size)"
            )
        labels = torch.zeros(1, self.num_labels)
        if max(example["labels"]) >= self.num_labels:
            raise ValueError(f"{example['filename']}: class id {max(example['labels'])} >= num_labels {self.num_labels}")
        labels[0, example["labels"]] = 1.0
        outputs["labels"] = labels
        if "audio_events" in example:
            outputs["audio_segment_labels"] = torch.from_numpy(self._segment_matrix(example["audio_events"]))
            outputs["visual_segment_labels"] = torch.from_numpy(self._segment_matrix(example["visual_events"]))
        return outputs


class DgSctQuestionAnsweringDecoder(_TaskDecoder):
    """MUSIC-AVQA rows -> `input_values`, `pixel_values` (`linspace(1, n, T)` of the clip's jpgs), `input_ids` (the
    processor's question tokenizer, right-padded), `labels` (the answer id in `answers`) and, for rows with drawn
    negatives, `negative_pixel_values` (one frame of another clip per segment)."""

    def __init__(self, processor, answers: Sequence[str], wave_sampling_rate: int = ORIGINAL_WAVE_RATE):
        super().__init__(processor, wave_sampling_rate)
        self.answers = list(answers)
        self.answer_index = {answer: index for index, answer in enumerate(self.answers)}

    def decode(self, example: dict) -> dict:
        import torch

        answer = example["answer"]
        if answer not in self.answer_index:
            raise ValueError(f"answer {answer!r} is not in the answer vocabulary ({len(self.answers)} answers)")
        folder = Path(example["frames_dir"])
        indices = _frame_indices(_count_jpgs(folder), self.num_segments)
        frames = _load_frames([folder / f"{index:08d}.jpg" for index in indices])
        # the processor tokenises the question (refusing one longer than the model takes) into `input_ids`
        outputs = self._audio_visual(frames, _load_wave(Path(example["wave"])), text=example["question"])
        outputs["labels"] = torch.tensor([self.answer_index[answer]])
        if example.get("negatives"):
            paths = []
            for other, slot in example["negatives"]:
                other = Path(other)
                paths.append(other / f"{_frame_indices(_count_jpgs(other), self.num_segments)[slot]:08d}.jpg")
            negatives = _load_frames(paths)
            if negatives.shape[1:] != frames.shape[1:]:  # other clips' frames of another size: the clip's size
                negatives = np.stack([_resize(frame, frames.shape[1:3]) for frame in negatives])
            outputs["negative_pixel_values"] = self.processor.image_processor(
                negatives[None], return_tensors="pt")["pixel_values"]
        return outputs


def _resize(frame: np.ndarray, size) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((int(size[1]), int(size[0])), Image.BICUBIC))


class DgSctSegmentationDecoder(_TaskDecoder):
    """AVSBench S4 / MS3 rows -> `input_values` (5 segments, each tiled), `pixel_values` (S4 `<name>_1..5.png`, MS3
    `<name>.mp4_1..5.png`), `labels`: the binary ground-truth masks at the model's `mask_size` (S4 train: the first
    frame's `[S, S]`; S4 val/test and every MS3 split: the five frames' `[5, S, S]`). Masks of another size are
    resized with nearest-neighbour sampling (AVSBench's are 224 x 224, the release model's output size)."""

    def __init__(self, processor, mask_size: int, wave_sampling_rate: int | None = None):
        super().__init__(processor, wave_sampling_rate or processor.feature_extractor.sampling_rate)
        self.mask_size = int(mask_size)

    def _mask(self, path: Path, mode: str = "1"):
        import torch
        from PIL import Image

        if not path.is_file():
            raise FileNotFoundError(f"mask {path} does not exist")
        with Image.open(path) as image:
            if mode == "P":  # MS3: the palette index, foreground = any non-zero index
                mask = image if image.mode == "P" else image.convert("L")
            else:
                mask = image.convert("1")  # S4: the original's mode='1' read
            if mask.size != (self.mask_size, self.mask_size):
                mask = mask.resize((self.mask_size, self.mask_size), Image.NEAREST)
            return torch.from_numpy((np.asarray(mask) != 0).astype(np.float32))

    def decode(self, example: dict) -> dict:
        import torch

        from ..media import load_audio

        name, frames_dir, masks_dir = example["name"], Path(example["frames_dir"]), Path(example["masks_dir"])
        pattern = example.get("frame_pattern", "{name}_{index}.png")
        frames = _load_frames([frames_dir / pattern.format(name=name, index=index)
                               for index in range(1, self.num_segments + 1)])
        wave_path = Path(example["wave"])
        if not wave_path.is_file():
            raise FileNotFoundError(f"wave {wave_path} does not exist")
        audio, rate = load_audio(str(wave_path), sampling_rate=self.wave_sampling_rate, audio_channels="mono")
        outputs = dict(self.processor(audio=audio[0], sampling_rate=rate, images=frames, return_tensors="pt"))
        mode = example.get("mask_mode", "1")
        masks = torch.stack([self._mask(masks_dir / f"{name}_{index}.png", mode)
                             for index in range(1, int(example["num_masks"]) + 1)])
        outputs["labels"] = (masks[0] if int(example["num_masks"]) == 1 else masks)[None]
        return outputs


def stream_task_rows(rows: Sequence[Mapping], decoder: Callable, *, error_policy=None):
    """The streaming dataset of reader rows decoded by a task decoder (the stream's decode-error policy applies)."""
    from .stream import stream_from_rows

    return stream_from_rows(rows, decoder, error_policy=error_policy, input_columns={"example": "example"},
                            media_column="sample_id")


class DgSctTaskCollator:
    """Batches of DG-SCT task examples: the model inputs stacked (`keys`), plus evaluation-only keys when asked.

    Every example of a batch must have the same keys (a layout gives all its clips the same inputs); the error names
    the key that only some examples have."""

    def __init__(self, keys: Sequence[str]):
        self.keys = tuple(keys)

    def __call__(self, examples: Sequence[Mapping]) -> dict:
        import torch

        if not examples:
            raise ValueError("empty batch")
        batch = {}
        for key in self.keys:
            present = [key in example and example[key] is not None for example in examples]
            if not any(present):
                continue
            if not all(present):
                raise ValueError(f"{key!r} is missing from {present.count(False)} of {len(examples)} examples")
            values = [torch.as_tensor(example[key]) for example in examples]
            shapes = {tuple(value.shape) for value in values}
            if len(shapes) != 1:
                raise ValueError(f"cannot batch {key!r}: shapes differ {sorted(shapes)}")
            batch[key] = torch.stack(values)
        return batch


# ------------------------------------------------------------------------------------------------ synthetic layouts
# Tiny datasets in the three original layouts, written from synthetic media (examples and tests; nothing is
# downloaded). Each class has its own frame colour and tone, so a few steps of training can learn something.
_COLOURS = ((220, 40, 40), (40, 200, 60), (50, 80, 230), (230, 200, 40), (200, 60, 210))


def _tone(frequency: float, seconds: float, rate: int, seed: int) -> np.ndarray:
    time = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).normal(0.0, 0.01, time.shape)
    return (0.3 * np.sin(2 * np.pi * frequency * time) + noise).astype(np.float32)


def _frame(colour, size: int, seed: int, square: tuple[int, int, int] | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = np.clip(rng.normal(0, 12, (size, size, 3)) + np.asarray(colour) * 0.35, 0, 255)
    if square is not None:  # a bright square: (top, left, side)
        top, left, side = square
        frame[top:top + side, left:left + side] = colour
    return frame.astype(np.uint8)


def _save_image(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_synthetic_llp(root, *, num_train: int = 4, num_eval: int = 2, num_segments: int = 3,
                        classes: Sequence[str] = LLP_CATEGORIES[:2], clip_feature_size: int | None = 6,
                        frame_size: int = 32, seed: int = 0) -> dict[str, Path]:
    """An LLP-layout folder (`AVVP_train.csv`, `AVVP_val_pd.csv`, `AVVP_eval_{audio,visual}.csv`,
    `LLP_dataset/{frame,wave,feats/r2plus1d_18}`): clip i has class `i % len(classes)` heard in every segment but the
    last and seen in the first two. Returns the annotation files."""
    root = Path(root)
    train_lines, eval_lines, audio_lines, visual_lines = [], [], [], []
    for index in range(num_train + num_eval):
        class_id = index % len(classes)
        video_id = f"synthclip{index:02d}"  # 11 characters, as LLP's YouTube ids
        filename = f"{video_id}_0_{num_segments}"
        heard, seen = (0, max(1, num_segments - 1)), (0, min(2, num_segments))
        wave = np.zeros(num_segments * ORIGINAL_WAVE_RATE, np.float32)
        tone = _tone(300.0 * (class_id + 1), num_segments, ORIGINAL_WAVE_RATE, seed + index)
        wave[heard[0] * ORIGINAL_WAVE_RATE:heard[1] * ORIGINAL_WAVE_RATE] = \
            tone[heard[0] * ORIGINAL_WAVE_RATE:heard[1] * ORIGINAL_WAVE_RATE]
        (root / "LLP_dataset" / "wave").mkdir(parents=True, exist_ok=True)
        np.save(root / "LLP_dataset" / "wave" / f"{video_id}.npy", wave)
        for segment in range(num_segments):
            colour = _COLOURS[class_id % len(_COLOURS)] if seen[0] <= segment < seen[1] else (90, 90, 90)
            _save_image(_frame(colour, frame_size, seed + 100 * index + segment),
                        root / "LLP_dataset" / "frame" / video_id / f"{segment + 1:08d}.jpg")
        if clip_feature_size is not None:
            features = np.random.default_rng(seed + index).normal(0, 1, (num_segments, clip_feature_size))
            features[:, class_id % clip_feature_size] += 2.0
            (root / "LLP_dataset" / "feats" / "r2plus1d_18").mkdir(parents=True, exist_ok=True)
            np.save(root / "LLP_dataset" / "feats" / "r2plus1d_18" / f"{video_id}.npy", features.astype(np.float32))
        (train_lines if index < num_train else eval_lines).append(f"{filename}\t{classes[class_id]}")
        if index >= num_train:
            audio_lines.append(f"{filename}\t{heard[0]}\t{heard[1]}\t{classes[class_id]}")
            visual_lines.append(f"{filename}\t{seen[0]}\t{seen[1]}\t{classes[class_id]}")
    files = {
        "train": root / "AVVP_train.csv",
        "eval": root / "AVVP_val_pd.csv",
        "eval_audio": root / AVVP_EVAL_AUDIO,
        "eval_visual": root / AVVP_EVAL_VISUAL,
    }
    files["train"].write_text("\n".join(["filename\tevent_labels", *train_lines]) + "\n")
    files["eval"].write_text("\n".join(["filename\tevent_labels", *eval_lines]) + "\n")
    files["eval_audio"].write_text("\n".join(["filename\tonset\toffset\tevent_labels", *audio_lines]) + "\n")
    files["eval_visual"].write_text("\n".join(["filename\tonset\toffset\tevent_labels", *visual_lines]) + "\n")
    return files


_INSTRUMENTS = ("violin", "piano", "flute")


def write_synthetic_music_avqa(root, *, num_videos: int = 3, num_segments: int = 3, frames_per_video: int = 4,
                               frame_size: int = 32, seed: int = 0) -> dict[str, Path]:
    """A MUSIC-AVQA-layout folder (`json/avqa-{train,val}.json`, `frames/<video>/%08d.jpg`, `audio_wave/<video>.npy`):
    video i plays instrument `i % 3` (its frame colour and tone); three questions per video, answered by the clip:
    "Is the <Object> playing?" (its own instrument; yes), "Which instrument is sounding?" (the instrument), "How many
    instruments are sounding?" (one); the same for train and val. Returns the json files."""
    root = Path(root)
    samples = []
    for index in range(num_videos):
        instrument = index % len(_INSTRUMENTS)
        video_id = f"{index + 1:08d}"
        wave = _tone(400.0 * (instrument + 1), num_segments, ORIGINAL_WAVE_RATE, seed + index)
        (root / "audio_wave").mkdir(parents=True, exist_ok=True)
        np.save(root / "audio_wave" / f"{video_id}.npy", wave)
        for frame in range(frames_per_video):
            _save_image(_frame(_COLOURS[instrument], frame_size, seed + 100 * index + frame),
                        root / "frames" / video_id / f"{frame + 1:08d}.jpg")
        questions = (
            ("Is the <Object> playing?", f"['{_INSTRUMENTS[instrument]}']", '["Audio-Visual", "Existential"]', "yes"),
            ("Which instrument is sounding?", "[]", '["Audio", "Comparative"]', _INSTRUMENTS[instrument]),
            ("How many instruments are sounding?", "[]", '["Audio", "Counting"]', "one"),
        )
        for number, (question, values, kind, answer) in enumerate(questions):
            samples.append({
                "video_id": video_id, "question_id": len(questions) * index + number, "type": kind,
                "question_content": question, "templ_values": values, "question_deleted": 0, "anser": answer,
            })
    (root / "json").mkdir(parents=True, exist_ok=True)
    files = {"train": root / "json" / "avqa-train.json", "eval": root / "json" / "avqa-val.json"}
    for path in files.values():
        path.write_text(json.dumps(samples, indent=1))
    return files


def _write_pcm_wav(path: Path, wave: np.ndarray, rate: int) -> None:
    import wave as wave_module

    path.parent.mkdir(parents=True, exist_ok=True)
    with wave_module.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes())


def write_synthetic_avsbench_s4(root, *, num_train: int = 4, num_eval: int = 2, frame_size: int = 32,
                                categories: Sequence[str] = ("violin", "dog"), seed: int = 0) -> dict[str, Path]:
    """An AVSBench-S4-layout folder (`s4_meta_data.csv`, `s4_data/{visual_frames,gt_masks,audio_wav}/<split>/...`):
    every clip shows a bright square (its category's colour) moving over five frames, and its mask is that square;
    the sound is the category's tone. Train clips have the first mask, val clips all five. Returns the metadata file.
    """
    root = Path(root)
    data = root / "s4_data"
    lines = ["name,index,category,split"]
    rng = np.random.default_rng(seed)
    for index in range(num_train + num_eval):
        split = "train" if index < num_train else "val"
        category = categories[index % len(categories)]
        name = f"clip{index:03d}"
        side = frame_size // 3
        colour = _COLOURS[index % len(categories)]
        for frame in range(1, 6):
            top, left = (int(v) for v in rng.integers(0, frame_size - side, 2))
            _save_image(_frame(colour, frame_size, seed + 10 * index + frame, (top, left, side)),
                        data / "visual_frames" / split / category / name / f"{name}_{frame}.png")
            if split != "train" or frame == 1:
                mask = np.zeros((frame_size, frame_size), np.uint8)
                mask[top:top + side, left:left + side] = 255
                _save_image(mask, data / "gt_masks" / split / category / name / f"{name}_{frame}.png")
        _write_pcm_wav(data / "audio_wav" / split / category / f"{name}.wav",
                       _tone(350.0 * (index % len(categories) + 1), 5, 16000, seed + index), 16000)
        lines.append(f"{name},{index},{category},{split}")
    (root / "s4_meta_data.csv").write_text("\n".join(lines) + "\n")
    return {"train": root / "s4_meta_data.csv", "eval": root / "s4_meta_data.csv"}


def write_synthetic_avsbench_ms3(root, *, num_train: int = 4, num_eval: int = 2, frame_size: int = 32,
                                 seed: int = 0) -> dict[str, Path]:
    """An AVSBench-MS3-layout folder (`ms3_meta_data.csv`, `ms3_data/visual_frames/<name>/<name>.mp4_{1..5}.png`,
    `ms3_data/gt_masks/<split>/<name>/<name>_{1..5}.png`, `ms3_data/audio_wav/<split>/<name>.wav`): every clip shows
    two bright squares of two sources moving over five frames and mixes their two tones; the masks (palette images,
    index 255 = foreground, as AVSBench's) cover both squares, for all five frames in every split. Returns the
    metadata file."""
    from PIL import Image

    root = Path(root)
    data = root / "ms3_data"
    lines = ["video_id,fold,split"]
    rng = np.random.default_rng(seed)
    side = frame_size // 4
    for index in range(num_train + num_eval):
        split = "train" if index < num_train else "val"
        name = f"multi{index:03d}"
        sources = (index % len(_COLOURS), (index + 1) % len(_COLOURS))
        for frame in range(1, 6):
            image = _frame((90, 90, 90), frame_size, seed + 10 * index + frame)
            mask = np.zeros((frame_size, frame_size), np.uint8)
            for source in sources:
                top, left = (int(v) for v in rng.integers(0, frame_size - side, 2))
                image[top:top + side, left:left + side] = _COLOURS[source]
                mask[top:top + side, left:left + side] = 255
            _save_image(image, data / "visual_frames" / name / f"{name}.mp4_{frame}.png")
            palette = Image.fromarray(mask).convert("P")
            palette.putpalette([value for level in range(256) for value in (level, level, level)])
            path = data / "gt_masks" / split / name / f"{name}_{frame}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            palette.save(path)
        wave = sum(_tone(350.0 * (source + 1), 5, 16000, seed + index) for source in sources) / 2
        _write_pcm_wav(data / "audio_wav" / split / f"{name}.wav", wave, 16000)
        lines.append(f"{name},{index % 5},{split}")
    (root / "ms3_meta_data.csv").write_text("\n".join(lines) + "\n")
    return {"train": root / "ms3_meta_data.csv", "eval": root / "ms3_meta_data.csv"}
