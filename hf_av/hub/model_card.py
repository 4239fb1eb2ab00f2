"""Model cards (README.md with YAML metadata) for converted hf_av models, written with `huggingface_hub.ModelCard`.

`write_model_card` is family-agnostic: metadata (library, pipeline tag, tags, licence of the original weights,
provenance, reported results) plus a Markdown body. `cav_mae_model_card` fills it for a CAV-MAE conversion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData


@dataclass
class ReportedResult:
    """A number reported by the original authors (goes into `model-index`)."""

    task_type: str
    dataset_name: str
    dataset_type: str
    metric_type: str
    metric_value: float
    metric_name: str | None = None
    dataset_split: str | None = None
    source_url: str | None = None
    source_name: str | None = None  # e.g. "hf_av evaluation" for our measured numbers; default: the original paper


@dataclass
class ModelCardContent:
    model_name: str
    summary: str
    license: str
    pipeline_tag: str
    tags: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    base_model: str | None = None
    results: list[ReportedResult] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)  # heading -> Markdown body, in order


def render_model_card(content: ModelCardContent) -> ModelCard:
    eval_results = [
        EvalResult(
            task_type=r.task_type, dataset_type=r.dataset_type, dataset_name=r.dataset_name,
            metric_type=r.metric_type, metric_value=r.metric_value, metric_name=r.metric_name,
            dataset_split=r.dataset_split,
            source_name=r.source_name or ("original paper / repository" if r.source_url else None),
            source_url=r.source_url,
        )
        for r in content.results
    ]
    data = ModelCardData(
        library_name="hf_av",
        license=content.license,
        pipeline_tag=content.pipeline_tag,
        tags=sorted(set(["hf_av", *content.tags])),
        datasets=content.datasets or None,
        base_model=content.base_model,
        model_name=content.model_name,
        eval_results=eval_results or None,
    )
    body = [f"# {content.model_name}", "", content.summary, ""]
    for heading, text in content.sections.items():
        body += [f"## {heading}", "", text.strip(), ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))


def write_model_card(output_dir: str | Path, content: ModelCardContent) -> Path:
    """Render `content` and save it as `output_dir/README.md`; returns the path."""
    path = Path(output_dir) / "README.md"
    render_model_card(content).save(path)
    return path


def cav_mae_model_card(config, source_file: str, checkpoint=None, model_class_name: str = "") -> ModelCardContent:
    """Card content for a converted CAV-MAE checkpoint (`checkpoint`: registry entry or None for other files)."""
    from ..conversion.cav_mae_checkpoints import ORIGINAL_LICENSE, ORIGINAL_REPO, PAPER, PAPER_RESULTS

    name = checkpoint.name if checkpoint is not None else f"CAV-MAE ({Path(source_file).name})"
    pretraining = model_class_name == "CavMaeForPreTraining"
    tags = ["audio-visual", "cav-mae", "audioset"]
    datasets = []
    results = []
    if checkpoint is not None and checkpoint.dataset is not None:
        dataset_title = {"audioset": "AudioSet", "vggsound": "VGGSound"}[checkpoint.dataset]
        if checkpoint.dataset == "vggsound":
            tags.append("vggsound")
        results.append(
            ReportedResult(
                task_type="audio-classification", dataset_name=dataset_title, dataset_type=checkpoint.dataset,
                metric_type="map" if checkpoint.metric == "mAP" else "accuracy", metric_value=checkpoint.metric_value,
                metric_name=f"{checkpoint.metric} ({checkpoint.finetuning_mode}, 10-frame averaging)",
                source_url=ORIGINAL_REPO,
            )
        )
    if pretraining:
        usage = (
            "```python\nimport hf_av  # registers CAV-MAE with the Auto classes\n"
            "from transformers import AutoModel, AutoProcessor\n\n"
            "model = AutoModel.from_pretrained(\"path/to/this/folder\")  # CavMaeModel: features and embeddings\n"
            "processor = AutoProcessor.from_pretrained(\"path/to/this/folder\")\n"
            "inputs = processor(videos=\"clip.mp4\", return_tensors=\"pt\")\n"
            "out = model(**inputs)\n"
            "out.audio_embeds, out.visual_embeds, out.logits_per_audio  # retrieval\n```\n"
            "`CavMaeForPreTraining.from_pretrained(...)` continues pre-training (masked reconstruction + contrastive loss)."
        )
    else:
        usage = (
            "```python\nimport hf_av\nfrom hf_av import CavMaeForAudioVisualClassification, CavMaeProcessor\n\n"
            "model = CavMaeForAudioVisualClassification.from_pretrained(\"path/to/this/folder\")\n"
            "processor = CavMaeProcessor.from_pretrained(\"path/to/this/folder\")\n"
            "inputs = processor(videos=\"clip.mp4\", return_tensors=\"pt\")\n"
            "logits = model(**inputs).logits  # or mode=\"audioonly\" / \"missingaudioonly\" ...\n```\n"
            "Pass `pixel_values` of shape `[B, 10, 3, 224, 224]` to average the per-frame probabilities as the paper "
            "evaluates."
        )
    provenance = [
        f"- Converted from the original checkpoint `{Path(source_file).name}` of {ORIGINAL_REPO} "
        "with `conversion_scripts/convert_cav_mae_original_to_hf.py` (every key mapped or deliberately dropped; "
        "strict load). Parity with the original code is tested in fp32 (max abs diff <= 1e-5).",
    ]
    if checkpoint is not None:
        provenance.append(f"- Released file: {checkpoint.url}")
        if checkpoint.pretrained_from:
            provenance.append(f"- Fine-tuned from: {checkpoint.pretrained_from}; mode `{checkpoint.finetuning_mode}`.")
        if checkpoint.training_notes:
            provenance.append(f"- Pre-training: {checkpoint.training_notes}.")
    provenance.append(
        "- The unused LayerNorm variants of the modality-specific and decoder blocks (`norm{1,2}_{a,v}`) are dropped."
    )
    paper_rows = "\n".join(
        f"| {task} | {r['audio']} | {r['visual']} | {r['audio-visual']} |" for task, r in PAPER_RESULTS.items()
    )
    return ModelCardContent(
        model_name=name,
        summary=(
            f"CAV-MAE (Contrastive Audio-Visual Masked Autoencoder, Gong et al., ICLR 2023, {PAPER}) for the "
            f"`hf_av` package. {checkpoint.description if checkpoint is not None else ''}".strip()
        ),
        license=ORIGINAL_LICENSE,
        pipeline_tag="feature-extraction" if pretraining else "audio-classification",
        tags=tags,
        datasets=datasets,
        base_model=None,
        results=results,
        sections={
            "Usage": usage,
            "Provenance": "\n".join(provenance),
            "Paper results (CAV-MAE Scale+, Table 1)": (
                "| task | audio | visual | audio-visual |\n|---|---|---|---|\n" + paper_rows
            ),
            "Licence": (
                "The original code and weights are released under the BSD 2-Clause licence "
                f"(Copyright (c) 2023, Yuan Gong; {ORIGINAL_REPO}/blob/main/LICENSE)."
            ),
            "Citation": (
                "```bibtex\n@inproceedings{gong2023contrastive,\n  title={Contrastive Audio-Visual Masked Autoencoder},\n"
                "  author={Gong, Yuan and Rouditchenko, Andrew and Liu, Alexander H. and Harwath, David and "
                "Karlinsky, Leonid and Kuehne, Hilde and Glass, James R.},\n  booktitle={ICLR},\n  year={2023}\n}\n```"
            ),
        },
    )


__all__ = ["ModelCardContent", "ReportedResult", "cav_mae_model_card", "render_model_card", "write_model_card"]
