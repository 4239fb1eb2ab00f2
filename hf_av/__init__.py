"""hf_av: audio-visual transformers (CAV-MAE, VATT, DG-SCT, LAVisH) for the Hugging Face ecosystem.

Importing this package registers every config, model, feature extractor, image processor and
processor with Transformers' Auto classes (see ``hf_av.registration``).
"""

__version__ = "0.1.0"

from .errors import CheckpointConversionError, HfAvError, MediaDecodingError

# --- media (decoding) ---
# --- features (signal processing) ---
# --- processing (per-family preprocessing classes) ---
# --- models ---

from .registration import register_all as _register_all

_register_all()
