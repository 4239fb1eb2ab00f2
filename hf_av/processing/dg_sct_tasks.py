"""Preprocessing of DG-SCT's other downstream tasks.

* AVQA (`AVQA/net_grd_avst/dataloader_avst.py`): questions are split on spaces, the last word loses its last
  character (the "?"), template slots (`<Object>`, ...) are filled from the sample's `templ_values`, words map to
  a vocabulary built from the train json (`<pad>` = 0, then words in first-seen order) and are right-padded to 14.
  `DgSctQuestionTokenizer` reproduces that; `DgSctQuestionAnsweringProcessor` adds it to the DG-SCT processor.
* AVS (`AVS/avs_scripts/avs_s4/dataloader.py`): 5 segments, each 1-s segment tiled 5x (`wave.view(5, 32000)` then
  the repeat loop), 224 x 224 frames (the model resizes them to 192); `DgSctSegmentationProcessor`, and
  `DgSctSegmentationImageProcessor.post_process_masks` for masks at the image size.
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Iterable, Sequence

import torch
from torch.nn import functional as F
from transformers import PreTrainedTokenizer

from .dg_sct import DgSctFeatureExtractor, DgSctImageProcessor, DgSctProcessor

__all__ = [
    "DgSctQuestionAnsweringProcessor",
    "DgSctQuestionTokenizer",
    "DgSctSegmentationImageProcessor",
    "DgSctSegmentationProcessor",
    "build_question_vocabularies",
    "fill_question_template",
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

    num_segments = 5
    sub_processor_classes = {
        "feature_extractor": DgSctFeatureExtractor,
        "image_processor": DgSctSegmentationImageProcessor,
    }

    def __init__(self, feature_extractor=None, image_processor=None, **kwargs):
        super().__init__(
            feature_extractor if feature_extractor is not None else DgSctFeatureExtractor(num_segments=5, tile_repeats=5),
            image_processor if image_processor is not None else DgSctSegmentationImageProcessor(),
            **kwargs,
        )
