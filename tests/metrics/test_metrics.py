import math

import numpy as np
import pytest

import hf_av.metrics as M


def brute_ap(scores, targets):
    """Average precision by definition (no ties): mean over positives of precision at their rank."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    hits, precisions = 0, []
    for rank, i in enumerate(order, start=1):
        if targets[i]:
            hits += 1
            precisions.append(hits / rank)
    return sum(precisions) / len(precisions)


def brute_recall(sim, q_keys, c_keys, k):
    hits = 0
    for i in range(sim.shape[0]):
        order = sorted(range(sim.shape[1]), key=lambda j: -sim[i, j])
        hits += any(c_keys[j] == q_keys[i] for j in order[:k])
    return hits / sim.shape[0]


def test_accuracy_hand_values():
    assert M.accuracy([0, 1, 1, 2], [0, 1, 0, 2]) == 0.75
    assert M.accuracy([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], [1, 1, 1]) == pytest.approx(2 / 3)
    assert M.accuracy([1, 0], [1, 1], sample_weight=[3, 1]) == 0.75


def test_average_precision_hand_values_and_ties():
    assert M.average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)
    assert M.average_precision([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.8333333)  # sklearn doc
    # tie block [0.5, 0.5] with one positive: it enters at precision 1/2
    assert M.average_precision([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    assert math.isnan(M.average_precision([0.3, 0.2], [0, 0]))


def test_map_matches_brute_force_and_skips_empty_classes():
    rng = np.random.default_rng(0)
    scores = rng.random((40, 5))
    targets = (rng.random((40, 5)) < 0.3).astype(int)
    targets[:, 4] = 0  # a class without positives
    targets[0, :4] = 1
    out = M.mean_average_precision(scores, targets, return_per_class=True)
    expected = np.mean([brute_ap(scores[:, c].tolist(), targets[:, c].tolist()) for c in range(4)])
    assert out["mAP"] == pytest.approx(expected) and out["num_skipped_classes"] == 1
    assert math.isnan(out["average_precision"][4])
    # class ids become one-hot
    assert M.mean_average_precision([[0.9, 0.1], [0.2, 0.8]], [0, 1])["mAP"] == 1.0


def test_retrieval_recall_hand_example():
    sim = np.array([[0.9, 0.8, 0.1],   # query 0: pair ranked 1st
                    [0.7, 0.6, 0.5],   # query 1: pair ranked 2nd
                    [0.9, 0.8, 0.1]])  # query 2: pair ranked 3rd
    out = M.retrieval_recall(similarity=sim, ks=(1, 2, 3))
    assert out["audio_to_visual_recall@1"] == pytest.approx(1 / 3)
    assert out["audio_to_visual_recall@2"] == pytest.approx(2 / 3)
    assert out["audio_to_visual_recall@3"] == 1.0
    # columns: visual 0 -> audio 0: 0.9 ties with audio 2, ranked pessimistically 2nd; visual 1 -> audio 1:
    # 0.6 below 0.8 and 0.8, 3rd; visual 2 -> audio 2: 0.1 below 0.5 and tied with audio 0, 3rd
    assert out["visual_to_audio_recall@1"] == 0.0
    assert out["visual_to_audio_recall@2"] == pytest.approx(1 / 3) and out["visual_to_audio_recall@3"] == 1.0


def test_retrieval_recall_matches_brute_force_both_levels():
    rng = np.random.default_rng(1)
    a, v = rng.normal(size=(30, 8)), rng.normal(size=(30, 8))
    labels = rng.integers(0, 4, size=30)
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    vn = v / np.linalg.norm(v, axis=1, keepdims=True)
    sim = an @ vn.T
    inst = M.retrieval_recall(a, v)
    cls = M.retrieval_recall(a, v, labels=labels)
    for k in (1, 5, 10):
        assert inst[f"audio_to_visual_recall@{k}"] == pytest.approx(brute_recall(sim, range(30), range(30), k))
        assert inst[f"visual_to_audio_recall@{k}"] == pytest.approx(brute_recall(sim.T, range(30), range(30), k))
        assert cls[f"audio_to_visual_recall@{k}"] == pytest.approx(brute_recall(sim, labels, labels, k))
        assert cls[f"visual_to_audio_recall@{k}"] == pytest.approx(brute_recall(sim.T, labels, labels, k))
    assert M.retrieval_recall(similarity=sim, labels=labels) == cls
    perfect = M.retrieval_recall(a, a)
    assert all(val == 1.0 for val in perfect.values())


def test_ave_segment_accuracy():
    preds = [[1, 1, 28, 28], [3, 3, 3, 28]]
    refs = [[1, 28, 28, 28], [3, 3, -100, -100]]
    assert M.ave_segment_accuracy(preds, refs) == pytest.approx(5 / 6)
    logits = np.eye(29)[np.array(preds)]
    assert M.ave_segment_accuracy(logits, refs) == pytest.approx(5 / 6)


def test_evaluate_modules_load_offline_and_match_functions(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert M.list_metrics() == ["accuracy", "ave_segment_accuracy", "mean_average_precision", "retrieval_recall"]
    acc = M.load("accuracy")
    for preds, refs in (([0, 1], [0, 0]), ([2, 2], [2, 1])):
        acc.add_batch(predictions=preds, references=refs)
    assert acc.compute() == {"accuracy": 0.5}

    rng = np.random.default_rng(2)
    scores, targets = rng.random((20, 3)), (rng.random((20, 3)) < 0.4).astype(int)
    targets[0] = 1
    assert M.load("map").compute(predictions=scores, references=targets)["mAP"] == pytest.approx(
        M.mean_average_precision(scores, targets)["mAP"])

    a, v = rng.normal(size=(12, 4)), rng.normal(size=(12, 4))
    labels = np.arange(12) % 3
    rr = M.load("retrieval_recall")
    assert rr.compute(predictions=a, references=v, labels=labels) == pytest.approx(
        M.retrieval_recall(a, v, labels=labels))
    sim = a @ v.T
    perm = rng.permutation(12)  # similarity rows + index of each query's pair, columns shuffled
    got = rr.compute(predictions=sim[:, perm], references=np.argsort(perm))
    assert got == pytest.approx(M.retrieval_recall(similarity=sim))

    seg = M.load("ave_segment_accuracy")
    assert seg.compute(predictions=[[1, 2], [3, 3]], references=[[1, 1], [3, 3]]) == {"segment_accuracy": 0.75}
    with pytest.raises(ValueError, match="Unknown hf_av metric"):
        M.load("bleu")
