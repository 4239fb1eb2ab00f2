"""Preprocessing of DG-SCT's other downstream tasks.

* AVQA (`AVQA/net_grd_avst/dataloader_avst.py`): questions are split on spaces, the last word loses its last
  character (the "?"), template slots (`<Object>`, ...) are filled from the sample's `templ_values`, words map to
  a vocabulary built from the train json (`<pad>` = 0, then words in first-seen order) and are right-padded to 14.
  `DgSctQuestionTokenizer` reproduces that; `DgSctQuestionAnsweringProcessor` adds it to the DG-SCT processor.
* AVS (`AVS/avs_scripts/avs_s4/dataloader.py`): 5 segments, each 1-s segment tiled 5x (`wave.view(5, 32000)` then
  the repeat loop), 224 x 224 frames (the model resizes them to 192); `DgSctSegmentationProcessor`, and
  `DgSctSegmentationImageProcessor.post_process_masks` for masks at the image size (`return_image_sizes=True`
  gives each clip's frame size).
* AVVP (`AVVP/dataloader.py`): the DG-SCT audio and frames plus the precomputed R(2+1)D-18 clip features the LLP
  release ships (`feats/r2plus1d_18/<video>.npy`, `[10, 512]`): `DgSctVideoParsingProcessor(clip_features=...)`.
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch.nn import functional as F
from transformers import PreTrainedTokenizer

from .dg_sct import DgSctFeatureExtractor, DgSctImageProcessor, DgSctProcessor

__all__ = [
    "DgSctQuestionAnsweringProcessor",
    "DgSctVideoParsingProcessor",
    "answer_label_ids",
    "DgSctQuestionTokenizer",
    "DgSctSegmentationImageProcessor",
    "DgSctSegmentationProcessor",
    "build_question_vocabularies",
    "fill_question_template",
    "load_clip_features",
]

VOCAB_FILE = "question_vocab.json"


def _question_words(question: str) -> list[str]:
    """The original split: `rstrip().split(' ')`, then the last word loses its last character (the "?")."""
    words = question.rstrip().split(" ")
    words[-1] = words[-1][:-1]
    return words


def fill_question_template(question: str, templ_values: str | Sequence[str]) -> str:
    """Fill MUSIC-AVQA template slots (words containing `<`) in order from `templ_values` (the json's string
    literal or a list), as the original loader does; the trailing "?" is kept."""
    values = ast.literal_eval(templ_values) if isinstance(templ_values, str) else list(templ_values)
    words = question.rstrip().split(" ")
    slots = [i for i, word in enumerate(words) if "<" in word]
    if len(slots) > len(values):
        raise ValueError(f"The question has {len(slots)} template slots but templ_values gives {len(values)}: {question!r}")
    for slot, value in zip(slots, values):
        # the original fills after dropping the "?", so a slot at the end loses its "?" with the slot text
        words[slot] = value + ("?" if slot == len(words) - 1 else "")
    return " ".join(words)


def build_question_vocabularies(samples: Iterable[dict]) -> tuple[list[str], list[str]]:
    """`(question words, answers)` in the original order from MUSIC-AVQA train samples (`question_content`,
    `templ_values`, `anser`): `<pad>` first, then every word / answer at its first occurrence."""
    words, answers = ["<pad>"], []
    for sample in samples:
        question = fill_question_template(sample["question_content"], sample["templ_values"])
        for word in _question_words(question):
            if word not in words:
                words.append(word)
        if sample["anser"] not in answers:
            answers.append(sample["anser"])
    return words, answers


def answer_label_ids(answers: str | Sequence[str], label2id: dict[str, int]) -> list[int]:
    """MUSIC-AVQA answers (the json's `anser`) -> label ids of the answer vocabulary (`config.label2id`); an answer
    outside it is refused, naming it and the vocabulary (the original's `ans_vocab.index` has no fallback)."""
    answers = [answers] if isinstance(answers, str) else list(answers)
    unknown = [answer for answer in answers if answer not in label2id]
    if unknown:
        known = sorted(label2id, key=label2id.get)
        shown = ", ".join(map(repr, known[:12])) + (", ..." if len(known) > 12 else "")
        raise ValueError(
            f"answer(s) {unknown} are not in the answer vocabulary ({len(known)} answers: {shown}); the model can "
            "only be trained towards answers of config.label2id."
        )
    return [int(label2id[answer]) for answer in answers]


class DgSctQuestionTokenizer(PreTrainedTokenizer):
    r"""MUSIC-AVQA question tokenizer of DG-SCT / AVST: word level, the original split (the last word's last
    character, the "?", is dropped), `<pad>` = 0 on the right up to `model_max_length` (14). Words outside the
    vocabulary are refused (the original has no unknown token).

    Args:
        vocab_file (`str`, *optional*): JSON list of the words, index = id (`question_vocab.json`).
        words (`list[str]`, *optional*): the words instead of a file (`build_question_vocabularies`).
    """

    vocab_files_names = {"vocab_file": VOCAB_FILE}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file: str | None = None, words: Sequence[str] | None = None, pad_token="<pad>", **kwargs):
        if vocab_file is not None and words is not None:
            words = None  # a saved tokenizer: the file wins
        if (vocab_file is None) == (words is None):
            raise ValueError("DgSctQuestionTokenizer needs exactly one of `vocab_file` or `words`.")
        if vocab_file is not None:
            with open(vocab_file, encoding="utf-8") as handle:
                words = json.load(handle)
        self.words = list(words)
        self.word_to_id = {word: index for index, word in enumerate(self.words)}
        if str(pad_token) not in self.word_to_id:
            raise ValueError(f"The question vocabulary must contain the padding word {pad_token!r}.")
        kwargs.setdefault("model_max_length", 14)
        kwargs.setdefault("padding_side", "right")
        super().__init__(pad_token=pad_token, **kwargs)

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.word_to_id)

    def _tokenize(self, text, **kwargs):
        return _question_words(text)

    def _convert_token_to_id(self, token):
        if token not in self.word_to_id:
            raise ValueError(f"{token!r} is not in the question vocabulary ({len(self.words)} words).")
        return self.word_to_id[token]

    def _convert_id_to_token(self, index: int) -> str:
        return self.words[index]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        path = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILE)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.words, handle, ensure_ascii=False, indent=0)
        return (path,)


