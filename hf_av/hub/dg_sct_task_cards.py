"""Model cards of DG-SCT's other downstream tasks: audio-visual video parsing (AVVP / LLP), question answering
(MUSIC-AVQA) and segmentation (AVSBench).

Each card has the paper's numbers for its task (Duan et al., NeurIPS 2023, Tables 1-3 and the repository README;
not re-measured by hf_av: the released checkpoints are on Google Drive / Baidu Pan), what the converter produced
(keys mapped and dropped on purpose), how to run the folder (its pipeline) and the known limits. Like the rest of
`hf_av.hub` this module never imports `hf_av.conversion`: the converter hands its key report in as plain numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..families import PaperTable, get_family
from .model_card import ModelCardContent, ReportedResult, family_sections

__all__ = ["DG_SCT_TASK_CARDS", "ConversionSummary", "DgSctTaskCard", "dg_sct_task_model_card"]

SOURCE = "https://github.com/haoyi-duan/DG-SCT"


@dataclass(frozen=True)
class DgSctTaskCard:
    """What a card says about one task: name, Hub metadata, the paper's numbers, usage, inputs and limits."""

    name: str
    what: str
    pipeline_tag: str
    dataset: tuple[str, str]  # (name, Hub dataset type)
    task_type: str
    table: PaperTable
    results: tuple[tuple[str, str, float], ...]  # (metric name, metric type, value) for model-index
    inputs: str
    usage: str
    limits: tuple[str, ...]


@dataclass
class ConversionSummary:
    """The converter's key report, as numbers: original keys read, keys written, keys dropped on purpose by
    reason (reason -> count)."""

    source_file: str
    num_source_keys: int
    num_target_keys: int
    dropped: Mapping[str, int] = field(default_factory=dict)


_SEGMENT = ("Segment-level", 59.0, 59.4, 52.8, 57.1, 57.0)
_EVENT = ("Event-level", 49.2, 56.1, 46.1, 50.5, 49.1)

