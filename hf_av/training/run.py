"""The training entry point shared by every family and task (`hf-av train`, `examples/`, the main job).

One function, `run_training(job, training_args)`, builds model, processor, streams and collator from the task
table (`hf_av.training.tasks`), trains with `transformers.Trainer` (so `accelerate launch`, DDP, FSDP,
bf16 and checkpoint resume come from Transformers/Accelerate), evaluates and saves a model folder that the
Auto classes and pipelines load.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import AutoConfig, Trainer, TrainingArguments, set_seed

from .evaluation import evaluate_retrieval, evaluate_segments
from .tasks import check_head_inputs, classification_metrics, get_task, model_class_for, processor_for_config

logger = logging.getLogger(__name__)

DECODE_ERROR_REPORT = "decode_errors.jsonl"

MODALITY_KEYS = {
    "audio-visual": ("input_values", "pixel_values"),
    "audio": ("input_values",),
    "visual": ("pixel_values",),
}
# the manifest column holding a clip's narration (pre-training of models with a text tower: VATT's MIL-NCE)
TEXT_COLUMN = "text"
TEXT_KEYS = ("input_ids", "attention_mask")


@dataclass
class AudioVisualJobArguments:
    """What to train on and from where; parsed together with `TrainingArguments` by `hf-av train`."""

    task: str = field(
        metadata={"help": "pretraining | classification | event-localization | video-parsing | question-answering | "
                          "segmentation"}
    )
    train_manifest: str = field(
        metadata={"help": "csv/jsonl manifest (path, label(s) / segment_labels columns); several, comma-separated, "
                          "are trained on together (e.g. a clean and a noisy variant). video-parsing / "
                          "question-answering / segmentation: the original annotation file (AVVP_train.csv, "
                          "avqa-train.json, s4_meta_data.csv; see hf_av.data.dg_sct_tasks)"}
    )
    eval_manifest: str | None = field(default=None, metadata={"help": "manifest evaluated after training"})
    media_root: str | None = field(default=None, metadata={"help": "folder that relative manifest paths are under"})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "model folder to start from (converted or saved); default: from scratch"}
    )
    model_type: str = field(
        default="cav-mae", metadata={"help": "family when training from scratch (a model_type of `hf-av list`)"}
    )
    backbone_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "build a fresh adapter model (LAVisH, DG-SCT) around this pretrained backbone folder or Hub id: a "
            "Swin-V2 (`Swinv2Model` / `Swinv2ForImageClassification`); adapters and head start fresh, the backbone "
            "stays frozen (the config's trainable_parameters); --config_overrides set the adapter/head fields"
        },
    )
    audio_backbone_name_or_path: str | None = field(
        default=None,
        metadata={"help": "DG-SCT only, with --backbone_name_or_path: the pretrained HTS-AT audio tower folder "
                          "(`ClapAudioModel` / CLAP audio weights)"},
    )
    config_overrides: str | None = field(
        default=None, metadata={"help": 'JSON dict of config fields, e.g. \'{"hidden_size": 192}\''}
    )
    modalities: str = field(default="audio-visual", metadata={"help": "audio-visual | audio | visual"})
    head_learning_rate_multiplier: float = field(
        default=1.0, metadata={"help": "learning-rate factor of the new head (the original fine-tuning's head_lr)"}
    )
    eval_all_frames: bool = field(
        default=True, metadata={"help": "classification eval averages predictions over all sampled frames"}
    )
    max_decode_error_fraction: float = field(
        default=0.05, metadata={"help": "fail when more than this share of samples cannot be decoded"}
    )
    eval_batch_size: int = field(default=32, metadata={"help": "batch size of the retrieval evaluation"})
    augment: bool = field(
        default=False,
        metadata={
            "help": "the original's training-time augmentation: a random one of the processor's frames (evaluation "
            "keeps the middle one), fbank noise of random strength and a random circular time shift"
        },
    )
    preprocess_workers: int = field(
        default=0,
        metadata={"help": "with --preprocess_once: processes that decode the clips in parallel (0: in-process)"},
    )
    background_noise: str | None = field(
        default=None,
        metadata={
            "help": "comma-separated audio files or folders of background noise mixed into training audio at a "
            "random SNR (log-mel power domain, hf_av.data.noise; not in the original recipes)"
        },
    )
    background_noise_snr: str = field(default="-6,14", metadata={"help": "SNR range of the background noise, dB"})
    background_noise_probability: float = field(
        default=0.5, metadata={"help": "share of training examples that get background noise"}
    )
    trainable_parameters: list[str] | None = field(
        default=None,
        metadata={
            "help": "glob patterns (fnmatch) of the parameter names that train, e.g. 'classifier.*' "
            "'encoder.layer.11.*'; every other parameter is frozen (requires_grad False, not in the optimizer). "
            "Overrides the config's `trainable_parameters`; default: the config's policy, else everything trains"
        },
    )
    eval_split: str = field(
        default="val",
        metadata={"help": "segmentation (AVSBench s4_meta_data.csv, one file for every split): the split evaluated; "
                          "training reads the 'train' split"},
    )
    preprocess_once: bool = field(
        default=False,
        metadata={
            "help": "decode and preprocess every clip once, keep the tensors in memory and train epochs over them "
            "(small datasets; the stream is decoded again every epoch otherwise)"
        },
    )

    def __post_init__(self):
        get_task(self.task)
        if not self.model_name_or_path:
            from hf_av.families import get_family

            get_family(self.model_type)  # unknown families fail here, naming the known ones
        if self.backbone_name_or_path and self.model_name_or_path:
            raise ValueError(
                "pass either --model_name_or_path (a whole model folder) or --backbone_name_or_path (a fresh model "
                "around a pretrained backbone), not both"
            )
        if self.audio_backbone_name_or_path and not self.backbone_name_or_path:
            raise ValueError("--audio_backbone_name_or_path goes with --backbone_name_or_path (the visual backbone)")
        if self.modalities not in MODALITY_KEYS:
            raise ValueError(f"modalities must be one of {sorted(MODALITY_KEYS)}, got {self.modalities!r}")
        if self.head_learning_rate_multiplier <= 0:
            raise ValueError("head_learning_rate_multiplier must be > 0")
        if self.preprocess_workers < 0:
            raise ValueError(f"preprocess_workers must be >= 0, got {self.preprocess_workers}")
        if self.background_noise:
            from hf_av.data.noise import parse_range

            parse_range(self.background_noise_snr, "background_noise_snr")
            if not 0.0 <= self.background_noise_probability <= 1.0:
                raise ValueError(
                    f"background_noise_probability must be in [0, 1], got {self.background_noise_probability}"
                )


class AudioVisualTrainer(Trainer):
    """Trainer whose optimizer gives the classification head its own learning-rate factor, and which can augment
    training batches (`augmentation.augment_batch`) in the training step."""

    def __init__(self, *args, head_learning_rate_multiplier: float = 1.0, head_prefixes=("classifier",),
                 augmentation=None, **kwargs):
        self.head_learning_rate_multiplier = head_learning_rate_multiplier
        self.head_prefixes = tuple(head_prefixes)
        # applied in the training step only (see hf_av.data.augment for why not in the collator)
        self.augmentation = augmentation
        super().__init__(*args, **kwargs)

    def training_step(self, model, inputs, *args, **kwargs):
        if self.augmentation is not None:
            inputs = self.augmentation.augment_batch(inputs)
        return super().training_step(model, inputs, *args, **kwargs)

    def create_optimizer(self, model=None):
        if self.head_learning_rate_multiplier == 1.0 or self.optimizer is not None:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        decay = set(self.get_decay_parameter_names(opt_model))
        groups: dict[tuple[bool, bool], list] = {}
        for name, param in opt_model.named_parameters():
            if param.requires_grad:
                groups.setdefault((name.startswith(self.head_prefixes), name in decay), []).append(param)
        base_lr = self.args.learning_rate
        param_groups = [
            {
                "params": params,
                "weight_decay": self.args.weight_decay if is_decay else 0.0,
                "lr": base_lr * (self.head_learning_rate_multiplier if is_head else 1.0),
            }
            for (is_head, is_decay), params in groups.items()
        ]
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        optimizer_kwargs.pop("lr", None)
        self.optimizer = optimizer_cls(param_groups, lr=base_lr, **optimizer_kwargs)
        return self.optimizer


def read_manifests(manifests: str, media_root: str | None = None) -> list[dict]:
    """The rows of one manifest, or of several given comma-separated, in order (each path resolved against
    `media_root`, else against its own manifest's folder)."""
    from hf_av.data import read_manifest

    paths = [part.strip() for part in str(manifests).split(",") if part.strip()]
    if not paths:
        raise ValueError(f"no manifest path in {manifests!r}")
    return [row for path in paths for row in read_manifest(path, root=media_root)]


def _label_info(manifest: str, media_root: str | None):
    """The manifest's label encoder and the class names for `id2label`.

    Integer labels keep their ids; their names come from a `label_name` column when the manifest has one
    (AV-Digits does), else the ids themselves.
    """
    from hf_av.data import LabelEncoder

    rows = read_manifests(manifest, media_root)
    encoder = LabelEncoder.from_rows(rows)
    if encoder is not None and encoder.mode == "segment" and encoder.label_names is not None:
        # the background class is the last label, as in AVE (28 events + background) and as DG-SCT's head assumes
        background = _background_name(encoder.label_names)
        encoder = LabelEncoder.from_rows(rows, mode="segment", background_label=background)
    if encoder is None or encoder.label_names is not None:
        return encoder, (list(encoder.label_names) if encoder is not None else None)
    names = [str(i) for i in range(encoder.num_classes or 0)]
    for row in rows:
        if row.get("label_name") not in (None, "") and row.get("label") not in (None, ""):
            names[int(row["label"])] = str(row["label_name"])
    return encoder, names


def _background_name(label_names) -> str:
    """The manifest's name of the background class ("background", "bg", ... as the pipeline knows them), else
    "background" (added as the last class even when no segment of the manifest is background)."""
    from hf_av.pipelines.audio_visual_event_localization import BACKGROUND_NAMES

    return next((name for name in label_names if str(name).lower() in BACKGROUND_NAMES), "background")


def _build_from_backbones(job: AudioVisualJobArguments, model_class, overrides: dict):
    """A fresh model around pretrained backbones, through the family's own classmethod (which also applies the
    config's trainable-parameter policy)."""
    if hasattr(model_class, "from_pretrained_backbones"):  # two towers (DG-SCT)
        if not job.audio_backbone_name_or_path:
            raise ValueError(
                f"{model_class.__name__} has a visual and an audio backbone: pass --audio_backbone_name_or_path "
                "(HTS-AT / CLAP audio folder) with --backbone_name_or_path (Swin-V2 folder)"
            )
        return model_class.from_pretrained_backbones(job.backbone_name_or_path, job.audio_backbone_name_or_path,
                                                     **overrides)
    if hasattr(model_class, "from_pretrained_backbone"):  # one backbone for both modalities (LAVisH)
        if job.audio_backbone_name_or_path:
            raise ValueError(
                f"{model_class.__name__} runs one backbone over frames and spectrograms; "
                "--audio_backbone_name_or_path does not apply"
            )
        return model_class.from_pretrained_backbone(job.backbone_name_or_path, **overrides)
    raise ValueError(
        f"{model_class.__name__} cannot be built around a pretrained backbone (--backbone_name_or_path is for "
        "adapter families such as lavish and dg-sct)"
    )


def _build_model(job: AudioVisualJobArguments, task, encoder, names):
    overrides = json.loads(job.config_overrides) if job.config_overrides else {}
    if task.label_mode is not None:
        if encoder is None:
            raise ValueError(f"task {task.name!r} needs labels in {job.train_manifest}")
        if (task.label_mode == "segments") != (encoder.mode == "segment"):
            raise ValueError(
                f"task {task.name!r} needs "
                + ("per-segment labels (a `segment_labels` column: one label per second)"
                   if task.label_mode == "segments" else "clip labels (a `label` or `labels` column)")
                + f"; {job.train_manifest} has {encoder.mode} labels (column {encoder.column!r})"
            )
        overrides.update(
            num_labels=len(names),
            id2label=dict(enumerate(names)),
            label2id={name: i for i, name in enumerate(names)},
        )
        if encoder.mode == "multi":
            overrides["problem_type"] = "multi_label_classification"
        elif encoder.mode == "single":
            overrides["problem_type"] = "single_label_classification"
    if job.backbone_name_or_path:
        from hf_av.families import get_family

        model_class = get_family(job.model_type).head_for_task(task.name)
        return _build_from_backbones(job, model_class, overrides)
    if job.model_name_or_path:
        _refuse_original_checkpoint(job.model_name_or_path)
        config = AutoConfig.from_pretrained(job.model_name_or_path, **overrides)
        model_class = model_class_for(task, config, job.modalities)
        _keep_one_tower(config, task, job.modalities)
        # a new head (or another label set) is initialised fresh; the encoder comes from the folder
        model = model_class.from_pretrained(job.model_name_or_path, config=config, ignore_mismatched_sizes=True)
    else:
        config = AutoConfig.for_model(job.model_type, **overrides)
        _keep_one_tower(config, task, job.modalities)
        model = model_class_for(task, config, job.modalities)(config)
    return model


def _refuse_original_checkpoint(path: str) -> None:
    """An original checkpoint (TF2 prefix `ckpt-N`, a `.pth` / `.pt` file) is converted first; say so and how."""
    candidate = Path(path)
    is_tf_prefix = Path(f"{path}.index").is_file() or (candidate.suffix == ".index" and candidate.is_file())
    if is_tf_prefix or (candidate.is_file() and candidate.suffix in (".pth", ".pt", ".ckpt")):
        raise ValueError(
            f"--model_name_or_path {path} is an original checkpoint, not a model folder: convert it first "
            "(`hf-av convert --model <family> --checkpoint ... --output-dir FOLDER`) and pass FOLDER"
        )
    if not candidate.exists() and Path(path).parent.is_dir() and Path(path).name.startswith("ckpt-"):
        raise ValueError(f"--model_name_or_path {path}: no such folder (and no TF checkpoint {path}.index)")


def _keep_one_tower(config, task, modalities: str) -> None:
    """A single-modality classifier of a family whose config lists its towers (VATT's `modalities`) keeps only that
    tower: the saved folder then is that classifier and nothing else (no untrained or unused towers, and loading it
    as the other modality's head fails clearly instead of pairing a head with the wrong tower)."""
    towers = getattr(config, "modalities", None)
    if task.name != "classification" or modalities not in ("audio", "visual") or not isinstance(towers, list):
        return
    if modalities not in towers:
        raise ValueError(f"--modalities {modalities}: the model has no {modalities} tower (its towers: {towers})")
    config.modalities = [modalities]


def _build_processor(job: AudioVisualJobArguments, config, narrations: list[str] | None = None,
                     output_dir: str | None = None):
    if job.model_name_or_path and (Path(job.model_name_or_path) / "processor_config.json").is_file():
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(job.model_name_or_path)
    else:
        processor = processor_for_config(config)
    if narrations:
        _ensure_vocabulary(processor, config, narrations, output_dir)
    return processor


SPECIAL_TOKENS = ("pad_token", "bos_token", "eos_token", "unk_token")


def _ensure_vocabulary(processor, config, narrations: list[str], output_dir: str | None) -> None:
    """A tokenizer without a word vocabulary (a text tower trained from scratch) gets the training narrations' words.

    The words are cut exactly as the tokenizer cuts them (its own `tokenize`), listed after its special tokens (pad
    first: id 0) in sorted order, and must fit the model's word table (`text_vocab_size`).
    """
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None or len(tokenizer.get_vocab()) > len(SPECIAL_TOKENS):
        return  # a model folder's or a released vocabulary is kept as it is
    words = sorted({word for text in narrations for word in tokenizer.tokenize(text)}
                   - {str(getattr(tokenizer, name)) for name in SPECIAL_TOKENS})
    vocabulary = [str(getattr(tokenizer, name)) for name in SPECIAL_TOKENS] + words
    table_size = getattr(config, "text_vocab_size", None)
    if table_size is not None and len(vocabulary) > table_size:
        raise ValueError(
            f"the training narrations have {len(words)} distinct words ({len(vocabulary)} with the special tokens), "
            f"more than the model's word table holds (text_vocab_size = {table_size}); raise it with "
            f"--config_overrides '{{\"text_vocab_size\": {len(vocabulary)}}}'"
        )
    os.makedirs(output_dir or ".", exist_ok=True)
    path = os.path.join(output_dir or ".", "narration_vocabulary.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{word}\n" for word in vocabulary))
    processor.tokenizer = type(tokenizer)(vocab_file=path, max_length=tokenizer.max_length)
    logger.info("text vocabulary of %d words built from the training narrations (%s)", len(vocabulary), path)


