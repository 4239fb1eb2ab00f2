"""The hf_av pipelines on real media files (PyAV-written mp4/wav) with tiny random-weight CAV-MAE models."""

import numpy as np
import pytest
import torch
from transformers import pipeline
from transformers.pipelines import PIPELINE_REGISTRY

import hf_av
from hf_av import CavMaeForAudioVisualClassification, CavMaeModel, CavMaeProcessor
from hf_av.errors import MediaDecodingError
from hf_av.pipelines import (
    AudioVisualClassificationPipeline,
    AudioVisualEventLocalizationPipeline,
    AudioVisualFeatureExtractionPipeline,
    AudioVisualRetrievalPipeline,
    segment_labels_from_logits,
    segments_to_events,
)

from ._helpers import TINY_LABELS


@pytest.fixture(scope="module")
def classifier(classifier_dir):
    return pipeline("audio-visual-classification", model=str(classifier_dir), device="cpu")


@pytest.fixture(scope="module")
def reference(classifier_dir):
    model = CavMaeForAudioVisualClassification.from_pretrained(classifier_dir).eval()
    return model, CavMaeProcessor.from_pretrained(classifier_dir)


def test_tasks_registered_on_import():
    hf_av.registration.register_all()  # idempotent
    expected = {
        "audio-visual-classification": AudioVisualClassificationPipeline,
        "audio-visual-retrieval": AudioVisualRetrievalPipeline,
        "audio-visual-event-localization": AudioVisualEventLocalizationPipeline,
        "audio-visual-feature-extraction": AudioVisualFeatureExtractionPipeline,
        "audio-visual-question-answering": hf_av.pipelines.AudioVisualQuestionAnsweringPipeline,
        "audio-visual-segmentation": hf_av.pipelines.AudioVisualSegmentationPipeline,
    }
    for task, cls in expected.items():
        assert PIPELINE_REGISTRY.check_task(task)[1]["impl"] is cls


def test_classification_averages_ten_frames_like_the_model(classifier, reference, media):
    model, processor = reference
    result = classifier(str(media["clip"]), top_k=3)
    assert [set(r) for r in result] == [{"label", "score"}] * 3
    assert all(r["label"] in TINY_LABELS for r in result)
    inputs = processor(videos=str(media["clip"]), return_tensors="pt", frame_index="all")
    assert inputs["pixel_values"].shape[1] == 10  # the paper's ten frames
    with torch.no_grad():
        expected = model(**inputs).logits.softmax(-1)[0]
    top = torch.topk(expected, 3)
    assert [r["label"] for r in result] == [TINY_LABELS[i] for i in top.indices.tolist()]
    np.testing.assert_allclose([r["score"] for r in result], top.values.numpy(), atol=1e-5)
    # the middle frame alone gives a different (single-frame) answer
    middle = classifier(str(media["clip"]), top_k=5, frames="middle")
    with torch.no_grad():
        single = model(**processor(videos=str(media["clip"]), return_tensors="pt")).logits.softmax(-1)[0]
    np.testing.assert_allclose(sorted(r["score"] for r in middle), sorted(single.tolist()), atol=1e-5)


def test_classification_inputs_bytes_arrays_and_batches(classifier, media):
    from_path = classifier(str(media["clip"]), top_k=5)
    from_bytes = classifier(media["clip"].read_bytes(), top_k=5)
    assert [r["label"] for r in from_bytes] == [r["label"] for r in from_path]
    np.testing.assert_allclose([r["score"] for r in from_bytes], [r["score"] for r in from_path], atol=1e-6)
    batched = classifier([str(media["clip"]), str(media["other"])], batch_size=2, top_k=5)
    single = [classifier(str(p), top_k=5) for p in (media["clip"], media["other"])]
    for b, s in zip(batched, single):
        np.testing.assert_allclose([r["score"] for r in b], [r["score"] for r in s], atol=1e-5)
    arrays = {"audio": np.sin(np.linspace(0, 800, 16000)).astype(np.float32), "sampling_rate": 16000,
              "frames": np.full((2, 70, 90, 3), 128, np.uint8)}
    assert len(classifier(arrays, top_k=2)) == 2


