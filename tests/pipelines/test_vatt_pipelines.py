"""VATT folders in the hf_av pipelines: retrieval and feature extraction in VATT's joint spaces (video<->audio, text
-> video), its video and audio classifiers through `audio-visual-classification`. Every expected value is computed
here from the model itself on the VATT processor's output (the pipelines' one path from a file to tensors)."""

import numpy as np
import pytest
import torch
from transformers import pipeline

import hf_av  # noqa: F401  (registers the pipelines and the VATT family)
from hf_av.conversion.vatt import processor_for_config
from modeling.vatt import (
    VattConfig,
    VattForAudioClassification,
    VattForPreTraining,
    VattForVideoClassification,
    VattModel,
)
from tests.training.test_vatt_training import TINY_VATT, _clip

LABELS = {0: "dog", 1: "bell", 2: "speech"}


def _save(model, config, folder, vocabulary=None):
    model.save_pretrained(folder)
    processor_for_config(config, vocabulary).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("vatt_pipeline_clips")
    return [_clip(root / f"clip{i}.mp4", i) for i in range(3)]


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vatt_pretrained")
    vocabulary = folder / "words.txt"
    vocabulary.write_text("\n".join(["<pad>", "<bos>", "<eos>", "<unk>", "a", "dog", "barks", "bell"]) + "\n")
    config = VattConfig(**TINY_VATT)
    torch.manual_seed(0)
    return _save(VattForPreTraining(config).eval(), config, folder, vocabulary)


def _classifier_dir(folder, head, modality):
    config = VattConfig(**dict(TINY_VATT, modalities=[modality], num_labels=3, id2label=LABELS,
                               label2id={v: k for k, v in LABELS.items()}))
    torch.manual_seed(1)
    return _save(head(config).eval(), config, folder)


def _reference(folder):
    model = VattModel.from_pretrained(folder).eval()
    processor = processor_for_config(model.config)
    return model, processor


def _cosine(a, b):
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


def test_retrieval_ranks_clips_in_the_video_audio_space(pretrained_dir, clips):
    retriever = pipeline("audio-visual-retrieval", model=pretrained_dir)
    assert type(retriever.model).__name__ == "VattModel"
    model, processor = _reference(pretrained_dir)
    with torch.no_grad():
        query = processor(videos=clips[0], modalities="audio", return_tensors="pt")
        audio = model.get_audio_features(query["input_values"]).pooler_output[0]
        frames = processor(videos=clips, modalities="visual", return_tensors="pt")["pixel_values"]
        video = model.get_video_features(frames, space="audio").pooler_output
    expected = _cosine(audio[None], video)
    ranking = retriever(clips[0], candidates=clips, query_modality="audio")
    assert [r["index"] for r in ranking] == torch.argsort(expected, descending=True).tolist()
    for entry in ranking:
        assert entry["score"] == pytest.approx(float(expected[entry["index"]]), abs=1e-5)
    # and the other way round: frames as the query, audio tracks as candidates
    backwards = retriever(clips[1], candidates=clips, query_modality="visual", top_k=2)
    assert len(backwards) == 2 and backwards[0]["score"] >= backwards[1]["score"]


def test_text_queries_meet_the_frames_in_the_video_text_space(pretrained_dir, clips):
    retriever = pipeline("audio-visual-retrieval", model=pretrained_dir)
    model, _ = _reference(pretrained_dir)
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(pretrained_dir)
    with torch.no_grad():
        tokens = processor(text=["a dog barks"], return_tensors="pt")
        text = model.get_text_features(tokens["input_ids"], tokens["attention_mask"]).pooler_output[0]
        frames = processor(videos=clips, modalities="visual", return_tensors="pt")["pixel_values"]
        video = model.get_video_features(frames, space="text").pooler_output
    expected = _cosine(text[None], video)
    assert text.shape[-1] == TINY_VATT["video_text_projection_size"]
    ranking = retriever({"text": "a dog barks"}, candidates=clips, query_modality="text")
    for entry in ranking:
        assert entry["score"] == pytest.approx(float(expected[entry["index"]]), abs=1e-5)
    with pytest.raises(ValueError, match="no embedding in the video-text space"):
        retriever({"text": "a dog barks"}, candidates=clips, query_modality="text", candidate_modality="audio")
    # a precomputed bank for text queries is built in the video-text space
    bank = retriever.embed_candidates(clips, space="text")
    torch.testing.assert_close(bank, video, atol=1e-5, rtol=0)


