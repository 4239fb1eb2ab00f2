"""The family registry: one row per model family, read by registration, the CLI, training and model cards.

A row names everything hf_av knows about a family: its `model_type`, config class, model class per Auto class,
preprocessing classes, converter of original checkpoints, model-card facts and the training tasks it has a head
for. Adding a family is one `ModelFamily(...)` row in `FAMILIES` plus the family's own files (see the README,
"Adding a family").

Classes are named by dotted import path (strings), not referenced directly, so that importing this module imports
nothing but the standard library: `hf-av --help`, `hf-av list` and the `convert` choices need no torch model code,
a converter that needs an optional dependency (TensorFlow for VATT) does not load it until it runs, and the rows
can never start an import cycle (every other part of hf_av may import this module). `resolve()` turns a path
into the object and names the row and field when it is wrong; `tests/test_families.py` resolves every path of every
row, so a typo fails the test suite, not a user.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

# Auto classes hf_av defines itself (`hf_av.auto`); every other Auto class name is looked up in `transformers`.
HF_AV_AUTO_CLASSES = (
    "AutoModelForAudioVisualClassification",
    "AutoModelForAudioVisualEventLocalization",
    "AutoModelForAudioVisualQuestionAnswering",
    "AutoModelForAudioVisualSegmentation",
)


def resolve(path: str, what: str = "object"):
    """Import `"package.module.Name"` and return `Name`; the error names `what` and the path."""
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise ValueError(f"{what}: {path!r} is not a dotted import path (package.module.Name)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(f"{what}: cannot import module {module_name!r} of {path!r} ({error})") from error
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ImportError(f"{what}: module {module_name!r} has no attribute {attribute!r}") from None


def auto_class(name: str):
    """The Auto class called `name`: hf_av's own (`hf_av.auto`) or Transformers'."""
    module = "hf_av.auto" if name in HF_AV_AUTO_CLASSES else "transformers"
    return resolve(f"{module}.{name}", f"Auto class {name}")


@dataclass(frozen=True)
class ConverterSpec:
    """How original checkpoints of a family become model folders.

    Args:
        function: dotted path of `convert(checkpoint, output_dir, original_config=None, original_model=None) ->
            Path` (writes weights, config, processor and model card).
        original_kinds: the original model kinds the converter accepts (`--original-model` choices), e.g.
            `("pretrain", "finetune")`.
        checkpoint_format: what `--checkpoint` is, for help texts (`"PyTorch .pth"`, `"TF2 object checkpoint"`).
        script: the thin wrapper in `conversion_scripts/`.
        find_released_checkpoint: dotted path of `lookup(path) -> entry | None` giving what is known about a
            released file (passed to the card builder by `hf-av card`), or None.
    """

    function: str
    original_kinds: tuple[str, ...]
    checkpoint_format: str
    script: str
    find_released_checkpoint: str | None = None

    def load(self):
        return resolve(self.function, "converter")


@dataclass(frozen=True)
class PaperTable:
    """Numbers of the original paper shown in model cards (a Markdown table; values as the paper prints them)."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]

    def to_markdown(self) -> str:
        header = "| " + " | ".join(self.columns) + " |"
        rule = "|" + "---|" * len(self.columns)
        return "\n".join([header, rule, *("| " + " | ".join(str(v) for v in row) + " |" for row in self.rows)])


@dataclass(frozen=True)
class CardFacts:
    """What every model card of the family says about the original work.

    Args:
        paper_title: the paper's title, e.g. "Contrastive Audio-Visual Masked Autoencoder".
        authors_venue: "Gong et al., ICLR 2023".
        paper: paper address.
        original_repository: the original code.
        license: Hub licence id of the original weights (`huggingface_hub` metadata).
        license_text: the sentence for the card's Licence section.
        citation: BibTeX.
        tags: Hub tags of every card of the family.
        paper_results: the paper's numbers, or None.
        card_builder: dotted path of the converted-checkpoint card builder
            `(config, source_file, released_entry | None, model_class_name) -> ModelCardContent`; None uses
            `hf_av.hub.model_card.family_model_card`.
    """

    paper_title: str
    authors_venue: str
    paper: str
    original_repository: str
    license: str
    license_text: str
    citation: str
    tags: tuple[str, ...] = ()
    paper_results: PaperTable | None = None
    card_builder: str | None = None


