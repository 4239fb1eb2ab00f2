"""CAV-MAE: Contrastive Audio-Visual Masked Autoencoder (Gong et al., ICLR 2023) as Transformers models."""

from .configuration_cav_mae import AUDIO_MASK_MODES, CLASSIFICATION_MODES, CavMaeConfig
from .modeling_cav_mae import (
    CavMaeAudioVisualClassifierOutput,
    CavMaeForAudioVisualClassification,
    CavMaeForPreTraining,
    CavMaeForPreTrainingOutput,
    CavMaeModel,
    CavMaeModelOutput,
    CavMaePreTrainedModel,
)

__all__ = [
    "AUDIO_MASK_MODES",
    "CLASSIFICATION_MODES",
    "CavMaeAudioVisualClassifierOutput",
    "CavMaeConfig",
    "CavMaeForAudioVisualClassification",
    "CavMaeForPreTraining",
    "CavMaeForPreTrainingOutput",
    "CavMaeModel",
    "CavMaeModelOutput",
    "CavMaePreTrainedModel",
]
