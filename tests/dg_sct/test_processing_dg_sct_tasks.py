"""Preprocessing of DG-SCT's other tasks: AVQA question tokenisation as the original loader
(`AVQA/net_grd_avst/dataloader_avst.py`), AVS waveform tiling (5 segments x 5) and mask post-processing."""

import tempfile

import numpy as np
import pytest
import torch

from hf_av.processing.dg_sct import DgSctFeatureExtractor, DgSctImageProcessor
from hf_av.processing.dg_sct_tasks import (
    DgSctQuestionAnsweringProcessor,
    DgSctQuestionTokenizer,
    DgSctSegmentationImageProcessor,
    DgSctSegmentationProcessor,
    build_question_vocabularies,
    fill_question_template,
)

SAMPLES = [  # MUSIC-AVQA json layout (`question_content`, `templ_values`, `anser`)
    {"question_content": "How many instruments are sounding in the video?", "templ_values": "[]", "anser": "two"},
    {"question_content": "Is the <Object> in the video always playing?", "templ_values": "['piano']", "anser": "yes"},
    {"question_content": "What is the left instrument of the <Object>?", "templ_values": "['cello']", "anser": "piano"},
]


def original_question_ids(sample, word_to_ix, max_len=14):
    """The original `AVQA_dataset.__getitem__` question lines, restated."""
    question = sample["question_content"].rstrip().split(" ")
    question[-1] = question[-1][:-1]
    values = eval(sample["templ_values"])  # noqa: S307 - literal list, as the original's ast.literal_eval
    p = 0
    for pos in range(len(question)):
        if "<" in question[pos]:
            question[pos] = values[p]
            p += 1
    question += ["<pad>"] * (max_len - len(question))
    return [word_to_ix[w] for w in question]


@pytest.fixture(scope="module")
def tokenizer():
    words, _ = build_question_vocabularies(SAMPLES)
    return DgSctQuestionTokenizer(words=words)


def test_vocabularies_follow_the_original_order():
    words, answers = build_question_vocabularies(SAMPLES)
    assert words[:4] == ["<pad>", "How", "many", "instruments"] and "video" in words and "video?" not in words
    assert "piano" in words and "<Object>" not in words and answers == ["two", "yes", "piano"]


def test_questions_tokenise_as_the_original(tokenizer):
    word_to_ix = tokenizer.get_vocab()
    for sample in SAMPLES:
        question = fill_question_template(sample["question_content"], sample["templ_values"])
        ids = tokenizer([question], padding="max_length", max_length=14)["input_ids"][0]
        assert ids == original_question_ids(sample, word_to_ix)


def test_tokenizer_round_trip_and_refusals(tokenizer):
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        reloaded = DgSctQuestionTokenizer.from_pretrained(folder)
    assert reloaded.get_vocab() == tokenizer.get_vocab() and reloaded.model_max_length == 14
    with pytest.raises(ValueError, match="'violin' is not in the question vocabulary"):
        tokenizer("What is the violin?")
    with pytest.raises(ValueError, match="2 template slots but templ_values gives 1"):
        fill_question_template("Is the <Object> left of the <Object>?", "['piano']")


def test_question_answering_processor_adds_padded_ids_and_refuses_long_questions(tokenizer):
    extractor = DgSctFeatureExtractor(num_segments=2, tile_repeats=2, n_fft=256, num_mel_bins=32)
    processor = DgSctQuestionAnsweringProcessor(extractor, DgSctImageProcessor(), tokenizer)
    frames = np.random.default_rng(0).integers(0, 255, (2, 40, 40, 3), dtype=np.uint8)
    audio = np.random.default_rng(1).standard_normal(64000).astype("float32")
    question = fill_question_template(SAMPLES[1]["question_content"], SAMPLES[1]["templ_values"])
    out = processor(audio=[audio], images=frames, sampling_rate=32000, text=question, return_tensors="pt")
    assert out["input_ids"].shape == (1, 14) and out["input_ids"][0, -1] == 0
    assert out["input_values"].shape[:2] == (1, 2) and out["pixel_values"].shape == (1, 2, 3, 192, 192)
    with pytest.raises(ValueError, match="The question has 17 words; the model takes at most 14"):
        processor.tokenize_questions("How many " * 8 + "video?")
    with pytest.raises(ValueError, match="needs the questions"):
        processor(audio=[audio], images=frames, sampling_rate=32000)


def test_segmentation_processor_tiles_each_second_five_times():
    processor = DgSctSegmentationProcessor()
    assert processor.num_segments == 5 and processor.image_processor.size == {"height": 224, "width": 224}
    wave = torch.randn(5 * 32000)
    tiled = processor.feature_extractor([wave.numpy()], sampling_rate=32000, return_waveform=True, return_tensors="pt")
    tiled = tiled["input_values"][0]
    # the original AVS loader: wave.view(5, 32000), then doubled until >= 160000 samples and cut
    reference = wave.view(5, 32000)
    while reference.shape[-1] < 5 * 32000:
        reference = torch.cat((reference, reference), dim=-1)
    assert torch.equal(tiled, reference[:, : 5 * 32000])