DG_SCT_TASK_CARDS: Mapping[str, DgSctTaskCard] = {
    "avvp": DgSctTaskCard(
        name="DG-SCT (AVVP audio-visual video parsing, LLP)",
        what="weakly supervised audio-visual video parsing on LLP (25 events; audio, visual and audio-visual events "
        "per 1-second segment, trained from video-level labels) with the MGN grouping head",
        pipeline_tag="video-classification",
        dataset=("LLP", "llp"),
        task_type="audio-visual-video-parsing",
        table=PaperTable(
            title="Paper results (LLP test set, F-scores)",
            columns=("level", "audio", "visual", "audio-visual", "type@AV", "event@AV"),
            rows=(_SEGMENT, _EVENT),
        ),
        results=tuple(
            (f"{level[0].lower()} {name} F-score", "f1", value)
            for level in (_SEGMENT, _EVENT)
            for name, value in zip(("audio", "visual", "audio-visual", "type@AV", "event@AV"), level[1:])
        ),
        inputs=(
            "`input_values` (ten 1-s segments, each tiled to 10 s before HTS-AT's log-mel, as the original loader), "
            "`pixel_values` (ten 192 x 192 frames) and `clip_features`: the precomputed R(2+1)D-18 features of the "
            "ten segments (`[10, 512]`, the original's `visual_st`; the LLP release's `feats/r2plus1d_18/<video>.npy`), "
            "which `DgSctVideoParsingProcessor(..., clip_features=array or .npy path)` adds."
        ),
        usage=(
            "```python\nimport hf_av  # registers the model and the pipelines\nfrom transformers import pipeline\n\n"
            "parser = pipeline(\"audio-visual-event-localization\", model=\"path/to/this/folder\")\n"
            "result = parser(\"clip.mp4\", clip_features=\"feats/r2plus1d_18/clip.npy\")\n"
            "result[\"video_labels\"]  # events of the video (global probability >= 0.5)\n"
            "result[\"audio\"][\"events\"], result[\"visual\"][\"events\"], result[\"audio-visual\"][\"events\"]\n"
            "print(hf_av.pipelines.format_event_timeline(result))\n```\n\n"
            "Segments are read as the original evaluation: an event of a modality in a segment when its frame "
            "probability and the video-level probability are both >= 0.5; audio-visual = both modalities."
        ),
        limits=(
            "hf_av does not extract the R(2+1)D-18 clip features the original MGN head fuses (that needs "
            "torchvision's `r2plus1d_18` with downloaded Kinetics weights and the LLP extraction script); pass the "
            "LLP release's `.npy` features. A model built with `clip_feature_size=None` needs none and parses from "
            "the video alone, but it is not the paper's architecture and has no published numbers.",
            "The original runs HTS-AT mixup (`mixup_lambda`) on the audio features in training; hf_av does not.",
        ),
    ),
    "avqa": DgSctTaskCard(
        name="DG-SCT (MUSIC-AVQA audio-visual question answering)",
        what="audio-visual question answering on MUSIC-AVQA (42 answers) with the AVST question encoder, "
        "audio-guided spatial grounding and question-guided temporal attention",
        pipeline_tag="visual-question-answering",
        dataset=("MUSIC-AVQA", "music-avqa"),
        task_type="audio-visual-question-answering",
        table=PaperTable(
            title="Paper results (MUSIC-AVQA test set, accuracy)",
            columns=("audio questions", "visual questions", "audio-visual questions", "average"),
            rows=((77.4, 81.9, 70.7, 74.8),),
        ),
        results=(("audio question accuracy", "accuracy", 77.4), ("visual question accuracy", "accuracy", 81.9),
                 ("audio-visual question accuracy", "accuracy", 70.7), ("average accuracy", "accuracy", 74.8)),
        inputs=(
            "`input_values`, `pixel_values` (ten segments) and the question's `input_ids`: "
            "`DgSctQuestionAnsweringProcessor(videos=..., text=question)` tokenises it the original way (split on "
            "spaces, the last word's \"?\" dropped, the 93-word train vocabulary, right-padded to 14)."
        ),
        usage=(
            "```python\nimport hf_av  # registers the model and the pipelines\nfrom transformers import pipeline\n\n"
            "answerer = pipeline(\"audio-visual-question-answering\", model=\"path/to/this/folder\")\n"
            "answerer(\"clip.mp4\", question=\"How many instruments are sounding in the video?\", top_k=3)\n"
            "# [{\"answer\": ..., \"answer_id\": ..., \"score\": ...}, ...]\n"
            "answerer(\"clip.mp4\", question=\"Is the <Object> always playing?\", templ_values=[\"piano\"])\n```"
        ),
        limits=(
            "The question and answer vocabularies come from the MUSIC-AVQA train json: convert with "
            "`--question-json avqa-train.json` to get the tokenizer and the answer names; without it the folder "
            "has numbered answers and no question tokenizer.",
            "Questions longer than 14 words or with a word outside the vocabulary are refused (the original has no "
            "unknown token). The negative frames of the original's audio-visual matching loss are optional: they "
            "change no answer.",
            "The original forward hard-codes the 6 x 6 grid of Swin-V2-L at 192 px; hf_av reads the grid from the "
            "config.",
        ),
    ),
    "avs": DgSctTaskCard(
        name="DG-SCT (AVSBench audio-visual segmentation)",
        what="audio-visual segmentation on AVSBench (a sounding-object mask per frame) with the AVSBench temporal "
        "attention, TPAVI audio fusion and FPN decoder",
        pipeline_tag="image-segmentation",
        dataset=("AVSBench", "avsbench"),
        task_type="audio-visual-segmentation",
        table=PaperTable(
            title="Paper results (AVSBench test sets)",
            columns=("setting", "mIoU (M_J)", "F-score (M_F)"),
            rows=(("S4 (single source)", 80.9, 89.2), ("MS3 (multiple sources)", 53.5, 64.2)),
        ),
        results=(("S4 mIoU (M_J)", "mean_iou", 80.9), ("S4 F-score (M_F)", "f1", 89.2),
                 ("MS3 mIoU (M_J)", "mean_iou", 53.5), ("MS3 F-score (M_F)", "f1", 64.2)),
        inputs=(
            "`input_values` (five 1-s segments, each tiled 5x, as the AVSBench loader) and `pixel_values` (five "
            "224 x 224 frames, resized to 192 inside the model) from `DgSctSegmentationProcessor`; "
            "`return_image_sizes=True` adds each clip's frame size for the mask post-processing."
        ),
        usage=(
            "```python\nimport hf_av  # registers the model and the pipelines\nfrom transformers import pipeline\n\n"
            "segmenter = pipeline(\"audio-visual-segmentation\", model=\"path/to/this/folder\")\n"
            "result = segmenter(\"clip.mp4\")  # masks at the clip's frame size, sigmoid > 0.5 as AVSBench\n"
            "result[\"segments\"][0][\"mask\"].save(\"frame0.png\")  # PIL; return_tensors=True gives bool tensors\n```"
        ),
        limits=(
            "Only S4 checkpoints convert: the converter builds the S4 release's DG-SCT modules (the other "
            "modality's tokens bicubically resampled onto the own grid). MS3 uses `conv_adapter` and alpha/beta "
            "0.2/0.1 instead, which it does not read; the MS3 numbers are listed for reference only.",
            "S4 trains on the first frame's mask of each clip (one annotated frame per training clip); the loss "
            "also takes a mask per frame.",
            "The original builds and loads an unused PVT-v2-b5 backbone and unused convolutions; they are dropped "
            "(listed below).",
        ),
    ),
}