def test_feature_extraction_returns_the_joint_space_embeddings(pretrained_dir, clips):
    extractor = pipeline("audio-visual-feature-extraction", model=pretrained_dir)
    model, processor = _reference(pretrained_dir)
    with torch.no_grad():
        inputs = processor(videos=clips[2], return_tensors="pt")
        audio = model.get_audio_features(inputs["input_values"]).pooler_output[0]
        video = model.get_video_features(inputs["pixel_values"]).pooler_output[0]
    out = extractor(clips[2])
    assert set(out) == {"audio_embeds", "visual_embeds"}
    np.testing.assert_allclose(out["audio_embeds"], audio.numpy(), atol=1e-5)
    np.testing.assert_allclose(out["visual_embeds"], video.numpy(), atol=1e-5)
    assert out["audio_embeds"].shape == (TINY_VATT["video_audio_projection_size"],)
    only_audio = extractor(clips[2], modality="audio", return_tokens=True)
    assert set(only_audio) == {"audio_embeds", "audio_tokens"}


@pytest.mark.parametrize("head, modality, input_key", [
    (VattForVideoClassification, "visual", "pixel_values"),
    (VattForAudioClassification, "audio", "input_values"),
])
def test_classification_pipeline_loads_the_saved_head_and_feeds_it_its_input(tmp_path, clips, head, modality,
                                                                             input_key):
    folder = _classifier_dir(tmp_path / head.__name__, head, modality)
    classifier = pipeline("audio-visual-classification", model=folder)
    assert type(classifier.model) is head
    model = head.from_pretrained(folder).eval()
    processor = processor_for_config(model.config)
    with torch.no_grad():
        inputs = processor(videos=clips[0], modalities=modality, return_tensors="pt")
        # the model's own scores: softmax (video) / sigmoid (audio, multi-label)
        probabilities = model(**{input_key: inputs[input_key]}).probabilities[0]
    result = classifier(clips[0], top_k=3)
    assert [r["label"] for r in result] == [LABELS[int(i)] for i in torch.argsort(probabilities, descending=True)]
    for entry in result:
        assert entry["score"] == pytest.approx(float(probabilities[model.config.label2id[entry["label"]]]), abs=1e-6)
    other = "audio" if modality == "visual" else "visual"
    with pytest.raises(ValueError, match=f"does not take {other} input"):
        classifier(clips[0], modality=other)


def test_video_classifier_averages_the_processors_views(tmp_path, clips):
    folder = _classifier_dir(tmp_path / "video", VattForVideoClassification, "visual")
    classifier = pipeline("audio-visual-classification", model=folder)
    classifier.processor.video_processor.num_test_clips = 2
    model = VattForVideoClassification.from_pretrained(folder).eval()
    processor = processor_for_config(model.config)
    processor.video_processor.num_test_clips = 2
    with torch.no_grad():
        pixel_values = processor(videos=clips[1], modalities="visual", return_tensors="pt")["pixel_values"]
        assert pixel_values.shape[1] == 2
        per_view = torch.stack([model(pixel_values=pixel_values[:, v]).logits[0] for v in range(2)])
    expected = per_view.mean(0).softmax(-1)
    result = classifier(clips[1], top_k=1)[0]
    assert result["score"] == pytest.approx(float(expected.max()), abs=1e-6)


def test_classifier_folder_without_its_tower_fails_clearly(tmp_path, clips):
    folder = _classifier_dir(tmp_path / "audio", VattForAudioClassification, "audio")
    from hf_av.auto import AutoModelForAudioVisualClassification

    # the Auto class's VATT entry is the video classifier: an audio-only folder is refused, naming the tower
    with pytest.raises(ValueError, match="needs the visual tower"):
        AutoModelForAudioVisualClassification.from_pretrained(folder)