@dataclass(frozen=True)
class ModelFamily:
    """One model family.

    Args:
        model_type: the config's `model_type` (`cav-mae`, `vatt`, `lavish`, `dg-sct`).
        name: display name.
        config: dotted path of the config class.
        models: Auto class name -> dotted path of the model class registered with it. Auto class names are
            Transformers' (`AutoModel`, `AutoModelForPreTraining`, ...) or hf_av's (`HF_AV_AUTO_CLASSES`). One
            model class may be registered with several Auto classes.
        feature_extractor / image_processor / video_processor / tokenizer / processor: dotted paths, or None.
        converter: how original checkpoints are converted, or None.
        card: model-card facts.
        tasks: training task (`hf_av.training.tasks.TASKS`) -> class name of the head it trains (one of `models`).
        processor_for_config: dotted path of `f(config) -> processor` whose sizes match a config built from
            scratch (training without a model folder), or None.
    """

    model_type: str
    name: str
    config: str
    models: Mapping[str, str]
    card: CardFacts
    feature_extractor: str | None = None
    image_processor: str | None = None
    video_processor: str | None = None
    tokenizer: str | None = None
    processor: str | None = None
    converter: ConverterSpec | None = None
    tasks: Mapping[str, str] = field(default_factory=dict)
    processor_for_config: str | None = None

    def __post_init__(self):
        # read-only views, so a row cannot be changed after the fact through its dicts
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))
        object.__setattr__(self, "tasks", MappingProxyType(dict(self.tasks)))
        class_names = {path.rsplit(".", 1)[-1] for path in self.models.values()}
        unknown = sorted(set(self.tasks.values()) - class_names)
        if unknown:
            raise ValueError(
                f"{self.model_type}: task heads {unknown} are not among its model classes {sorted(class_names)}"
            )

    # -- resolution (imports happen here, never when the row is built) --
    def config_class(self):
        return resolve(self.config, f"{self.model_type} config")

    def model_classes(self) -> dict[str, type]:
        """Auto class name -> model class."""
        return {auto: resolve(path, f"{self.model_type} {auto} model") for auto, path in self.models.items()}

    def model_class(self, class_name: str) -> type:
        for path in self.models.values():
            if path.rsplit(".", 1)[-1] == class_name:
                return resolve(path, f"{self.model_type} model")
        raise ValueError(f"{self.model_type} has no model class {class_name!r}; it has {self.model_class_names}")

    @property
    def model_class_names(self) -> list[str]:
        return sorted({path.rsplit(".", 1)[-1] for path in self.models.values()})

    def preprocessing_classes(self) -> dict[str, type]:
        """`"feature_extractor"` / `"image_processor"` / ... -> class, for the ones the family has."""
        kinds = ("feature_extractor", "image_processor", "video_processor", "tokenizer", "processor")
        return {
            kind: resolve(getattr(self, kind), f"{self.model_type} {kind}") for kind in kinds if getattr(self, kind)
        }

    def head_for_task(self, task: str) -> type:
        if task not in self.tasks:
            raise ValueError(
                f"model type {self.model_type!r} has no head for task {task!r}; "
                f"it trains: {sorted(self.tasks) or 'none'}"
            )
        return self.model_class(self.tasks[task])

    def public_names(self) -> list[str]:
        """Class names `hf_av` exports for this family."""
        paths = [self.config, *self.models.values()]
        paths += [p for p in (self.feature_extractor, self.image_processor, self.video_processor, self.tokenizer,
                              self.processor) if p]
        return sorted({p.rsplit(".", 1)[-1] for p in paths})