class DgSctQuestionAnsweringProcessor(DgSctProcessor):
    r"""DG-SCT (AVQA) processor: the DG-SCT audio and frames (`DgSctProcessor`) plus `input_ids` from `text=`
    (questions, already template-filled; see `fill_question_template`), right-padded to the tokenizer's
    `model_max_length`. A question with more words than that is refused."""

    sub_processor_classes = {
        "feature_extractor": DgSctFeatureExtractor,
        "image_processor": DgSctImageProcessor,
        "tokenizer": DgSctQuestionTokenizer,
    }

    def __init__(self, feature_extractor=None, image_processor=None, tokenizer=None, **kwargs):
        if tokenizer is None:
            raise ValueError("DgSctQuestionAnsweringProcessor needs a DgSctQuestionTokenizer (the question vocabulary).")
        self.tokenizer = tokenizer
        super().__init__(feature_extractor, image_processor, tokenizer=tokenizer, **kwargs)

    def tokenize_questions(self, text: str | list[str], return_tensors: str | None = "pt"):
        questions = [text] if isinstance(text, str) else list(text)
        maximum = self.tokenizer.model_max_length
        for question in questions:
            length = len(self.tokenizer.tokenize(question))
            if length > maximum:
                raise ValueError(f"The question has {length} words; the model takes at most {maximum}: {question!r}")
        return self.tokenizer(questions, padding="max_length", max_length=maximum, return_tensors=return_tensors)

    def __call__(self, videos=None, audio=None, images=None, text=None, sampling_rate=None, return_tensors=None, **kwargs):
        if text is None:
            raise ValueError("DgSctQuestionAnsweringProcessor needs the questions (`text=`).")
        features = super().__call__(
            videos=videos, audio=audio, images=images, sampling_rate=sampling_rate, return_tensors=return_tensors, **kwargs
        )
        tokens = self.tokenize_questions(text, return_tensors=return_tensors)
        features["input_ids"] = tokens["input_ids"]
        return features