def test_classification_single_modalities(classifier, reference, media):
    model, processor = reference
    audio_only = classifier(str(media["wav"]), top_k=5)  # a WAV file: audioonly mode
    video_only = classifier(str(media["silent"]), top_k=5, frames="middle")
    assert len(audio_only) == len(video_only) == 5
    with pytest.raises(MediaDecodingError, match="no audio"):
        classifier(str(media["silent"]), modality="audio-visual")
    # The pipeline passes inputs only: a multimodally fine-tuned model given audio only answers exactly as when it
    # is called directly with those inputs (the model, not the pipeline, picks the missing-modality mode).
    seen = []
    hook = classifier.model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(dict(kwargs)),
                                                      with_kwargs=True)
    classifier.model.config.finetuning_mode = "multimodal"
    model.config.finetuning_mode = "multimodal"
    try:
        missing = classifier(str(media["wav"]), top_k=5)
        features = processor(videos=str(media["wav"]), modalities="audio", return_tensors="pt")
        with torch.no_grad():
            expected = model(**features).logits.softmax(-1)[0]
        np.testing.assert_allclose(sorted(r["score"] for r in missing), sorted(expected.tolist()), atol=1e-5)
    finally:
        hook.remove()
        classifier.model.config.finetuning_mode = None
        model.config.finetuning_mode = None
    assert [sorted(kwargs) for kwargs in seen] == [["input_values"]]  # no mode chosen by the pipeline


def test_pipelines_read_files_only_through_the_processor(classifier, media, monkeypatch):
    """One path from a file to tensors: the family processor's (which also re-selects frames of damaged files)."""
    import inspect

    import hf_av.pipelines as pipelines_package

    calls = []
    original = CavMaeProcessor.__call__

    def recording(self, *args, **kwargs):
        calls.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CavMaeProcessor, "__call__", recording)
    classifier(str(media["clip"]), top_k=1)
    classifier(str(media["wav"]), top_k=1, modality="audio")
    assert [(c["videos"], c["modalities"]) for c in calls] == [(str(media["clip"]), "available"),
                                                               (str(media["wav"]), "audio")]
    # the clip duration (event localisation's time axis) is container metadata, not a second decode
    import io

    assert abs(classifier.prepare_clip(str(media["clip"]), with_duration=True)["duration"] - 2.0) < 0.1
    from_file_object = classifier.prepare_clip(io.BytesIO(media["clip"].read_bytes()), with_duration=True)
    assert abs(from_file_object["duration"] - 2.0) < 0.1
    for module in (pipelines_package.base, pipelines_package.audio_visual_classification,
                   pipelines_package.audio_visual_retrieval, pipelines_package.audio_visual_event_localization,
                   pipelines_package.audio_visual_feature_extraction,
                   pipelines_package.audio_visual_question_answering, pipelines_package.audio_visual_segmentation):
        source = inspect.getsource(module)
        assert "decode_media" not in source and "_media_decode_kwargs" not in source, module.__name__


def test_modality_vocabulary_and_deprecated_video(classifier, media):
    visual = classifier(str(media["clip"]), top_k=5, modality="visual", frames="middle")
    with pytest.warns(FutureWarning, match='"video" is deprecated'):
        video = classifier(str(media["clip"]), top_k=5, modality="video", frames="middle")
    assert visual == video
    with pytest.warns(FutureWarning, match="mode= is deprecated"):
        classifier(str(media["clip"]), top_k=1, mode="multimodal")


def test_bad_inputs_raise_clear_errors(classifier, media, tmp_path):
    with pytest.raises(MediaDecodingError, match="no such file"):
        classifier(str(tmp_path / "missing.mp4"))
    with pytest.raises(ValueError, match="corrupt.mp4"):
        classifier(str(media["corrupt"]))
    with pytest.raises(ValueError, match="modality"):
        classifier(str(media["clip"]), modality="smell")
    with pytest.raises(TypeError, match="unexpected"):
        classifier(str(media["clip"]), colour="red")


