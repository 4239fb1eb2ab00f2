"""Metrics of DG-SCT's other tasks against values derived by hand from their protocols.

AVVP (LLP, Tian et al. 2020, as DG-SCT's `AVVP/main.py` calls `segment_level`): per video and per class, over the
segments, F1 = 2 TP / (2 TP + FN + FP) for every class predicted or annotated in some segment (others left out; a
video with no such class scores 1.0), averaged over the classes, then over the videos. Audio-visual = the same on
(audio AND visual) of predictions and of references; event = TP, FN, FP of audio and visual summed per class.
AVSBench: mIoU of sigmoid(logits) > 0.5 per frame (an empty mask scores the share of pixels predicted empty) and the
F-score (beta^2 = 0.3, max over 255 thresholds, frames without object left out)."""

import numpy as np
import pytest

from hf_av.metrics import avvp_segment_f1, mask_f_score, mask_miou


def _video_one():
    # [T=3, C=2]: rows are segments, columns classes
    predicted_audio = [[1, 0], [1, 0], [0, 0]]
    predicted_visual = [[0, 0], [1, 0], [0, 0]]
    audio = [[1, 0], [0, 1], [0, 0]]
    visual = [[0, 0], [1, 0], [1, 0]]
    return predicted_audio, predicted_visual, audio, visual


def test_avvp_segment_f1_one_video_by_hand():
    # audio: class 0 TP 1 FP 1 FN 0 -> 2/3; class 1 TP 0 FN 1 -> 0; mean 1/3
    # visual: class 0 TP 1 FN 1 -> 2/3; class 1 neither predicted nor annotated -> left out; mean 2/3
    # audio-visual: predictions AND = class 0 in segment 1 only; references AND = nothing -> class 0 TP 0 FP 1 -> 0
    # event: class 0 TP 1+1, FP 1+0, FN 0+1 -> 4 / 6; class 1 TP 0 FN 1 -> 0; mean 1/3
    scores = avvp_segment_f1(*(np.asarray(x)[None] for x in _video_one()))
    assert scores["audio"] == pytest.approx(1 / 3)
    assert scores["visual"] == pytest.approx(2 / 3)
    assert scores["audio_visual"] == pytest.approx(0.0)
    assert scores["event_average"] == pytest.approx(1 / 3)
    assert scores["type_average"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)


def test_avvp_segment_f1_averages_over_videos_and_scores_an_empty_video_one():
    empty = np.zeros((3, 2))
    arrays = [np.stack([np.asarray(x), empty]) for x in _video_one()]
    scores = avvp_segment_f1(*arrays)
    # the empty video scores 1.0 everywhere (all true negatives); the means are over the two videos
    assert scores["audio"] == pytest.approx((1 / 3 + 1) / 2)
    assert scores["visual"] == pytest.approx((2 / 3 + 1) / 2)
    assert scores["audio_visual"] == pytest.approx(0.5)
    assert scores["event_average"] == pytest.approx((1 / 3 + 1) / 2)
    assert scores["type_average"] == pytest.approx((2 / 3 + 5 / 6 + 1 / 2) / 3)


def test_avvp_segment_f1_refuses_bad_inputs():
    with pytest.raises(ValueError, match="binary"):
        avvp_segment_f1(*[np.full((1, 3, 2), 0.7)] * 4)
    with pytest.raises(ValueError, match=r"\[videos, segments, classes\]"):
        avvp_segment_f1(np.zeros((1, 3, 2)), np.zeros((1, 3, 2)), np.zeros((1, 3, 2)), np.zeros((1, 2, 2)))


def test_mask_miou_by_hand():
    big = 5.0
    logits = np.array([[[big, big], [-big, -big]],    # predicts the top row
                       [[big, -big], [-big, -big]]])  # predicts one pixel
    masks = np.array([[[1, 0], [0, 0]],   # IoU 1 / 2
                      [[0, 0], [0, 0]]])  # empty mask: 3 of 4 pixels predicted empty -> 0.75
    assert mask_miou(logits, masks) == pytest.approx((0.5 + 0.75) / 2, abs=1e-6)


def test_mask_f_score_by_hand():
    # probabilities 0.5 (the object pixel), 0.881 (background), 0.119, 0.119
    logits = np.array([[[0.0, 2.0], [-2.0, -2.0]], [[0.0, 0.0], [0.0, 0.0]]])
    masks = np.array([[[1, 0], [0, 0]], [[0, 0], [0, 0]]])  # the second frame has no object: left out
    # thresholds <= 0.119: P 1/4, R 1 -> 1.3 * 0.25 / 1.075; in (0.119, 0.5]: P 1/2, R 1 -> 1.3 * 0.5 / 1.15;
    # above 0.5: no true positive -> 0. The maximum:
    assert mask_f_score(logits, masks) == pytest.approx(1.3 * 0.5 / 1.15, abs=1e-6)
    assert mask_f_score(logits[1:], masks[1:]) == 0.0  # no frame with an object