def _narrations(rows: list[dict], manifest: str) -> list[str] | None:
    """The rows' `text` column (one narration per clip), None when the manifest has none; partly filled is an error
    (MIL-NCE would take an empty narration as a positive)."""
    texts = [row.get(TEXT_COLUMN) for row in rows]
    given = [isinstance(text, str) and text.strip() != "" for text in texts]
    if not any(given):
        return None
    if not all(given):
        missing = [rows[i].get("path") for i, ok in enumerate(given) if not ok][:5]
        raise ValueError(
            f"{manifest}: {given.count(False)} of {len(rows)} rows have no {TEXT_COLUMN!r} (e.g. {missing}); give "
            "every clip its narration, or none (video-audio NCE only)"
        )
    return [str(text) for text in texts]


def _error_policy(job, training_args):
    """Skip-and-report policy; every process appends its failures to one report in the output folder."""
    from hf_av.data import DecodeErrorPolicy

    os.makedirs(training_args.output_dir, exist_ok=True)
    return DecodeErrorPolicy(max_fraction=job.max_decode_error_fraction,
                             report_path=os.path.join(training_args.output_dir, DECODE_ERROR_REPORT))


def _decode_error_summary(training_args) -> dict:
    from hf_av.data import read_error_report

    entries = read_error_report(os.path.join(training_args.output_dir, DECODE_ERROR_REPORT))
    return {"num_failed": len(entries), "failed_samples": sorted({entry["sample"] for entry in entries}),
            "report": DECODE_ERROR_REPORT if entries else None}


