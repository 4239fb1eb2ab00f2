"""hf_av: audio-visual transformers (CAV-MAE, VATT, DG-SCT, LAVisH) for the Hugging Face ecosystem.

Importing this package registers every config, model, feature extractor, image processor and
processor with Transformers' Auto classes (see ``hf_av.registration``).
"""

__version__ = "0.1.0"

from .errors import CheckpointConversionError, HfAvError, MediaDecodingError

# --- media (decoding) ---
from .media import (
    DecodedMedia,
    MediaDecodingWarning,
    MediaInfo,
    VideoStreamInfo,
    decode_media,
    load_audio,
    load_image,
    probe_media,
)
# --- features (signal processing) ---
from .features import kaldi_fbank, log_mel_spectrogram, resample
# --- processing (per-family preprocessing classes) ---
from .processing import (
    CavMaeFeatureExtractor,
    CavMaeImageProcessor,
    CavMaeProcessor,
    DgSctFeatureExtractor,
    DgSctImageProcessor,
    DgSctProcessor,
    LavishFeatureExtractor,
    LavishImageProcessor,
    LavishProcessor,
    VattFeatureExtractor,
    VattProcessor,
    VattTokenizer,
    VattVideoProcessor,
)
# --- models ---
from modeling.cav_mae import (
    CavMaeConfig,
    CavMaeForAudioVisualClassification,
    CavMaeForPreTraining,
    CavMaeModel,
)

from .registration import register_all as _register_all

_register_all()