def test_feature_extraction_matches_model(pretraining_dir, media):
    extractor = pipeline("audio-visual-feature-extraction", model=str(pretraining_dir))
    out = extractor(str(media["clip"]), return_tokens=True)
    assert set(out) == {"audio_embeds", "visual_embeds", "audio_tokens", "visual_tokens"}
    model = CavMaeModel.from_pretrained(pretraining_dir).eval()
    inputs = CavMaeProcessor.from_pretrained(pretraining_dir)(videos=str(media["clip"]), return_tensors="pt")
    with torch.no_grad():
        expected = model(**inputs)
    np.testing.assert_allclose(out["audio_embeds"], expected.audio_embeds[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(out["visual_embeds"], expected.visual_embeds[0].numpy(), atol=1e-5)
    assert out["audio_tokens"].shape == tuple(expected.audio_last_hidden_state.shape[1:])
    audio_only = extractor(str(media["wav"]))
    assert set(audio_only) == {"audio_embeds"}


def test_retrieval_ranks_by_joint_embeddings(pretraining_dir, media):
    retriever = pipeline("audio-visual-retrieval", model=str(pretraining_dir))
    candidates = [str(media["clip"]), str(media["other"]), str(media["silent"])]
    ranking = retriever(str(media["clip"]), candidates=candidates, batch_size=2)
    assert sorted(r["index"] for r in ranking) == [0, 1, 2]
    assert [r["score"] for r in ranking] == sorted((r["score"] for r in ranking), reverse=True)
    # same numbers from the feature-extraction pipeline: audio of the query vs frames of the candidates
    extractor = pipeline("audio-visual-feature-extraction", model=retriever.model, processor=retriever.processor)
    query = extractor(str(media["clip"]), modality="audio")["audio_embeds"]
    scores = [float(extractor(c, modality="visual")["visual_embeds"] @ query) for c in candidates]
    np.testing.assert_allclose([r["score"] for r in sorted(ranking, key=lambda r: r["index"])], scores, atol=1e-5)
    assert ranking[0]["candidate"] == candidates[int(np.argmax(scores))]
    # precomputed bank, several queries, video -> audio
    bank = retriever.embed_candidates(candidates[:2], "audio")
    results = retriever([str(media["clip"]), str(media["silent"])], candidate_embeddings=bank,
                        candidate_names=["a", "b"], query_modality="visual", top_k=1)
    assert [len(r) for r in results] == [1, 1] and results[0][0]["candidate"] in ("a", "b")
    with pytest.raises(ValueError, match="exactly one"):
        retriever(str(media["clip"]))


def test_event_postprocessing_per_segment_logits():
    id2label = {0: "background", 1: "dog", 2: "car"}
    logits = torch.full((6, 3), -5.0)
    for t, c in enumerate([0, 1, 1, 2, 0, 2]):
        logits[t, c] = 5.0
    segments = segment_labels_from_logits(id2label, logits=logits)
    assert [s["label"] for s in segments] == ["background", "dog", "dog", "car", "background", "car"]
    events = segments_to_events(segments, segment_duration=1.0, background_id=0)
    assert [(e["label"], e["start"], e["end"]) for e in events] == [("dog", 1.0, 3.0), ("car", 3.0, 4.0), ("car", 5.0, 6.0)]
    assert all(0.99 < e["score"] <= 1.0 for e in events)


def test_event_postprocessing_supervised_ave_layout():
    id2label = {0: "dog", 1: "car", 2: "background"}
    is_event = torch.tensor([-3.0, 2.0, 2.0, -1.0])
    event_logits = torch.tensor([0.1, 3.0, 9.0])  # background is never the video's event class
    segments = segment_labels_from_logits(id2label, is_event_logits=is_event, event_logits=event_logits)
    assert [s["label"] for s in segments] == ["background", "car", "car", "background"]
    events = segments_to_events(segments, 0.5, background_id=2)
    assert [(e["label"], e["start"], e["end"]) for e in events] == [("car", 0.5, 1.5)]


def test_stock_audio_classification_pipeline_runs_cav_mae(classifier_dir, reference):
    model, processor = reference
    stock = pipeline("audio-classification", model=str(classifier_dir))
    waveform = np.sin(np.linspace(0, 3000, 16000)).astype(np.float32)
    result = stock(waveform, top_k=5)
    features = processor.feature_extractor([waveform[None]], sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        expected = model(**features).logits.softmax(-1)[0]
    np.testing.assert_allclose(sorted(r["score"] for r in result), sorted(expected.tolist()), atol=1e-5)