def _epoch_rows(rows: list, num_samples: int, seed: int) -> list:
    """`rows` repeated, each pass in its own seeded order, until `num_samples` are covered.

    Trainer sees one long epoch instead of re-entering a short stream: a run resumed at step k then skips
    exactly the first k batches of the same sequence, so it continues as if it had never stopped.
    """
    import numpy as np

    ordered: list = []
    epoch = 0
    while len(ordered) < num_samples:
        order = np.random.default_rng([seed, epoch]).permutation(len(rows))
        ordered.extend(rows[i] for i in order)
        epoch += 1
    return ordered


def _stream(manifest, processor, job, training_args, *, train: bool, frame_index, label_names, with_text=False):
    from hf_av.data import split_by_node, stream_from_rows

    # narrations go to the processor's `text=` beside the clip (tokenised by the family's tokenizer)
    input_columns = {"videos": "path", "text": TEXT_COLUMN} if with_text else None
    processor_kwargs = _processor_kwargs(processor, job.modalities if train else "audio-visual", frame_index,
                                         with_text)

    if job.preprocess_once:
        # cached per manifest: a manifest shared by two runs (clean clips pre-trained on, then fine-tuned on with
        # a noisy manifest) is decoded once
        paths = [path for path in str(manifest).split(",") if path.strip()] or [manifest]  # none: the error below
        parts = [_preprocessed_in_memory(read_manifests(path, job.media_root), processor, job, training_args,
                                         processor_kwargs, label_names, input_columns) for path in paths]
        return parts[0] if len(parts) == 1 else InMemoryExamples([ex for part in parts for ex in part.examples])
    rows = read_manifests(manifest, job.media_root)
    if train:
        per_step = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
        rows = _epoch_rows(rows, per_step * training_args.world_size * training_args.max_steps, training_args.seed)
    dataset = stream_from_rows(
        rows,
        processor,
        label_names=label_names,
        processor_kwargs=processor_kwargs,
        error_policy=_error_policy(job, training_args),
        input_columns=input_columns,
    )
    if training_args.world_size > 1:
        dataset = split_by_node(dataset, rank=training_args.process_index, world_size=training_args.world_size)
    return dataset


