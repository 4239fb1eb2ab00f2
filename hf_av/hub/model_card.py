"""Model cards (README.md with YAML metadata) for converted hf_av models, written with `huggingface_hub.ModelCard`.

`write_model_card` is family-agnostic: metadata (library, pipeline tag, tags, licence of the original weights,
provenance, reported results) plus a Markdown body. What a card says about the original work (paper, citation,
licence, the paper's numbers) comes from the family's row (`hf_av.families`): `family_sections` renders it,
`family_model_card` is the card of a converted checkpoint of a family without its own builder,
`cav_mae_model_card` the richer one of CAV-MAE, and `trained_model_card` the card `hf_av.training` writes.

This module never imports `hf_av.conversion` (the converters import it): what a converter knows about a released
checkpoint is handed in as the `checkpoint` argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..families import CardFacts, get_family, resolve


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
    facts = get_family("cav-mae").card
    original_repo = facts.original_repository
    name = checkpoint.name if checkpoint is not None else f"CAV-MAE ({Path(source_file).name})"
    pretraining = model_class_name == "CavMaeForPreTraining"
    tags = list(facts.tags)
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
                source_url=original_repo,
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
        f"- Converted from the original checkpoint `{Path(source_file).name}` of {original_repo} "
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
    return ModelCardContent(
        model_name=name,
        summary=(
            f"{_citation_line('cav-mae')} for the "
            f"`hf_av` package. {checkpoint.description if checkpoint is not None else ''}".strip()
        ),
        license=facts.license,
        pipeline_tag="feature-extraction" if pretraining else "audio-classification",
        tags=tags,
        datasets=datasets,
        base_model=None,
        results=results,
        sections={
            "Usage": usage,
            "Provenance": "\n".join(provenance),
            **family_sections(facts),
        },
    )


def _citation_line(model_type: str) -> str:
    """"CAV-MAE (Contrastive Audio-Visual Masked Autoencoder, Gong et al., ICLR 2023, <paper>)"."""
    family = get_family(model_type)
    facts = family.card
    return f"{family.name} ({facts.paper_title}, {facts.authors_venue}, {facts.paper})"


def family_sections(facts: CardFacts) -> dict[str, str]:
    """The card sections every card of a family has: the paper's numbers, licence and citation."""
    sections = {}
    if facts.paper_results is not None:
        sections[facts.paper_results.title] = facts.paper_results.to_markdown()
    sections["Licence"] = facts.license_text
    sections["Citation"] = f"```bibtex\n{facts.citation}\n```"
    return sections


def family_model_card(config, source_file: str, checkpoint=None, model_class_name: str = "") -> ModelCardContent:
    """Card of a converted checkpoint from the family row alone (families whose row names no `card_builder`)."""
    family = get_family(config.model_type)
    facts = family.card
    return ModelCardContent(
        model_name=getattr(checkpoint, "name", None) or f"{family.name} ({Path(source_file).name})",
        summary=f"{_citation_line(family.model_type)} for the `hf_av` package.",
        license=facts.license,
        pipeline_tag="feature-extraction",
        tags=list(facts.tags),
        sections={
            "Provenance": f"- Converted from `{Path(source_file).name}` of {facts.original_repository}"
            + (f" with `{family.converter.script}`." if family.converter is not None else "."),
            **family_sections(facts),
        },
    )


def build_family_model_card(config, source_file: str, checkpoint=None, model_class_name: str = "") -> ModelCardContent:
    """The card of a converted checkpoint: the family's own builder (its row's `card_builder`) or the generic one."""
    builder_path = get_family(config.model_type).card.card_builder
    builder = resolve(builder_path, f"{config.model_type} card builder") if builder_path else family_model_card
    return builder(config, source_file, checkpoint, model_class_name)


def _backbone_start(job: dict) -> str:
    backbone, audio_backbone = job.get("backbone_name_or_path"), job.get("audio_backbone_name_or_path")
    if not backbone:
        return "- Trained from scratch (random initialisation)."
    towers = f"`{backbone}`" + (f" (visual) and `{audio_backbone}` (audio)" if audio_backbone else "")
    return f"- Built around the pretrained backbone(s) {towers}, frozen; adapters and head newly initialised."


# Hub pipeline tag of a trained folder by training task (the Hub has no audio-visual event-localisation tag; the
# converted LAVisH / DG-SCT cards use video-classification too)
_TRAINED_PIPELINE_TAGS = {"classification": "audio-classification", "event-localization": "video-classification"}


def trained_model_card(config, results: dict, model_class_name: str = "") -> ModelCardContent:
    """Card of a model folder written by `hf_av.training.run_training` (`results`: its `hf_av_results.json`)."""
    family = get_family(config.model_type)
    facts = family.card
    job = results.get("job", {})
    trainable = results.get("trainable_parameters") or {}
    start = job.get("model_name_or_path")
    lines = [
        f"- Task: `{job.get('task')}`; model class `{model_class_name or type(config).__name__}`.",
        f"- Started from: `{start}`." if start else _backbone_start(job),
        f"- Training manifest: `{job.get('train_manifest')}`; evaluation manifest: `{job.get('eval_manifest')}`.",
    ]
    if trainable:
        patterns = trainable.get("patterns")
        lines.append(
            f"- Trainable parameters: {trainable['trainable']:,} of {trainable['total']:,} "
            f"({100.0 * trainable['trainable'] / max(trainable['total'], 1):.2f}%); policy: "
            + (", ".join(f"`{p}`" for p in patterns) if patterns else "everything trains")
            + "."
        )
    metrics = results.get("metrics") or {}
    if metrics:
        lines.append("- Evaluation: " + ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                                               for k, v in sorted(metrics.items())))
    sections = {"Training": "\n".join(lines)}
    if job.get("task") == "event-localization":
        sections["Usage"] = (
            "```python\nimport hf_av  # registers the family and the pipeline\nfrom transformers import pipeline\n\n"
            "localizer = pipeline(\"audio-visual-event-localization\", model=\"path/to/this/folder\")\n"
            "result = localizer(\"clip.mp4\")  # {\"segments\": [per-segment label, score, start, end], \"events\": [...]}\n"
            "print(hf_av.pipelines.format_event_timeline(result))\n```"
        )
    sections.update(family_sections(facts))
    return ModelCardContent(
        model_name=f"{family.name} trained with hf_av ({job.get('task')})",
        summary=f"{_citation_line(family.model_type)}, trained with `hf_av.training`.",
        license=facts.license,
        pipeline_tag=_TRAINED_PIPELINE_TAGS.get(job.get("task"), "feature-extraction"),
        tags=list(facts.tags),
        # a Hub id (not a local folder) is the card's base model: the start folder, else the (visual) backbone
        base_model=next((source for source in (start, job.get("backbone_name_or_path"))
                         if source and "/" in source and not Path(source).exists()), None),
        sections=sections,
    )


__all__ = [
    "ModelCardContent",
    "ReportedResult",
    "build_family_model_card",
    "cav_mae_model_card",
    "family_model_card",
    "family_sections",
    "render_model_card",
    "trained_model_card",
    "write_model_card",
]