# ---------------------------------------------------------------------------------------------------------------------
# The rows
# ---------------------------------------------------------------------------------------------------------------------
CAV_MAE = ModelFamily(
    model_type="cav-mae",
    name="CAV-MAE",
    config="modeling.cav_mae.CavMaeConfig",
    models={
        "AutoModel": "modeling.cav_mae.CavMaeModel",
        "AutoModelForPreTraining": "modeling.cav_mae.CavMaeForPreTraining",
        # audio-only input runs the original `audioonly` mode, so Transformers' stock `audio-classification`
        # pipeline works with the classifier; it is not a video classifier for the stock pipeline, which feeds
        # consecutive frames, not the paper's ten spread-out frames
        "AutoModelForAudioClassification": "modeling.cav_mae.CavMaeForAudioVisualClassification",
        "AutoModelForAudioVisualClassification": "modeling.cav_mae.CavMaeForAudioVisualClassification",
    },
    feature_extractor="hf_av.processing.cav_mae.CavMaeFeatureExtractor",
    image_processor="hf_av.processing.cav_mae.CavMaeImageProcessor",
    processor="hf_av.processing.cav_mae.CavMaeProcessor",
    converter=ConverterSpec(
        function="hf_av.conversion.cav_mae.convert_cav_mae_checkpoint",
        original_kinds=("pretrain", "finetune"),
        checkpoint_format="PyTorch .pth (DataParallel state dict)",
        script="conversion_scripts/convert_cav_mae_original_to_hf.py",
        find_released_checkpoint="hf_av.conversion.cav_mae_checkpoints.find_released_checkpoint",
    ),
    card=CardFacts(
        paper_title="Contrastive Audio-Visual Masked Autoencoder",
        authors_venue="Gong et al., ICLR 2023",
        paper="https://arxiv.org/abs/2210.07839",
        original_repository="https://github.com/YuanGongND/cav-mae",
        license="bsd-2-clause",
        license_text=(
            "The original code and weights are released under the BSD 2-Clause licence "
            "(Copyright (c) 2023, Yuan Gong; https://github.com/YuanGongND/cav-mae/blob/main/LICENSE)."
        ),
        citation=(
            "@inproceedings{gong2023contrastive,\n  title={Contrastive Audio-Visual Masked Autoencoder},\n"
            "  author={Gong, Yuan and Rouditchenko, Andrew and Liu, Alexander H. and Harwath, David and "
            "Karlinsky, Leonid and Kuehne, Hilde and Glass, James R.},\n  booktitle={ICLR},\n  year={2023}\n}"
        ),
        tags=("audio-visual", "cav-mae", "audioset"),
        paper_results=PaperTable(
            title="Paper results (CAV-MAE Scale+, Table 1)",
            columns=("task", "audio", "visual", "audio-visual"),
            rows=(
                ("AudioSet-20K mAP", 37.7, 19.8, 42.0),
                ("AudioSet-2M mAP", 46.6, 26.2, 51.2),
                ("VGGSound accuracy", 59.5, 47.0, 65.5),
            ),
        ),
        card_builder="hf_av.hub.model_card.cav_mae_model_card",
    ),
    tasks={"pretraining": "CavMaeForPreTraining", "classification": "CavMaeForAudioVisualClassification"},
    processor_for_config="hf_av.training.tasks.cav_mae_processor_for_config",
)

VATT = ModelFamily(
    model_type="vatt",
    name="VATT",
    config="modeling.vatt.VattConfig",
    models={
        "AutoModel": "modeling.vatt.VattModel",
        "AutoModelForPreTraining": "modeling.vatt.VattForPreTraining",
        "AutoModelForVideoClassification": "modeling.vatt.VattForVideoClassification",
        "AutoModelForAudioClassification": "modeling.vatt.VattForAudioClassification",
        # the classification task's head (hf-av train --task classification); `--modalities audio` trains the
        # audio classifier instead (hf_av.training.tasks.model_class_for)
        "AutoModelForAudioVisualClassification": "modeling.vatt.VattForVideoClassification",
    },
    feature_extractor="hf_av.processing.vatt.VattFeatureExtractor",
    video_processor="hf_av.processing.vatt.VattVideoProcessor",
    tokenizer="hf_av.processing.vatt.VattTokenizer",
    processor="hf_av.processing.vatt.VattProcessor",
    converter=ConverterSpec(
        function="hf_av.conversion.vatt.convert_vatt_checkpoint",
        original_kinds=("tx_fac", "ut_fac", "video_cls", "audio_cls"),
        checkpoint_format="TF2 object checkpoint (PATH/ckpt-N; TensorFlow not needed)",
        script="conversion_scripts/convert_vatt_tf_to_hf.py",
    ),
    card=CardFacts(
        paper_title="VATT: Transformers for Multimodal Self-Supervised Learning from Raw Video, Audio and Text",
        authors_venue="Akbari et al., NeurIPS 2021",
        paper="https://arxiv.org/abs/2104.11178",
        original_repository="https://github.com/google-research/google-research/tree/master/vatt",
        license="apache-2.0",
        license_text=(
            "The original code is part of google-research/google-research, released under the Apache License 2.0 "
            "(https://github.com/google-research/google-research/blob/master/LICENSE)."
        ),
        citation=(
            "@inproceedings{akbari2021vatt,\n  title={{VATT}: Transformers for Multimodal Self-Supervised Learning "
            "from Raw Video, Audio and Text},\n  author={Akbari, Hassan and Yuan, Liangzhe and Qian, Rui and "
            "Chuang, Wei-Hong and Chang, Shih-Fu and Cui, Yin and Gong, Boqing},\n  booktitle={NeurIPS},\n"
            "  year={2021}\n}"
        ),
        tags=("audio-visual", "vatt", "video", "contrastive-learning"),
        paper_results=PaperTable(
            title="Released fine-tuned checkpoints (original README: top-1 accuracy; AudioSet mAP)",
            columns=("dataset", "ViT-B (BBS)", "ViT-M (MBS)", "ViT-L (LBS)", "ViT-M (MA-Medium)"),
            rows=(
                ("Kinetics-400", 79.6, 81.1, 82.1, 79.9),
                ("Kinetics-600", 80.5, 82.4, 83.6, 80.8),
                ("Moments in Time", 38.7, 39.5, 41.1, 37.8),
                ("AudioSet mAP (WaT-B from BBS / WaT-M from MA-Medium)", 39.4, "", "", 39.3),
            ),
        ),
        card_builder="hf_av.conversion.vatt.vatt_model_card",
    ),
    tasks={"pretraining": "VattForPreTraining", "classification": "VattForVideoClassification"},
    processor_for_config="hf_av.conversion.vatt.processor_for_config",
)