class InMemoryExamples(torch.utils.data.Dataset):
    """Preprocessed examples held in memory: a map-style dataset, so Trainer shuffles per epoch and resumes."""

    def __init__(self, examples: list[dict]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict:
        return self.examples[index]


# (manifest rows, processor settings, frame choice, labels) -> examples, so the runs of one process (the main job
# pre-trains and fine-tunes on the same clips) decode each clip once.
_PREPROCESSED_CACHE: dict[str, InMemoryExamples] = {}


def _processor_kwargs(processor, modalities: str, frame_index, with_text: bool) -> dict | None:
    """Call options of the stream's processor: the frame choice, and the modalities a clip must have, for processors
    that take `modalities=` and default to whatever a file has (VATT): a clip missing one the model needs is then a
    decode failure, skipped and named in the report, instead of a batch the collator cannot assemble."""
    import inspect

    kwargs = {"frame_index": frame_index} if frame_index is not None else {}
    if "modalities" in inspect.signature(processor.__call__).parameters:
        names = {"audio-visual": ["audio", "visual"], "audio": ["audio"], "visual": ["visual"]}[modalities]
        kwargs["modalities"] = names + (["text"] if with_text else [])
    return kwargs or None


def _preprocessed_in_memory(rows, processor, job, training_args, processor_kwargs, label_names,
                            input_columns=None) -> InMemoryExamples:
    from hf_av.data import stream_from_rows

    key = json.dumps(
        [rows, processor.to_dict() if hasattr(processor, "to_dict") else repr(processor), processor_kwargs, label_names,
         input_columns],
        sort_keys=True, default=str,
    )
    if key not in _PREPROCESSED_CACHE:
        # each row carries its position, so examples decoded by several workers go back into manifest order
        indexed = [dict(row, _hf_av_row=i) for i, row in enumerate(rows)]
        stream = stream_from_rows(
            indexed, processor, label_names=label_names,
            processor_kwargs=processor_kwargs,
            error_policy=_error_policy(job, training_args), keep_columns=("_hf_av_row",),
            input_columns=input_columns,
        ).with_format("torch")
        if job.preprocess_workers > 0:
            loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=job.preprocess_workers)
            # copied out of the workers' shared memory: each kept shared tensor holds a file descriptor, and
            # thousands of them exceed the open-file limit
            examples = sorted(
                ({key: value.clone() if isinstance(value, torch.Tensor) else value for key, value in example.items()}
                 for example in loader),
                key=lambda example: int(example["_hf_av_row"]),
            )
        else:
            examples = list(stream)
        for example in examples:
            example.pop("_hf_av_row")
        _PREPROCESSED_CACHE[key] = InMemoryExamples(examples)
    return _PREPROCESSED_CACHE[key]


