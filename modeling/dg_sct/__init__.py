"""DG-SCT (Duan et al., NeurIPS 2023): cross-modal prompts between a frozen Swin-V2 and a frozen HTS-AT."""

from .configuration_dg_sct import DgSctConfig
from .modeling_dg_sct import (
    DgSctCrossModalModule,
    DgSctEventLocalizationOutput,
    DgSctForAudioVisualEventLocalization,
    DgSctModel,
    DgSctModelOutput,
    DgSctPreTrainedModel,
)

__all__ = [
    "DgSctConfig",
    "DgSctCrossModalModule",
    "DgSctEventLocalizationOutput",
    "DgSctForAudioVisualEventLocalization",
    "DgSctModel",
    "DgSctModelOutput",
    "DgSctPreTrainedModel",
]

from .configuration_dg_sct_tasks import (  # noqa: E402
    DgSctQuestionAnsweringConfig,
    DgSctSegmentationConfig,
    DgSctVideoParsingConfig,
)
from .modeling_dg_sct_tasks import (  # noqa: E402
    DgSctForAudioVisualQuestionAnswering,
    DgSctForAudioVisualSegmentation,
    DgSctForAudioVisualVideoParsing,
    DgSctQuestionAnsweringOutput,
    DgSctSegmentationOutput,
    DgSctVideoParsingOutput,
)

__all__ += [
    "DgSctForAudioVisualQuestionAnswering",
    "DgSctQuestionAnsweringConfig",
    "DgSctQuestionAnsweringOutput",
    "DgSctForAudioVisualVideoParsing",
    "DgSctVideoParsingConfig",
    "DgSctVideoParsingOutput",
    "DgSctForAudioVisualSegmentation",
    "DgSctSegmentationConfig",
    "DgSctSegmentationOutput",
]