LAVISH = ModelFamily(
    model_type="lavish",
    name="LAVisH",
    config="modeling.lavish.LavishConfig",
    models={
        "AutoModel": "modeling.lavish.LavishModel",
        "AutoModelForAudioVisualEventLocalization": "modeling.lavish.LavishForAudioVisualEventLocalization",
    },
    feature_extractor="hf_av.processing.lavish.LavishFeatureExtractor",
    image_processor="hf_av.processing.lavish.LavishImageProcessor",
    processor="hf_av.processing.lavish.LavishProcessor",
    converter=ConverterSpec(
        function="hf_av.conversion.lavish.convert_lavish_checkpoint",
        original_kinds=("ave",),
        checkpoint_format="PyTorch .pth (MMIL_Net state dict)",
        script="conversion_scripts/convert_lavish_original_to_hf.py",
    ),
    card=CardFacts(
        paper_title="Vision Transformers are Parameter-Efficient Audio-Visual Learners",
        authors_venue="Lin et al., CVPR 2023",
        paper="https://arxiv.org/abs/2212.07983",
        original_repository="https://github.com/GenjiB/LAVISH",
        license="mit",
        license_text=(
            "The original code is released under the MIT licence (badge of https://github.com/GenjiB/LAVISH); the "
            "authors released no trained weights. The frozen Swin-V2 backbone's weights keep their own licence."
        ),
        citation=(
            "@InProceedings{LAVISH_CVPR2023,\n  author = {Lin, Yan-Bo and Sung, Yi-Lin and Lei, Jie and Bansal, "
            "Mohit and Bertasius, Gedas},\n  title = {Vision Transformers are Parameter-Efficient Audio-Visual "
            "Learners},\n  booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern "
            "Recognition},\n  year = {2023}\n}"
        ),
        tags=("audio-visual", "lavish", "event-localization", "ave", "adapters"),
        paper_results=PaperTable(
            title="Paper result (AVE, Swin-V2-L backbone, ~10.1M trainable parameters)",
            columns=("task", "accuracy"),
            rows=(("AVE event localisation", 81.1),),
        ),
        card_builder="hf_av.conversion.lavish.lavish_model_card",
    ),
    tasks={"event-localization": "LavishForAudioVisualEventLocalization"},
    processor_for_config="hf_av.conversion.lavish.lavish_processor_for_config",
)