def _background_noise(job: AudioVisualJobArguments, processor):
    from hf_av.data.noise import BackgroundNoiseMixing, parse_range

    extractor = getattr(processor, "feature_extractor", None)
    if extractor is None:
        raise ValueError(
            f"--background_noise needs a processor with an audio feature extractor, got {type(processor).__name__}"
        )
    return BackgroundNoiseMixing.from_files(
        job.background_noise, extractor, snr_db=parse_range(job.background_noise_snr, "background_noise_snr"),
        probability=job.background_noise_probability,
    )


def build_trainer(job: AudioVisualJobArguments, training_args: TrainingArguments, callbacks=None):
    """Model, processor, streams, collator and Trainer for `job` (returned with the eval stream)."""
    from hf_av.data import AudioVisualAugmentation, AudioVisualCollator

    task = get_task(job.task)
    if task.layout is not None:  # an original dataset layout (hf_av.training.layouts)
        from .layouts import build_layout_trainer

        return build_layout_trainer(job, training_args, task)
    if not job.preprocess_once and (training_args.max_steps is None or training_args.max_steps <= 0):
        raise ValueError("streamed datasets have no length: set --max_steps (or --preprocess_once)")
    training_args.remove_unused_columns = False  # our collator chooses the model inputs
    encoder, class_names = _label_info(job.train_manifest, job.media_root)
    set_seed(training_args.seed)  # the model's initialisation, not only the training, follows --seed
    model = _build_model(job, task, encoder if task.label_mode else None, class_names)
    trainable = apply_trainable_policy(model, job.trainable_parameters)
    import inspect

    # pre-training of a model with a text tower (VATT's MIL-NCE) reads the clips' narrations when the manifest has them
    narrations = None
    if task.name == "pretraining" and "input_ids" in inspect.signature(model.forward).parameters:
        narrations = _narrations(read_manifests(job.train_manifest, job.media_root), job.train_manifest)
    processor = _build_processor(job, model.config, narrations, training_args.output_dir)
    label_names = list(encoder.label_names) if encoder is not None and encoder.label_names is not None else None
    if task.label_mode == "segments":
        for manifest in filter(None, (job.train_manifest, job.eval_manifest)):
            check_segment_labels(read_manifests(manifest, job.media_root), processor, manifest)

    model_keys = MODALITY_KEYS[job.modalities]
    check_head_inputs(type(model), model_keys)
    train_keys = model_keys + (TEXT_KEYS if narrations else ()) + (("labels",) if task.label_mode else ())
    single_frame = getattr(processor, "single_frame_per_clip", False)
    # with augmentation, single-frame processors hand over all their frames and the training step draws one
    train_frames = "all" if job.augment and single_frame else None
    train_dataset = _stream(job.train_manifest, processor, job, training_args, train=True, frame_index=train_frames,
                            label_names=label_names, with_text=bool(narrations))
    eval_dataset = None
    if job.eval_manifest:
        # multi-frame processors (VATT's clip windows) already give the model the whole clip
        eval_frames = "all" if (task.metric == "classification" and job.eval_all_frames and single_frame) else None
        eval_dataset = _stream(job.eval_manifest, processor, job, training_args, train=False,
                               frame_index=eval_frames, label_names=label_names)
    noise = _background_noise(job, processor) if job.background_noise else None
    augmentation = None
    if job.augment:
        augmentation = AudioVisualAugmentation(random_frame=train_frames == "all", background_noise=noise)
    elif noise is not None:  # the noise alone
        augmentation = AudioVisualAugmentation(random_frame=False, fbank_noise=0.0, time_roll=False,
                                               background_noise=noise)
    trainer = AudioVisualTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if task.metric == "classification" else None,
        data_collator=AudioVisualCollator(keys=train_keys, one_hot_labels=_one_hot_classes(model, encoder)),
        compute_metrics=classification_metrics(model.config.problem_type) if task.metric == "classification" else None,
        head_learning_rate_multiplier=job.head_learning_rate_multiplier,
        head_prefixes=_head_prefixes(model) if task.label_mode == "segments" else ("classifier",),
        # multi-frame processors (video models) keep their clip; only single-frame ones draw a frame
        augmentation=augmentation,
    )
    _add_callbacks(trainer, callbacks)
    trainer.hf_av_processor = processor
    trainer.hf_av_trainable = trainable
    return trainer, eval_dataset