def load_clip_features(value, num_segments: int, name: str = "clip_features") -> torch.Tensor:
    """One clip's precomputed 3-D CNN features -> `[num_segments, width]` float32: an array / tensor, or the path of
    the LLP layout's `.npy` file (`feats/r2plus1d_18/<video>.npy`)."""
    source = None
    if isinstance(value, (str, os.PathLike)):
        source = os.fspath(value)
        if not os.path.isfile(source):
            raise FileNotFoundError(f"{name}: {source}: no such file (expected a .npy of shape [{num_segments}, 512])")
        try:
            value = np.load(source, allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"{name}: {source} is not a readable .npy array ({error})") from error
    features = torch.as_tensor(np.asarray(value, dtype=np.float32))
    where = f"{name} ({source})" if source else name
    if features.ndim != 2 or features.shape[0] != num_segments or features.shape[1] < 1:
        raise ValueError(
            f"{where}: expected one feature vector per segment, shape [{num_segments}, width] (the LLP R(2+1)D-18 "
            f"features are [10, 512]), got {tuple(features.shape)}."
        )
    if not torch.isfinite(features).all():
        raise ValueError(f"{where}: the features contain NaN or infinite values.")
    return features


class DgSctVideoParsingProcessor(DgSctProcessor):
    r"""DG-SCT (AVVP) processor: the DG-SCT audio and frames (`DgSctProcessor`) plus `clip_features` when given:
    the precomputed R(2+1)D-18 features of each clip's segments (the original `visual_st`), as arrays
    `[num_segments, width]` (or a batch `[B, num_segments, width]`) or paths of the LLP `.npy` files, one per clip.
    A model built with `clip_feature_size=None` needs none; the original MGN_Net (512) cannot run without them."""

    call_options = (*DgSctProcessor.call_options, "clip_features")

    def prepare_clip_features(self, clip_features, num_clips: int | None = None) -> torch.Tensor:
        """`clip_features` of a call -> `[B, num_segments, width]`."""
        if isinstance(clip_features, (str, os.PathLike)):
            items = [clip_features]
        elif isinstance(clip_features, (np.ndarray, torch.Tensor)):
            array = clip_features
            items = [array] if array.ndim == 2 else list(array) if array.ndim == 3 else None
            if items is None:
                raise ValueError(
                    "clip_features: expected [num_segments, width] for one clip or [batch, num_segments, width], "
                    f"got shape {tuple(array.shape)}."
                )
        else:
            items = list(clip_features)
        stacked = [load_clip_features(item, self.num_segments) for item in items]
        widths = {features.shape[1] for features in stacked}
        if len(widths) > 1:
            raise ValueError(f"clip_features: every clip needs the same feature width, got {sorted(widths)}.")
        if num_clips is not None and len(stacked) != num_clips:
            raise ValueError(f"clip_features: {len(stacked)} clip(s) of features for {num_clips} clip(s) of media.")
        return torch.stack(stacked)

    def __call__(self, videos=None, audio=None, images=None, sampling_rate=None, return_tensors=None,
                 clip_features=None, **kwargs):
        features = super().__call__(
            videos=videos, audio=audio, images=images, sampling_rate=sampling_rate, return_tensors=return_tensors,
            **kwargs,
        )
        if clip_features is not None:
            reference = features.get("pixel_values", features.get("input_values"))
            prepared = self.prepare_clip_features(clip_features, len(reference) if reference is not None else None)
            features["clip_features"] = prepared if return_tensors == "pt" else prepared.numpy()
        return features


def _frame_size(frames) -> tuple[int, int]:
    """(height, width) of one clip's frames `[T, H, W, C]` (or channels first `[T, C, H, W]`)."""
    shape = tuple(np.shape(frames))
    if len(shape) < 3:
        raise ValueError(f"frames must be [T, H, W, C] per clip, got shape {shape}.")
    return (shape[-3], shape[-2]) if shape[-1] in (1, 3, 4) else (shape[-2], shape[-1])