DG_SCT = ModelFamily(
    model_type="dg-sct",
    name="DG-SCT",
    config="modeling.dg_sct.DgSctConfig",
    models={
        "AutoModel": "modeling.dg_sct.DgSctModel",
        "AutoModelForAudioVisualEventLocalization": "modeling.dg_sct.DgSctForAudioVisualEventLocalization",
    },
    feature_extractor="hf_av.processing.dg_sct.DgSctFeatureExtractor",
    image_processor="hf_av.processing.dg_sct.DgSctImageProcessor",
    processor="hf_av.processing.dg_sct.DgSctProcessor",
    converter=ConverterSpec(
        function="hf_av.conversion.dg_sct.convert_dg_sct_checkpoint",
        original_kinds=("ave", "avvp", "avqa", "avs"),
        checkpoint_format="PyTorch .pt (the task model's state dict; AVQA's with DataParallel's module. prefix)",
        script="conversion_scripts/convert_dg_sct_original_to_hf.py",
    ),
    card=CardFacts(
        paper_title="Cross-modal Prompts: Adapting Large Pre-trained Models for Audio-Visual Downstream Tasks",
        authors_venue="Duan et al., NeurIPS 2023",
        paper="https://arxiv.org/abs/2311.05152",
        original_repository="https://github.com/haoyi-duan/DG-SCT",
        license="unknown",
        license_text=(
            "The original repository (https://github.com/haoyi-duan/DG-SCT) states no licence for its code or "
            "weights; the frozen backbones come from Swin-V2 (timm, MIT) and HTS-AT (MIT). Check with the authors "
            "before redistributing converted weights."
        ),
        citation=(
            "@inproceedings{duan2023cross,\n  title={Cross-modal Prompts: Adapting Large Pre-trained Models for "
            "Audio-Visual Downstream Tasks},\n  author={Duan, Haoyi and Xia, Yan and Zhou, Mingze and Tang, Li and "
            "Zhu, Jieming and Zhao, Zhou},\n  booktitle={NeurIPS},\n  year={2023}\n}"
        ),
        tags=("audio-visual", "dg-sct", "event-localization", "ave"),
        paper_results=PaperTable(
            title="Paper results (DG-SCT, Swin-V2-L + HTS-AT)",
            columns=("task", "metric", "value"),
            rows=(
                ("AVE event localisation", "accuracy", 82.2),
                ("AVVP (LLP) segment-level event", "F-score", 57.0),
                ("AVS S4", "mIoU", 80.9),
                ("MUSIC-AVQA", "average accuracy", 74.8),
            ),
        ),
        card_builder="hf_av.conversion.dg_sct.dg_sct_model_card",
    ),
    tasks={"event-localization": "DgSctForAudioVisualEventLocalization"},
    processor_for_config="hf_av.conversion.dg_sct.processor_for_config",
)




def _dg_sct_task_row(
    suffix: str, head: str, processor: str, task: str | None = None, pipeline_auto_class: str | None = None
) -> ModelFamily:
    """A DG-SCT downstream-task variant: same encoders, card and converter script as DG-SCT, its own config
    (`model_type` "dg-sct-<suffix>") and head, so folders of every task load with the Auto classes."""
    config_class = {"avvp": "DgSctVideoParsingConfig", "avqa": "DgSctQuestionAnsweringConfig",
                    "avs": "DgSctSegmentationConfig"}[suffix]
    return replace(
        DG_SCT,
        model_type=f"dg-sct-{suffix}",
        name=f"DG-SCT ({suffix.upper()})",
        config=f"modeling.dg_sct.{config_class}",
        # the head also under the Auto class its pipeline loads with (hf_av.pipelines)
        models={"AutoModel": f"modeling.dg_sct.{head}",
                **({pipeline_auto_class: f"modeling.dg_sct.{head}"} if pipeline_auto_class else {})},
        processor=processor,
        converter=None,  # the DG-SCT row's converter takes --original-model avvp|avqa|avs
        tasks={task: head} if task else {},
        processor_for_config=None,
    )


DG_SCT_AVVP = _dg_sct_task_row(
    "avvp", "DgSctForAudioVisualVideoParsing", "hf_av.processing.dg_sct_tasks.DgSctVideoParsingProcessor",
    task="video-parsing", pipeline_auto_class="AutoModelForAudioVisualEventLocalization",
)
DG_SCT_AVQA = _dg_sct_task_row(
    "avqa", "DgSctForAudioVisualQuestionAnswering", "hf_av.processing.dg_sct_tasks.DgSctQuestionAnsweringProcessor",
    task="question-answering", pipeline_auto_class="AutoModelForAudioVisualQuestionAnswering",
)
DG_SCT_AVS = _dg_sct_task_row(
    "avs", "DgSctForAudioVisualSegmentation", "hf_av.processing.dg_sct_tasks.DgSctSegmentationProcessor",
    task="segmentation", pipeline_auto_class="AutoModelForAudioVisualSegmentation",
)

FAMILIES: Mapping[str, ModelFamily] = MappingProxyType(
    {row.model_type: row for row in (CAV_MAE, VATT, LAVISH, DG_SCT, DG_SCT_AVVP, DG_SCT_AVQA, DG_SCT_AVS)}
)


def get_family(model_type: str) -> ModelFamily:
    """The row of `model_type`; the error lists the known ones."""
    try:
        return FAMILIES[model_type]
    except KeyError:
        raise ValueError(f"unknown model type {model_type!r}; hf_av knows: {', '.join(sorted(FAMILIES))}") from None


def families_with_converter() -> dict[str, ModelFamily]:
    return {model_type: row for model_type, row in FAMILIES.items() if row.converter is not None}


__all__ = [
    "FAMILIES",
    "HF_AV_AUTO_CLASSES",
    "CardFacts",
    "ConverterSpec",
    "ModelFamily",
    "PaperTable",
    "auto_class",
    "families_with_converter",
    "get_family",
    "resolve",
]