def _add_callbacks(trainer, callbacks) -> None:
    """Adds `TrainerCallback` classes or instances; one that is a `ProgressCallback` replaces Trainer's own bar."""
    from transformers.trainer_callback import ProgressCallback

    for callback in callbacks or ():
        kind = callback if isinstance(callback, type) else type(callback)
        if issubclass(kind, ProgressCallback):
            trainer.remove_callback(ProgressCallback)
        trainer.add_callback(callback)


def _one_hot_classes(model, encoder) -> int | None:
    """The class count when single-label data trains a sigmoid head that is multi-label by construction (VATT's
    audio classifier, as the original's AudioSet head): class ids become one-hot rows for its binary cross-entropy."""
    if encoder is None or encoder.mode != "single" or not getattr(model, "_multi_label", False):
        return None
    return int(model.config.num_labels)


def _head_prefixes(model) -> tuple[str, ...]:
    """Parameter-name prefixes of an event-localisation head (what `head_learning_rate_multiplier` scales): every
    top-level module beside the base model (`classifier` for LAVisH, `temporal_attention` + `event_head` for
    DG-SCT)."""
    prefix = getattr(model, "base_model_prefix", "")
    names = tuple(f"{name}." for name, _ in model.named_children() if name != prefix)
    return names if names and prefix and hasattr(model, prefix) else ("classifier",)


