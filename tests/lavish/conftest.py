"""LAVisH tests: make sure the family is known to Transformers' Auto classes (done by `import hf_av`)."""

import hf_av  # noqa: F401  (registers every family)
from transformers import AutoConfig, AutoFeatureExtractor, AutoImageProcessor, AutoModel, AutoProcessor

from hf_av.processing.lavish import LavishFeatureExtractor, LavishImageProcessor, LavishProcessor
from modeling.lavish import LavishConfig, LavishModel

# until the family registry row is merged, register here so the tests exercise the Auto classes anyway
AutoConfig.register(LavishConfig.model_type, LavishConfig, exist_ok=True)
AutoModel.register(LavishConfig, LavishModel, exist_ok=True)
AutoFeatureExtractor.register(LavishConfig, LavishFeatureExtractor, exist_ok=True)
AutoImageProcessor.register(
    LavishConfig, image_processor_classes={"torchvision": LavishImageProcessor, "pil": LavishImageProcessor},
    exist_ok=True,
)
AutoProcessor.register(LavishConfig, LavishProcessor, exist_ok=True)