def dg_sct_task_model_card(task: str, config, conversion: ConversionSummary | None = None) -> ModelCardContent:
    """The card of a DG-SCT `task` folder (`"avvp"`, `"avqa"`, `"avs"`); `conversion`: the converter's key report
    (None for a folder not converted from an original checkpoint)."""
    if task not in DG_SCT_TASK_CARDS:
        raise ValueError(f"unknown DG-SCT task {task!r}; cards exist for {sorted(DG_SCT_TASK_CARDS)}")
    card = DG_SCT_TASK_CARDS[task]
    facts = get_family("dg-sct").card
    dataset_name, dataset_type = card.dataset
    origin = f"Converted with hf_av from `{Path(conversion.source_file).name}`." if conversion else ""
    sections = {"Usage": card.usage, "Inputs": card.inputs, card.table.title: card.table.to_markdown()}
    sections["Numbers"] = (
        "The numbers above are the paper's (Duan et al., NeurIPS 2023, and the original repository's README), "
        "measured by the authors with the original code; hf_av checks its port against the original code's outputs "
        "(<= 1e-5 absolute, fp32) on tiny models, not by re-running these benchmarks."
    )
    if conversion is not None:
        dropped = "\n".join(f"- {reason}: {count} key(s)" for reason, count in conversion.dropped.items())
        sections["Conversion"] = (
            f"{conversion.num_source_keys} original keys -> {conversion.num_target_keys} keys (safetensors)"
            + (f"; dropped on purpose:\n{dropped}" if dropped else "; nothing dropped.")
        )
    trainable = getattr(config, "trainable_parameters", None) or []
    sections["Trainable parameters"] = (
        "`config.trainable_parameters` lists what trains, as the original: " + ", ".join(f"`{p}`" for p in trainable)
    )
    sections["Limits"] = "\n".join(f"- {limit}" for limit in card.limits)
    sections.update({key: value for key, value in family_sections(facts).items() if key in ("Licence", "Citation")})
    return ModelCardContent(
        model_name=card.name,
        summary=(
            "DG-SCT (Duan et al., NeurIPS 2023): dual-guided spatial-channel-temporal prompts between a frozen "
            f"Swin-V2 (visual) and a frozen HTS-AT (audio), here for {card.what}. {origin}"
        ).strip(),
        license=facts.license,
        pipeline_tag=card.pipeline_tag,
        tags=[*facts.tags[:2], task, card.task_type],
        datasets=[dataset_name],
        results=[
            ReportedResult(card.task_type, dataset_name, dataset_type, metric_type, value, name, "test", SOURCE)
            for name, metric_type, value in card.results
        ],
        sections=sections,
    )