def check_segment_labels(rows: list[dict], processor, manifest: str = "manifest") -> None:
    """Every row's `segment_labels` must have one label per segment the processor cuts a clip into; the error names
    the row, the expected and the found count."""
    expected = getattr(getattr(processor, "feature_extractor", None), "num_segments", None)
    if expected is None:
        return
    for index, row in enumerate(rows):
        labels = row.get("segment_labels")
        if labels is None:
            raise ValueError(f"{manifest} row {index} ({row.get('path')}): no segment_labels ({expected} expected)")
        if len(labels) != expected:
            raise ValueError(
                f"{manifest} row {index} ({row.get('path')}): {len(labels)} segment labels, but the processor cuts "
                f"every clip into {expected} segments (one label per segment expected)"
            )


def apply_trainable_policy(model, override: list[str] | None = None):
    """Freeze every parameter the policy does not name; returns the `TrainableReport` (also logged).

    The policy is `override` (`--trainable_parameters`) when given, else the config's `trainable_parameters`
    (None: everything trains). An override is written into the config when the config has that field, so the saved
    folder carries the policy it was trained with.
    """
    from modeling.common.trainable import freeze_except

    config = model.config
    policy = list(override) if override is not None else getattr(config, "trainable_parameters", None)
    report = freeze_except(model, policy)
    if override is not None and hasattr(config, "trainable_parameters"):
        config.trainable_parameters = list(override)
    logger.info(report.summary())
    return report


