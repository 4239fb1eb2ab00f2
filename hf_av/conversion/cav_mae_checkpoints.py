"""The checkpoints released with CAV-MAE (github.com/YuanGongND/cav-mae, README tables at commit 68fe8c2).

Every release shares one architecture (ViT-B sized, 11 modality-specific + 1 shared layer, 1024-frame fbank,
224 px frames; `CavMaeConfig()` defaults); they differ in training. The converter looks the checkpoint's FILE NAME
up here so that converting any of them needs only the file: kind, label set and problem type, the fine-tuning mode,
the pre-training masking / loss settings and the paper numbers for the model card.

Sources: README "Pretrained Models" / "Finetuned Models" tables and the paper (Gong et al., ICLR 2023, Table 1);
summarised in `research/cav-mae.md` section 4. Numbers are the ones the README reports for each file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

AUDIOSET_NUM_LABELS = 527
VGGSOUND_NUM_LABELS = 309
ORIGINAL_REPO = "https://github.com/YuanGongND/cav-mae"
ORIGINAL_LICENSE = "bsd-2-clause"  # LICENSE of the original repository (BSD 2-Clause, (c) 2023 Yuan Gong)
PAPER = "https://arxiv.org/abs/2210.07839"


@dataclass(frozen=True)
class CavMaeCheckpoint:
    """One released file.

    Attributes:
        file_name: the released file name (the lookup key).
        name: the README's model name.
        kind: `"pretrain"` (original `CAVMAE`, with decoder) or `"finetune"` (original `CAVMAEFT`, with head).
        url: download address listed in the README (Dropbox).
        description: one line for the model card.
        config_overrides: `CavMaeConfig` fields that differ from the defaults for this file.
        dataset: label set of a fine-tuned model (`"audioset"` / `"vggsound"`), else None.
        finetuning_mode: the original inference mode the head was trained for.
        metric / metric_value: reported result (mAP or accuracy, in %), fine-tuned models only.
        pretrained_from: the pre-trained model a fine-tuned one starts from.
        training_notes: batch size, contrastive weight, masking, as listed in the README.
    """

    file_name: str
    name: str
    kind: str
    url: str
    description: str
    config_overrides: dict = field(default_factory=dict)
    dataset: str | None = None
    finetuning_mode: str | None = None
    metric: str | None = None
    metric_value: float | None = None
    pretrained_from: str | None = None
    training_notes: str = ""

    @property
    def num_labels(self) -> int | None:
        return {"audioset": AUDIOSET_NUM_LABELS, "vggsound": VGGSOUND_NUM_LABELS}.get(self.dataset)

    @property
    def problem_type(self) -> str | None:
        # AudioSet is multi-label (BCE, mAP); VGGSound single-label (cross-entropy, accuracy)
        return {"audioset": "multi_label_classification", "vggsound": "single_label_classification"}.get(self.dataset)

    def config_kwargs(self) -> dict:
        """`CavMaeConfig` keyword arguments for this checkpoint (sizes are the defaults)."""
        kwargs = dict(self.config_overrides)
        if self.kind == "pretrain":
            kwargs.setdefault("trainable_position_embeddings", False)
        if self.num_labels is not None:
            kwargs["num_labels"] = self.num_labels
            kwargs["problem_type"] = self.problem_type
        if self.finetuning_mode is not None:
            kwargs["finetuning_mode"] = self.finetuning_mode
        return kwargs


def _pretrain(file_name, name, url, description, notes, **overrides) -> CavMaeCheckpoint:
    return CavMaeCheckpoint(file_name, name, "pretrain", url, description, overrides, training_notes=notes)


def _finetune(file_name, url, dataset, mode, metric_value, pretrained_from, description) -> CavMaeCheckpoint:
    metric = "mAP" if dataset == "audioset" else "accuracy"
    return CavMaeCheckpoint(
        file_name, file_name.rsplit(".pth", 1)[0], "finetune", url, description, {}, dataset, mode, metric,
        metric_value, pretrained_from,
    )


_BASE = "batch 48, contrastive weight 0.01"
RELEASED_CHECKPOINTS: dict[str, CavMaeCheckpoint] = {
    c.file_name: c
    for c in (
        _pretrain("audio_model.21.pth", "CAV-MAE-Scale++", "https://www.dropbox.com/s/l5t5geufdy3qvnv/audio_model.21.pth?dl=1",
                  "Recommended pre-trained model (epoch 21 of 25, trained after the paper).",
                  "batch 256, contrastive weight 0.01, 75% unstructured masking"),
        _pretrain("audio_model.25.pth", "CAV-MAE-Scale+", "https://www.dropbox.com/s/xu8bfie6hz86oev/audio_model.25.pth?dl=1",
                  "Pre-trained model of the paper's results.",
                  "batch 108 (README table; scripts say 120), contrastive weight 0.01, 75% unstructured masking"),
        _pretrain("cav-mae-base.pth", "CAV-MAE-Base", "https://www.dropbox.com/s/wxrjgr86gdhc5k8/cav-mae-base.pth?dl=1",
                  "Paper setting (also the 'Unstructured' masking ablation).", f"{_BASE}, 75% unstructured masking"),
        _pretrain("cav-mae-base-nonorm.pth", "CAV-MAE-Base-NoNorm",
                  "https://www.dropbox.com/s/arrg7cb3e4hhjwu/cav-mae-base-nonorm.pth?dl=1",
                  "Trained without per-patch target normalisation; for inpainting.", f"{_BASE}, 75% unstructured masking",
                  norm_pix_loss=False),
        _pretrain("50.pth", "CAV-MAE-Base-50", "https://www.dropbox.com/s/dgorer0ybdbnvgf/50.pth?dl=1",
                  "Masking-ratio ablation.", f"{_BASE}, 50% unstructured masking",
                  audio_mask_ratio=0.5, visual_mask_ratio=0.5),
        _pretrain("65.pth", "CAV-MAE-Base-65", "https://www.dropbox.com/s/xmuyksqch6l6g87/65.pth?dl=1",
                  "Masking-ratio ablation.", f"{_BASE}, 65% unstructured masking",
                  audio_mask_ratio=0.65, visual_mask_ratio=0.65),
        _pretrain("85.pth", "CAV-MAE-Base-85", "https://www.dropbox.com/s/y3o9zggpecmrbnu/85.pth?dl=1",
                  "Masking-ratio ablation.", f"{_BASE}, 85% unstructured masking",
                  audio_mask_ratio=0.85, visual_mask_ratio=0.85),
        _pretrain("time_freq_75.pth", "CAV-MAE-Base-TF", "https://www.dropbox.com/s/madv6ynuy5113zh/time_freq_75.pth?dl=1",
                  "Audio masking ablation: time-frequency masking.", f"{_BASE}, 75% time-frequency audio masking",
                  audio_mask_mode="tf"),
        _pretrain("time_freq_50.pth", "CAV-MAE-Base-TF-50", "https://www.dropbox.com/s/nd7qlagn8je6zjn/time_freq_50.pth?dl=1",
                  "Audio masking ablation: time-frequency masking, 50%.", f"{_BASE}, 50% time-frequency audio masking",
                  audio_mask_mode="tf", audio_mask_ratio=0.5),
        _pretrain("time_75.pth", "CAV-MAE-Base-T", "https://www.dropbox.com/s/hfehd7m379ehr0y/time_75.pth?dl=1",
                  "Audio masking ablation: time masking.", f"{_BASE}, 75% time audio masking", audio_mask_mode="time"),
        _pretrain("freq_75.pth", "CAV-MAE-Base-F", "https://www.dropbox.com/s/ad4fhzt6d3xre5p/freq_75.pth?dl=1",
                  "Audio masking ablation: frequency masking.", f"{_BASE}, 75% frequency audio masking",
                  audio_mask_mode="freq"),
        _pretrain("cav-mae-base-c0.001.pth", "CAV-MAE-Base-C0.001",
                  "https://www.dropbox.com/s/4j4qyiyjcmbtc6u/cav-mae-base-c0.001.pth?dl=1",
                  "Contrastive-weight ablation.", "batch 48, contrastive weight 0.001, 75% unstructured masking",
                  contrastive_loss_weight=0.001),
        _pretrain("cav-mae-base-c0.1.pth", "CAV-MAE-Base-C0.1",
                  "https://www.dropbox.com/s/wf54ver9rs9fl1b/cav-mae-base-c0.1.pth?dl=1",
                  "Contrastive-weight ablation.", "batch 48, contrastive weight 0.1, 75% unstructured masking",
                  contrastive_loss_weight=0.1),
        _pretrain("single_direction.pth", "CAV-MAE-Scale+ (single direction)",
                  "https://www.dropbox.com/s/mvhmg7eda410phr/single_direction.pth?dl=1",
                  "Symmetric-loss ablation baseline (single-direction contrastive loss).",
                  "batch 120, contrastive weight 0.01, 75% unstructured masking"),
        _pretrain("symc.pth", "CAV-MAE-Symc-Scale+", "https://www.dropbox.com/s/ute6ydkw4hdv7rn/symc.pth?dl=1",
                  "Bi-directional contrastive loss ablation.", "batch 120, contrastive weight 0.01, 75% unstructured masking",
                  bidirectional_contrastive_loss=True),
        _finetune("as-full-51.2.pth", "https://www.dropbox.com/s/hejj49zdgyyfsuh/as-full-51.2.pth?dl=1", "audioset",
                  "multimodal", 51.2, "CAV-MAE-Scale+ (AudioSet-2M)", "Audio-visual classifier fine-tuned on AudioSet-2M."),
        _finetune("as-20k-42.0.pth", "https://www.dropbox.com/s/9x6y642so3zve5y/as-20k-42.0.pth?dl=1", "audioset",
                  "multimodal", 42.0, "CAV-MAE-Scale+ (AudioSet-2M)", "Audio-visual classifier fine-tuned on AudioSet-20K."),
        _finetune("vgg_65.5.pth", "https://www.dropbox.com/s/f4wrbxv2unewss9/vgg_65.5.pth?dl=1", "vggsound",
                  "multimodal", 65.5, "CAV-MAE-Scale+ (AudioSet-2M)", "Audio-visual classifier fine-tuned on VGGSound."),
        _finetune("vgg_66.0.pth", "https://www.dropbox.com/s/q66s3mu526mj2x6/vgg_66.0.pth?dl=1", "vggsound",
                  "multimodal", 65.9, "CAV-MAE-Scale+ (AudioSet-2M + VGGSound)",
                  "Audio-visual classifier fine-tuned on VGGSound (pre-trained on AudioSet-2M + VGGSound)."),
        _finetune("as_46.6.pth", "https://www.dropbox.com/s/itfw7p0ueq7z9og/as_46.6.pth?dl=1", "audioset",
                  "audioonly", 46.6, "CAV-MAE-Scale+ (AudioSet-2M)", "Audio-only classifier fine-tuned on AudioSet-2M."),
        _finetune("as_37.7.pth", "https://www.dropbox.com/s/pariabyh1iyayda/as_37.7.pth?dl=1", "audioset",
                  "audioonly", 37.7, "CAV-MAE-Scale+ (AudioSet-2M)", "Audio-only classifier fine-tuned on AudioSet-20K."),
        _finetune("as_20.0.pth", "https://www.dropbox.com/s/9ngkq9ygwqecxz5/as_20.0.pth?dl=1", "audioset",
                  "videoonly", 20.0, "CAV-MAE-Scale++ (AudioSet-2M)", "Visual-only classifier fine-tuned on AudioSet-20K."),
        _finetune("vgg_59.8.pth", "https://www.dropbox.com/s/l4rj0sgpnt08bp2/vgg_59.8.pth?dl=1", "vggsound",
                  "audioonly", 59.8, "CAV-MAE-Scale+ (AudioSet-2M + VGGSound)",
                  "Audio-only classifier fine-tuned on VGGSound."),
    )
}

# Paper Table 1 (CAV-MAE = Scale+): audio-visual event classification, for model cards.
PAPER_RESULTS = {
    "AudioSet-20K mAP": {"audio": 37.7, "visual": 19.8, "audio-visual": 42.0},
    "AudioSet-2M mAP": {"audio": 46.6, "visual": 26.2, "audio-visual": 51.2},
    "VGGSound accuracy": {"audio": 59.5, "visual": 47.0, "audio-visual": 65.5},
}


def find_released_checkpoint(path: str | Path) -> CavMaeCheckpoint | None:
    """The registry entry whose file name equals the base name of `path`, or None."""
    return RELEASED_CHECKPOINTS.get(Path(path).name)


__all__ = [
    "AUDIOSET_NUM_LABELS",
    "CavMaeCheckpoint",
    "ORIGINAL_LICENSE",
    "ORIGINAL_REPO",
    "PAPER",
    "PAPER_RESULTS",
    "RELEASED_CHECKPOINTS",
    "VGGSOUND_NUM_LABELS",
    "find_released_checkpoint",
]