def test_masks_are_post_processed_to_the_image_size():
    logits = torch.full((2, 5, 224, 224), -3.0)
    logits[0, :, 50:100, 60:120] = 3.0
    masks = DgSctSegmentationImageProcessor.post_process_masks(logits, target_sizes=[(360, 480), (224, 224)])
    assert masks[0].shape == (5, 360, 480) and masks[1].shape == (5, 224, 224)
    assert masks[0].dtype == torch.bool and masks[0][:, 120, 200].all() and not masks[1].any()
    with pytest.raises(ValueError, match="target_sizes has 1 sizes for 2 clips"):
        DgSctSegmentationImageProcessor.post_process_masks(logits, target_sizes=[(10, 10)])


# ---- AVVP clip features, AVS image sizes, AVQA answers --------------------------------------------------------------
def _parsing_processor():
    from hf_av.processing.dg_sct_tasks import DgSctVideoParsingProcessor

    extractor = DgSctFeatureExtractor(num_segments=2, tile_repeats=2, n_fft=256, num_mel_bins=32)
    return DgSctVideoParsingProcessor(extractor, DgSctImageProcessor())


def _arrays(clips=1, size=(40, 40)):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (clips, 2, *size, 3), dtype=np.uint8)
    audio = [rng.standard_normal(64000).astype("float32") for _ in range(clips)]
    return audio, frames[0] if clips == 1 else frames


def test_video_parsing_processor_takes_clip_features_as_arrays_or_llp_npy_files(tmp_path):
    processor = _parsing_processor()
    audio, frames = _arrays()
    features = np.arange(2 * 5, dtype=np.float32).reshape(2, 5)
    out = processor(audio=audio, images=frames, sampling_rate=32000, clip_features=features, return_tensors="pt")
    assert torch.equal(out["clip_features"], torch.from_numpy(features)[None])
    path = tmp_path / "r2plus1d_18" / "video1.npy"
    path.parent.mkdir()
    np.save(path, features)
    from_file = processor(audio=audio, images=frames, sampling_rate=32000, clip_features=str(path), return_tensors="pt")
    assert torch.equal(from_file["clip_features"], out["clip_features"])
    assert "clip_features" not in processor(audio=audio, images=frames, sampling_rate=32000, return_tensors="pt")
    # a batch: one array [B, T, width] or one file per clip
    audio2, frames2 = _arrays(clips=2)
    batch = processor(audio=audio2, images=frames2, sampling_rate=32000, clip_features=[str(path), features],
                      return_tensors="pt")
    assert batch["clip_features"].shape == (2, 2, 5)


def test_video_parsing_processor_refuses_bad_clip_features(tmp_path):
    processor = _parsing_processor()
    audio, frames = _arrays()
    call = dict(audio=audio, images=frames, sampling_rate=32000, return_tensors="pt")
    with pytest.raises(ValueError, match=r"expected one feature vector per segment, shape \[2, width\].*got \(10, 512\)"):
        processor(**call, clip_features=np.zeros((10, 512)))
    with pytest.raises(FileNotFoundError, match=r"missing\.npy: no such file"):
        processor(**call, clip_features=str(tmp_path / "missing.npy"))
    with pytest.raises(ValueError, match="NaN or infinite"):
        processor(**call, clip_features=np.full((2, 5), np.nan))
    with pytest.raises(ValueError, match=r"2 clip\(s\) of features for 1 clip\(s\) of media"):
        processor(**call, clip_features=np.zeros((2, 2, 5)))
    with pytest.raises(ValueError, match="same feature width"):
        audio2, frames2 = _arrays(clips=2)
        processor(audio=audio2, images=frames2, sampling_rate=32000, clip_features=[np.zeros((2, 5)), np.zeros((2, 4))])


def test_segmentation_processor_reports_each_clips_frame_size():
    processor = DgSctSegmentationProcessor(DgSctFeatureExtractor(num_segments=2, tile_repeats=2, n_fft=256,
                                                                 num_mel_bins=32))
    audio, frames = _arrays(size=(30, 50))
    out = processor(audio=audio, images=frames, sampling_rate=32000, return_image_sizes=True, return_tensors="pt")
    assert out["image_sizes"].tolist() == [[30, 50]] and out["pixel_values"].shape == (1, 2, 3, 224, 224)
    assert "image_sizes" not in processor(audio=audio, images=frames, sampling_rate=32000, return_tensors="pt")


def test_answers_outside_the_vocabulary_are_refused():
    from hf_av.processing.dg_sct_tasks import answer_label_ids

    label2id = {"yes": 0, "no": 1, "two": 2}
    assert answer_label_ids(["two", "yes"], label2id) == [2, 0] and answer_label_ids("no", label2id) == [1]
    with pytest.raises(ValueError, match=r"answer\(s\) \['seven'\] are not in the answer vocabulary \(3 answers: "
                                         r"'yes', 'no', 'two'\)"):
        answer_label_ids(["yes", "seven"], label2id)