def run_training(job: AudioVisualJobArguments, training_args: TrainingArguments, callbacks=None) -> dict:
    """Train, evaluate and save; returns the loss history and the evaluation metrics. `callbacks`: extra
    `TrainerCallback` classes or instances (a `ProgressCallback` subclass replaces Trainer's progress bar)."""
    from hf_av.data import AudioVisualCollator

    task = get_task(job.task)
    trainer, eval_dataset = build_trainer(job, training_args, callbacks)
    train_output = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    metrics: dict = {}
    if eval_dataset is not None:
        if task.layout is not None:
            from .layouts import evaluate_layout

            metrics = evaluate_layout(trainer.model, task, eval_dataset, batch_size=job.eval_batch_size)
        elif task.metric == "retrieval":
            keys = ("input_values", "pixel_values", "labels")
            metrics = evaluate_retrieval(trainer.model, eval_dataset, AudioVisualCollator(keys=keys),
                                         batch_size=job.eval_batch_size)
        elif task.metric == "classification":
            metrics = {k.removeprefix("eval_"): v for k, v in trainer.evaluate().items()}
        elif task.metric == "segments":
            keys = MODALITY_KEYS[job.modalities] + ("labels",)
            metrics = evaluate_segments(trainer.model, eval_dataset, AudioVisualCollator(keys=keys),
                                        batch_size=job.eval_batch_size)
    history = [entry for entry in trainer.state.log_history if "loss" in entry]
    results = {
        "job": asdict(job),
        "train_runtime_s": train_output.metrics.get("train_runtime"),
        "train_loss_history": [{"step": e["step"], "loss": e["loss"]} for e in history],
        "metrics": metrics,
        "decode_errors": _decode_error_summary(training_args),
        "trainable_parameters": _trainable_summary(trainer.hf_av_trainable),
    }
    if trainer.is_world_process_zero():
        trainer.save_model(training_args.output_dir)
        trainer.hf_av_processor.save_pretrained(training_args.output_dir)
        with open(os.path.join(training_args.output_dir, "hf_av_results.json"), "w") as handle:
            json.dump(results, handle, indent=2, default=str)
        _write_trained_model_card(trainer.model, results, training_args.output_dir)
    return results


def _trainable_summary(report) -> dict:
    """The results-JSON view of a `TrainableReport`: counts, policy, and per pattern the number of names matched."""
    data = report.to_dict()
    data["matched"] = {pattern: len(names) for pattern, names in data["matched"].items()}
    return data


def _write_trained_model_card(model, results: dict, output_dir: str) -> None:
    from hf_av.hub.model_card import trained_model_card, write_model_card

    write_model_card(output_dir, trained_model_card(model.config, results, type(model).__name__))


def cli_main(argv: list[str] | None = None) -> int:
    """`hf-av train ...`: every `AudioVisualJobArguments` field plus every `TrainingArguments` flag."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser((AudioVisualJobArguments, TrainingArguments))
    parser.prog = "hf-av train"
    job, training_args = parser.parse_args_into_dataclasses(args=argv)
    results = run_training(job, training_args)
    trainable = results["trainable_parameters"]
    summary = {key: trainable[key] for key in ("patterns", "trainable", "total", "trainable_fraction")}
    print(json.dumps({"metrics": results["metrics"], "trainable_parameters": summary,
                      "output_dir": training_args.output_dir}, indent=2))
    return 0


__all__ = [
    "AudioVisualJobArguments", "AudioVisualTrainer", "apply_trainable_policy", "build_trainer",
    "check_segment_labels", "cli_main", "read_manifests", "run_training",
]


if torch.get_num_threads() < 1:  # pragma: no cover - guards odd environments where torch reports 0 threads
    torch.set_num_threads(1)
