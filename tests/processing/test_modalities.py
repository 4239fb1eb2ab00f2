"""`modalities=` is a public, validated argument of every family processor, in the shared vocabulary."""

import warnings

import numpy as np
import pytest
import torch

from hf_av import CavMaeProcessor, DgSctProcessor, LavishProcessor, VattProcessor
from hf_av.errors import MediaDecodingError
from hf_av.processing.base import resolve_modalities

FAMILIES = [CavMaeProcessor, LavishProcessor, DgSctProcessor]


def test_resolve_modalities_vocabulary():
    assert resolve_modalities(None) == "audio-visual"
    assert resolve_modalities(["visual", "audio"]) == "audio-visual"
    assert resolve_modalities(("audio",)) == "audio"
    assert resolve_modalities("available") == "available"
    with pytest.warns(FutureWarning, match='"video" is deprecated'):
        assert resolve_modalities("video") == "visual"
    for bad, match in (("both", "must be one of"), (["audio", "smell"], "unknown modality"), ([], "must be one of"),
                       (3, "must be one of")):
        with pytest.raises(ValueError, match=match):
            resolve_modalities(bad)


@pytest.mark.parametrize("processor_class", FAMILIES)
def test_every_family_processor_takes_modalities(processor_class, test_video):
    processor = processor_class()
    both = processor(videos=test_video, return_tensors="pt")
    audio = processor(videos=test_video, modalities="audio", return_tensors="pt")
    visual = processor(videos=test_video, modalities=["visual"], return_tensors="pt")
    assert set(both) == {"input_values", "pixel_values"}
    assert set(audio) == {"input_values"} and set(visual) == {"pixel_values"}
    # decoding one modality gives the same tensors as decoding both
    assert torch.equal(audio["input_values"], both["input_values"])
    assert torch.equal(visual["pixel_values"], both["pixel_values"])
    with pytest.raises(ValueError, match=f"{processor_class.__name__}: modalities must be one of"):
        processor(videos=test_video, modalities="sound")
    with pytest.raises(ValueError, match="both audio= and images="):
        processor(audio=torch.zeros(16000), sampling_rate=16000, images=np.zeros((4, 32, 32, 3), np.uint8),
                  modalities="audio")


def test_missing_modality_is_a_media_error_naming_the_source(test_video):
    from tests.media_factory import write_media

    with open(test_video, "rb") as handle:
        data = handle.read()
    out = CavMaeProcessor()(videos=data, modalities="visual", return_tensors="pt")
    assert set(out) == {"pixel_values"}
    frames = (np.full((32, 32, 3), 9 * i, np.uint8) for i in range(20))
    silent = write_media(test_video.parent / "silent_for_modalities.mp4", frames=frames, fps=10)
    with pytest.raises(MediaDecodingError, match=r"silent_for_modalities.mp4: no audio.*modalities=\"available\""):
        LavishProcessor()(videos=str(silent))
    with pytest.raises(MediaDecodingError, match=r"<\d+ bytes>: no audio"):
        LavishProcessor()(videos=silent.read_bytes())


def test_vatt_modalities(test_video):
    processor = VattProcessor()
    both = processor(videos=test_video, return_tensors="pt")
    visual = processor(videos=test_video, modalities="visual", return_tensors="pt")
    audio = processor(videos=test_video, modalities="audio", return_tensors="pt")
    assert set(both) == {"pixel_values", "input_values"}
    assert set(visual) == {"pixel_values"} and torch.equal(visual["pixel_values"], both["pixel_values"])
    assert set(audio) == {"input_values"} and torch.equal(audio["input_values"], both["input_values"])
    with pytest.warns(UserWarning, match="no word vocabulary"):  # the default tokenizer has special tokens only
        with_text = processor(text="a dog barks", videos=test_video, modalities=["visual", "text"],
                              return_tensors="pt")
    assert set(with_text) == {"pixel_values", "input_ids", "attention_mask"}
    with pytest.raises(ValueError, match="no text= was given"):
        processor(videos=test_video, modalities=["visual", "text"])
    with pytest.raises(ValueError, match="leaves text out"):
        processor(text="a dog", videos=test_video, modalities="visual")
    with pytest.raises(ValueError, match="modalities must be one of"):
        processor(videos=test_video, modalities=["smell"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        processor(videos=test_video, modalities="available")
