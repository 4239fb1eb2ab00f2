"""Registers VATT with Transformers' Auto classes for the tests.

Bridge until VATT's row in `hf_av.families` lands (then `import hf_av` registers it and this becomes a no-op):
every call uses `exist_ok=True`.
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
    AutoModelForVideoClassification,
    AutoProcessor,
    AutoTokenizer,
)
from transformers.models.auto.video_processing_auto import AutoVideoProcessor

import hf_av  # noqa: F401
from hf_av.processing.vatt import VattFeatureExtractor, VattProcessor, VattTokenizer, VattVideoProcessor
from modeling.vatt import (
    VattConfig,
    VattForAudioClassification,
    VattForPreTraining,
    VattForVideoClassification,
    VattModel,
)


def register_vatt() -> None:
    AutoConfig.register(VattConfig.model_type, VattConfig, exist_ok=True)
    AutoModel.register(VattConfig, VattModel, exist_ok=True)
    AutoModelForPreTraining.register(VattConfig, VattForPreTraining, exist_ok=True)
    AutoModelForVideoClassification.register(VattConfig, VattForVideoClassification, exist_ok=True)
    AutoModelForAudioClassification.register(VattConfig, VattForAudioClassification, exist_ok=True)
    AutoFeatureExtractor.register(VattConfig, VattFeatureExtractor, exist_ok=True)
    AutoTokenizer.register(VattConfig, slow_tokenizer_class=VattTokenizer, exist_ok=True)
    # keyed by backend; the VATT video processor needs no torchvision
    AutoVideoProcessor.register(VattConfig, video_processor_classes={"torchvision": VattVideoProcessor}, exist_ok=True)
    AutoProcessor.register(VattConfig, VattProcessor, exist_ok=True)


register_vatt()
