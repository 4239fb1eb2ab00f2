"""VATT: Transformers for multimodal self-supervised learning from raw video, audio and text (Akbari et al.,
NeurIPS 2021) as Transformers models."""

from .configuration_vatt import BACKBONE_TYPES, VATT_MODALITIES, VATT_PRESETS, VattConfig
from .modeling_vatt import (
    VattClassifierOutput,
    VattForAudioClassification,
    VattForPreTraining,
    VattForPreTrainingOutput,
    VattForVideoClassification,
    VattModel,
    VattModelOutput,
    VattPreTrainedModel,
    VattTowerOutput,
    contrastive_nce_loss,
    resample_position_table,
    vatt_classification_loss,
)

__all__ = [
    "BACKBONE_TYPES",
    "VATT_MODALITIES",
    "VATT_PRESETS",
    "VattClassifierOutput",
    "VattConfig",
    "VattForAudioClassification",
    "VattForPreTraining",
    "VattForPreTrainingOutput",
    "VattForVideoClassification",
    "VattModel",
    "VattModelOutput",
    "VattPreTrainedModel",
    "VattTowerOutput",
    "contrastive_nce_loss",
    "resample_position_table",
    "vatt_classification_loss",
]