def _clips_of(images) -> list:
    """`images=` of a segmented processor as a list of clips (one `[T, H, W, C]` array is one clip)."""
    if isinstance(images, (np.ndarray, torch.Tensor)):
        return [images] if images.ndim == 4 else list(images)
    images = list(images)
    return [images] if images and np.ndim(images[0]) == 3 else images


class DgSctSegmentationImageProcessor(DgSctImageProcessor):
    r"""AVSBench frames (224 x 224, ImageNet mean/std; the model resizes them to its 192-px input) and the mask
    post-processing."""

    def __init__(self, **kwargs):
        kwargs.setdefault("size", {"height": 224, "width": 224})
        super().__init__(**kwargs)

    @staticmethod
    def post_process_masks(logits: torch.Tensor, target_sizes=None, threshold: float = 0.5) -> list[torch.Tensor]:
        """Mask logits `[B, T, h, w]` -> one boolean mask stack `[T, H, W]` per clip: bilinear resize of the logits
        to each clip's `(H, W)` in `target_sizes` (default: unchanged), then `sigmoid > threshold` (the original
        evaluation thresholds sigmoid(pred) at 0.5)."""
        if logits.ndim != 4:
            raise ValueError(f"logits must be [batch, frames, height, width] mask logits, got {tuple(logits.shape)}.")
        if target_sizes is not None and len(target_sizes) != logits.shape[0]:
            raise ValueError(f"target_sizes has {len(target_sizes)} sizes for {logits.shape[0]} clips.")
        masks = []
        for index, clip in enumerate(logits):
            if target_sizes is not None:
                size = tuple(int(v) for v in target_sizes[index])
                clip = F.interpolate(clip[None].float(), size=size, mode="bilinear", align_corners=False)[0]
            masks.append(torch.sigmoid(clip) > threshold)
        return masks


class DgSctSegmentationProcessor(DgSctProcessor):
    r"""DG-SCT (AVS) processor: 5 segments per clip, each 1-s segment tiled 5x before HTS-AT's log-mel, 224 x 224
    frames."""

    # (num_segments comes from the feature extractor, 5 by default: frames and audio segments always pair up)
    sub_processor_classes = {
        "feature_extractor": DgSctFeatureExtractor,
        "image_processor": DgSctSegmentationImageProcessor,
    }

    call_options = (*DgSctProcessor.call_options, "return_image_sizes")

    def __init__(self, feature_extractor=None, image_processor=None, **kwargs):
        super().__init__(
            feature_extractor if feature_extractor is not None else DgSctFeatureExtractor(num_segments=5, tile_repeats=5),
            image_processor if image_processor is not None else DgSctSegmentationImageProcessor(),
            **kwargs,
        )
        self._decoded_sizes = None

    def decode(self, source, **call_kwargs):
        decoded = super().decode(source, **call_kwargs)
        if self._decoded_sizes is not None and decoded.frames is not None and len(decoded.frames):
            self._decoded_sizes.append(_frame_size(decoded.frames))
        return decoded

    def __call__(self, videos=None, audio=None, images=None, sampling_rate=None, return_tensors=None,
                 return_image_sizes: bool = False, **kwargs):
        """As `DgSctProcessor`; `return_image_sizes=True` adds `image_sizes` `[B, 2]` (height, width of each clip's
        frames before resizing), the `target_sizes` of `post_process_masks`."""
        self._decoded_sizes = [] if return_image_sizes and videos is not None else None
        try:
            features = super().__call__(
                videos=videos, audio=audio, images=images, sampling_rate=sampling_rate, return_tensors=return_tensors,
                **kwargs,
            )
            sizes = self._decoded_sizes
        finally:
            self._decoded_sizes = None
        if return_image_sizes:
            if images is not None:
                sizes = [_frame_size(clip) for clip in _clips_of(images)]
            if sizes:  # none when only audio was processed
                image_sizes = torch.tensor(sizes, dtype=torch.long)
                features["image_sizes"] = image_sizes if return_tensors == "pt" else image_sizes.numpy()
        return features
