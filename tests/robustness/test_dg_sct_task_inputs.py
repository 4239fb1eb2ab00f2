"""Bad inputs to DG-SCT's other task heads (AVVP, AVQA, AVS): each case is a clear `ValueError` naming what was
expected and what was found, raised by the processor or the model before anything deep in torch fails.

Cases: a question longer than the maximum question length (tokenizer, processor, model); an answer outside the
answer vocabulary (label ids and answer names); AVS masks of the wrong size, the wrong number of frames or the
wrong batch; AVVP segment labels that do not match the clip's segments or classes; AVVP clip features missing,
of the wrong shape or for a model that takes none."""

import numpy as np
import pytest
import torch

from hf_av.processing.dg_sct import DgSctFeatureExtractor, DgSctImageProcessor
from hf_av.processing.dg_sct_tasks import (
    DgSctQuestionAnsweringProcessor,
    DgSctQuestionTokenizer,
    answer_label_ids,
)
from modeling.dg_sct import (
    DgSctForAudioVisualQuestionAnswering,
    DgSctForAudioVisualSegmentation,
    DgSctForAudioVisualVideoParsing,
)
from tests.dg_sct.test_modeling_dg_sct_tasks import (
    SEGMENTS,
    backbone_inputs,
    parsing_config,
    question_answering_config,
    segmentation_config,
)

WORDS = ["<pad>", "How", "many", "instruments", "are", "sounding", "in", "the", "video"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(model_class, config):
    torch.manual_seed(0)
    return model_class(config).eval()


# ---- a question longer than the maximum -----------------------------------------------------------------------------
def test_a_question_longer_than_the_maximum_is_refused_by_processor_and_model():
    tokenizer = DgSctQuestionTokenizer(words=WORDS, model_max_length=6)
    processor = DgSctQuestionAnsweringProcessor(
        DgSctFeatureExtractor(num_segments=SEGMENTS, tile_repeats=1, n_fft=256, num_mel_bins=32), DgSctImageProcessor(),
        tokenizer,
    )
    with pytest.raises(ValueError, match=r"The question has 8 words; the model takes at most 6: 'How many "):
        processor.tokenize_questions("How many instruments are sounding in the video?")
    frames = np.zeros((SEGMENTS, 32, 32, 3), dtype=np.uint8)
    audio = np.zeros(32000 * SEGMENTS, dtype=np.float32)
    with pytest.raises(ValueError, match="The question has 8 words; the model takes at most 6"):
        processor(audio=[audio], images=frames, sampling_rate=32000, text="How many instruments are sounding in the video?")
    model = _model(DgSctForAudioVisualQuestionAnswering, question_answering_config())
    with pytest.raises(ValueError, match=r"The question has 7 tokens; the model takes at most 6 \(config.question_max_length\)"):
        model(**backbone_inputs(1), input_ids=torch.ones(1, 7, dtype=torch.long))


# ---- an answer outside the vocabulary -------------------------------------------------------------------------------
def test_an_answer_outside_the_vocabulary_is_refused():
    model = _model(DgSctForAudioVisualQuestionAnswering, question_answering_config())  # 7 answers
    inputs = {**backbone_inputs(1), "input_ids": torch.ones(1, 6, dtype=torch.long)}
    with pytest.raises(ValueError, match=r"labels must be answer ids in \[0, 7\) .*got \[42\]"):
        model(**inputs, labels=torch.tensor([42]))
    with pytest.raises(ValueError, match=r"one answer id per clip, shape \(1,\), got \(1, 7\)"):
        model(**inputs, labels=torch.zeros(1, 7))
    with pytest.raises(ValueError, match=r"answer\(s\) \['banjo'\] are not in the answer vocabulary \(2 answers"):
        answer_label_ids("banjo", {"yes": 0, "no": 1})


# ---- AVS masks ------------------------------------------------------------------------------------------------------
def test_segmentation_masks_of_the_wrong_size_frames_or_batch_are_refused():
    model = _model(DgSctForAudioVisualSegmentation, segmentation_config())  # masks 32 x 32, 3 frames
    inputs = backbone_inputs(1)
    with pytest.raises(ValueError, match=r"shape \(batch_size=1, 32, 32\) for the first frame or \(batch_size, 3, "
                                         r"32, 32\) for every frame .*got \(1, 3, 64, 64\)"):
        model(**inputs, labels=torch.zeros(1, SEGMENTS, 64, 64))
    with pytest.raises(ValueError, match="labels hold masks for 5 frames but the clip has 3 frames"):
        model(**inputs, labels=torch.zeros(1, 5, 32, 32))
    with pytest.raises(ValueError, match=r"batch_size=1.*got \(2, 32, 32\)"):
        model(**inputs, labels=torch.zeros(2, 32, 32))
    with pytest.raises(ValueError, match=r"expects 3 frames per clip \(config.num_segments\), got 2"):
        model(input_values=inputs["input_values"][:, :2], pixel_values=inputs["pixel_values"][:, :2])


# ---- AVVP segment labels and clip features --------------------------------------------------------------------------
def test_video_parsing_labels_and_clip_features_that_do_not_match_the_clip_are_refused():
    model = _model(DgSctForAudioVisualVideoParsing, parsing_config())  # 3 segments, 5 classes, clip features 6-d
    inputs = {**backbone_inputs(1), "clip_features": torch.zeros(1, SEGMENTS, 6)}
    with pytest.raises(ValueError, match="Segment labels cover 10 segments but the clip has 3: labels must be"):
        model(**inputs, labels=torch.zeros(1, 10, 5))
    with pytest.raises(ValueError, match=r"multi-hot video-level labels of shape \(1, 5\) or per-segment labels "
                                         r"\(1, 3, 5\), got \(1, 25\)"):
        model(**inputs, labels=torch.zeros(1, 25))
    with pytest.raises(ValueError, match=r"clip_features must have shape \(1, 3, 6\) .*got \(1, 10, 512\)"):
        model(**{**inputs, "clip_features": torch.zeros(1, 10, 512)})
    with pytest.raises(ValueError, match="needs `clip_features`"):
        model(**backbone_inputs(1))
