"""LAVisH: audio-visual adapters on a frozen Swin-V2 (Lin et al., CVPR 2023)."""

from .configuration_lavish import LavishConfig
from .modeling_lavish import (
    LavishAdapter,
    LavishEventLocalizationOutput,
    LavishForAudioVisualEventLocalization,
    LavishModel,
    LavishModelOutput,
    LavishPreTrainedModel,
    event_localization_loss,
)

__all__ = [
    "LavishAdapter",
    "LavishConfig",
    "LavishEventLocalizationOutput",
    "LavishForAudioVisualEventLocalization",
    "LavishModel",
    "LavishModelOutput",
    "LavishPreTrainedModel",
    "event_localization_loss",
]
