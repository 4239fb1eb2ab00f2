"""Readers of the original LLP / MUSIC-AVQA / AVSBench-S4 / AVSBench-MS3 layouts, their decoders and collator
(`hf_av.data.dg_sct_tasks`): rows parsed from each annotation format, malformed lines named by file and line, model
inputs of the expected shapes, and a missing media file skipped and reported by the stream's policy."""

import json

import numpy as np
import pytest
import torch

from hf_av.data import DecodeErrorPolicy
from hf_av.data.dg_sct_tasks import (
    LLP_CATEGORIES,
    AnnotationError,
    DgSctQuestionAnsweringDecoder,
    DgSctSegmentationDecoder,
    DgSctTaskCollator,
    DgSctVideoParsingDecoder,
    music_avqa_vocabularies,
    read_avsbench_annotations,
    read_avsbench_ms3_annotations,
    read_avsbench_s4_annotations,
    read_llp_annotations,
    read_music_avqa_annotations,
    stream_task_rows,
    write_synthetic_avsbench_ms3,
    write_synthetic_avsbench_s4,
    write_synthetic_llp,
    write_synthetic_music_avqa,
)
from hf_av.processing.dg_sct import DgSctFeatureExtractor, DgSctImageProcessor
from hf_av.processing.dg_sct_tasks import (
    DgSctVideoParsingProcessor,
    DgSctQuestionAnsweringProcessor,
    DgSctQuestionTokenizer,
    DgSctSegmentationImageProcessor,
    DgSctSegmentationProcessor,
)

SEGMENTS = 3


def _extractor(num_segments=SEGMENTS):
    return DgSctFeatureExtractor(sampling_rate=8000, num_segments=num_segments, tile_repeats=1, n_fft=256,
                                 hop_length=80, num_mel_bins=8, f_max=4000.0)


def _examples(rows, decoder):
    return list(stream_task_rows(rows, decoder, error_policy=DecodeErrorPolicy(max_fraction=None)))


@pytest.fixture(scope="module")
def llp(tmp_path_factory):
    return write_synthetic_llp(tmp_path_factory.mktemp("llp") / "AVVP", num_train=2, num_eval=2,
                               num_segments=SEGMENTS, clip_feature_size=6)


@pytest.fixture(scope="module")
def avqa(tmp_path_factory):
    return write_synthetic_music_avqa(tmp_path_factory.mktemp("avqa") / "AVQA", num_videos=2,
                                      num_segments=SEGMENTS)


@pytest.fixture(scope="module")
def s4(tmp_path_factory):
    return write_synthetic_avsbench_s4(tmp_path_factory.mktemp("s4") / "Single-source", num_train=2, num_eval=1)


# ----------------------------------------------------------------------------------------------------- LLP
def test_llp_rows_hold_weak_labels_media_paths_and_segment_events(llp):
    train = [json.loads(row["example"]) for row in read_llp_annotations(llp["train"], num_segments=SEGMENTS)]
    assert [row["labels"] for row in train] == [[0], [1]]  # Speech, Car: ids in the original class order
    first = train[0]
    assert first["filename"] == "synthclip00_0_3"
    assert first["frames_dir"].endswith("LLP_dataset/frame/synthclip00")
    assert first["wave"].endswith("LLP_dataset/wave/synthclip00.npy")
    assert first["clip_features"].endswith("LLP_dataset/feats/r2plus1d_18/synthclip00.npy")
    assert "audio_events" in first  # the eval files lie beside AVVP_train.csv, so they are attached

    evaluation = [json.loads(row["example"]) for row in read_llp_annotations(llp["eval"], num_segments=SEGMENTS)]
    # clip 2 is class 0, heard in [0, 2) and seen in [0, 2) (write_synthetic_llp)
    assert evaluation[0]["audio_events"] == [[0, 0, 2]] and evaluation[0]["visual_events"] == [[0, 0, 2]]
    without = read_llp_annotations(llp["eval"], num_segments=SEGMENTS, segment_annotations=False)
    assert "audio_events" not in json.loads(without[0]["example"])


def test_llp_malformed_lines_name_the_file_and_line(llp, tmp_path):
    bad = tmp_path / "AVVP_train.csv"
    bad.write_text("filename\tevent_labels\nsynthclip00_0_3\tSpeech\nsynthclip01_0_3\tSpeech,Unicorn\n")
    with pytest.raises(AnnotationError, match=r"AVVP_train.csv line 3: unknown event label\(s\) \['Unicorn'\]"):
        read_llp_annotations(bad)
    bad.write_text("filename\tevent_labels\nsynthclip00_0_3\n")
    with pytest.raises(AnnotationError, match=r"line 2: 1 tab-separated field"):
        read_llp_annotations(bad)
    bad.write_text("name,labels\nx,Speech\n")
    with pytest.raises(AnnotationError, match=r"line 1: header"):
        read_llp_annotations(bad)
    # an eval event outside the clip's segments
    (tmp_path / "AVVP_eval_audio.csv").write_text("filename\tonset\toffset\tevent_labels\nsynthclip00_0_3\t2\t5\tSpeech\n")
    (tmp_path / "AVVP_eval_visual.csv").write_text("filename\tonset\toffset\tevent_labels\n")
    bad.write_text("filename\tevent_labels\nsynthclip00_0_3\tSpeech\n")
    with pytest.raises(AnnotationError, match=r"AVVP_eval_audio.csv line 2: event \[2, 5\) does not fit the clip's 3"):
        read_llp_annotations(bad, num_segments=SEGMENTS)


def test_llp_decoder_gives_model_inputs_and_segment_ground_truth(llp):
    processor = DgSctVideoParsingProcessor(_extractor(), DgSctImageProcessor(size={"height": 32, "width": 32}))
    decoder = DgSctVideoParsingDecoder(processor, num_labels=len(LLP_CATEGORIES), clip_feature_size=6)
    examples = _examples(read_llp_annotations(llp["eval"], num_segments=SEGMENTS), decoder)
    assert len(examples) == 2
    example = examples[0]
    assert tuple(example["pixel_values"].shape) == (SEGMENTS, 3, 32, 32)
    assert tuple(example["input_values"].shape)[:1] == (SEGMENTS,)
    assert tuple(example["clip_features"].shape) == (SEGMENTS, 6)
    np.testing.assert_array_equal(np.asarray(example["labels"]), np.eye(25)[0])
    audio = np.asarray(example["audio_segment_labels"])
    assert audio.shape == (SEGMENTS, 25) and audio[:, 0].tolist() == [1, 1, 0] and audio[:, 1:].sum() == 0

    batch = DgSctTaskCollator(("input_values", "pixel_values", "clip_features", "labels", "audio_segment_labels"))(
        examples)
    assert tuple(batch["pixel_values"].shape) == (2, SEGMENTS, 3, 32, 32)
    assert tuple(batch["clip_features"].shape) == (2, SEGMENTS, 6)
    assert tuple(batch["labels"].shape) == (2, 25)
    assert tuple(batch["audio_segment_labels"].shape) == (2, SEGMENTS, 25)


def test_a_missing_media_file_is_skipped_and_reported(llp, tmp_path):
    rows = read_llp_annotations(llp["train"], num_segments=SEGMENTS)
    example = json.loads(rows[1]["example"])
    example["wave"] = str(tmp_path / "gone.npy")
    rows[1] = dict(rows[1], example=json.dumps(example))
    processor = DgSctVideoParsingProcessor(_extractor(), DgSctImageProcessor(size={"height": 32, "width": 32}))
    policy = DecodeErrorPolicy(max_fraction=None, report_path=str(tmp_path / "report.jsonl"))
    examples = list(stream_task_rows(rows, DgSctVideoParsingDecoder(processor, 25, 6), error_policy=policy))
    assert len(examples) == 1
    report = [json.loads(line) for line in (tmp_path / "report.jsonl").read_text().splitlines()]
    assert report[0]["sample"] == "synthclip01_0_3" and "gone.npy does not exist" in report[0]["error"]


def test_llp_clip_features_of_the_wrong_shape_are_a_clear_error(llp):
    processor = DgSctVideoParsingProcessor(_extractor(), DgSctImageProcessor(size={"height": 32, "width": 32}))
    row = json.loads(read_llp_annotations(llp["train"], num_segments=SEGMENTS)[0]["example"])
    with pytest.raises(ValueError, match=r"r2plus1d_18/synthclip00.npy have width 6, the model expects 512"):
        DgSctVideoParsingDecoder(processor, 25, 512).decode(row)


def test_llp_without_clip_features(tmp_path):
    files = write_synthetic_llp(tmp_path / "AVVP", num_train=1, num_eval=0, num_segments=SEGMENTS,
                                clip_feature_size=None)
    row = json.loads(read_llp_annotations(files["train"], num_segments=SEGMENTS)[0]["example"])
    assert row["clip_features"] is None  # no feats/r2plus1d_18 folder in the layout
    processor = DgSctVideoParsingProcessor(_extractor(), DgSctImageProcessor(size={"height": 32, "width": 32}))
    # a model built with clip_feature_size=None takes none
    assert "clip_features" not in DgSctVideoParsingDecoder(processor, 25, None).decode(row)
    with pytest.raises(ValueError, match=r"no LLP_dataset/feats/r2plus1d_18 folder \(build the model with "
                                         r"clip_feature_size=None instead\)"):
        DgSctVideoParsingDecoder(processor, 25, 512).decode(row)


# ----------------------------------------------------------------------------------------------- MUSIC-AVQA
def test_avqa_rows_fill_templates_and_draw_negatives_from_other_videos(avqa):
    rows = read_music_avqa_annotations(avqa["train"], num_segments=SEGMENTS, seed=0)
    examples = [json.loads(row["example"]) for row in rows]
    assert [e["question"] for e in examples[:4]] == ["Is the violin playing?", "Which instrument is sounding?",
                                                     "How many instruments are sounding?", "Is the piano playing?"]
    assert [e["answer"] for e in examples[:4]] == ["yes", "violin", "one", "yes"]
    assert examples[0]["frames_dir"].endswith("AVQA/frames/00000001")
    assert examples[0]["wave"].endswith("AVQA/audio_wave/00000001.npy")
    assert len(examples[0]["negatives"]) == SEGMENTS
    assert all(path.endswith("frames/00000002") for path, _ in examples[0]["negatives"])  # never its own video
    assert rows == read_music_avqa_annotations(avqa["train"], num_segments=SEGMENTS, seed=0)  # deterministic
    words, answers = music_avqa_vocabularies(avqa["train"])
    assert words[0] == "<pad>" and "violin" in words and answers == ["yes", "violin", "one", "piano"]


def test_avqa_malformed_records_name_the_file_and_record(tmp_path):
    path = tmp_path / "avqa-train.json"
    path.write_text(json.dumps([{"video_id": "1", "question_content": "Is the <Object> playing?", "anser": "yes"}]))
    with pytest.raises(AnnotationError, match=r"avqa-train.json record 0: missing \['templ_values'\]"):
        read_music_avqa_annotations(path)
    path.write_text(json.dumps([{"video_id": "1", "question_content": "Is the <Object> playing?", "templ_values": "[]",
                                 "anser": "yes"}]))
    with pytest.raises(AnnotationError, match=r"record 0: the question has 1 template slot"):
        read_music_avqa_annotations(path)
    path.write_text("[{")
    with pytest.raises(AnnotationError, match=r"avqa-train.json line 1: not valid JSON"):
        read_music_avqa_annotations(path)


def test_avqa_decoder_and_collator_shapes(avqa):
    words, answers = music_avqa_vocabularies(avqa["train"])
    processor = DgSctQuestionAnsweringProcessor(_extractor(), DgSctImageProcessor(size={"height": 32, "width": 32}),
                                                tokenizer=DgSctQuestionTokenizer(words=words, model_max_length=6))
    examples = _examples(read_music_avqa_annotations(avqa["train"], num_segments=SEGMENTS),
                         DgSctQuestionAnsweringDecoder(processor, answers))
    assert len(examples) == 6
    example = examples[0]
    ids = [words.index(word) for word in ("Is", "the", "violin", "playing")]
    assert list(np.asarray(example["input_ids"])) == ids + [0, 0]  # right-padded with <pad> = 0 to 6
    assert int(np.asarray(example["labels"])) == 0
    assert tuple(example["negative_pixel_values"].shape) == (SEGMENTS, 3, 32, 32)
    keys = ("input_values", "pixel_values", "input_ids", "negative_pixel_values", "labels")
    batch = DgSctTaskCollator(keys)(examples[:2])
    assert tuple(batch["input_ids"].shape) == (2, 6) and batch["input_ids"].dtype == torch.long
    assert tuple(batch["negative_pixel_values"].shape) == (2, SEGMENTS, 3, 32, 32)
    assert tuple(batch["labels"].shape) == (2,)


def test_avqa_question_longer_than_the_model_takes_is_skipped_and_named(avqa, tmp_path):
    words, answers = music_avqa_vocabularies(avqa["train"])
    processor = DgSctQuestionAnsweringProcessor(_extractor(), DgSctImageProcessor(size={"height": 32, "width": 32}),
                                                tokenizer=DgSctQuestionTokenizer(words=words, model_max_length=3))
    policy = DecodeErrorPolicy(max_fraction=None)
    rows = read_music_avqa_annotations(avqa["train"], num_segments=SEGMENTS)[:1]
    assert list(stream_task_rows(rows, DgSctQuestionAnsweringDecoder(processor, answers), error_policy=policy)) == []
    assert "The question has 4 words; the model takes at most 3" in policy.failures[0]["error"]


# ----------------------------------------------------------------------------------------------- AVSBench S4
def test_s4_rows_follow_the_split_column(s4):
    train = [json.loads(row["example"]) for row in read_avsbench_s4_annotations(s4["train"], split="train")]
    assert [e["name"] for e in train] == ["clip000", "clip001"] and {e["num_masks"] for e in train} == {1}
    assert train[0]["frames_dir"].endswith("s4_data/visual_frames/train/violin/clip000")
    assert train[1]["masks_dir"].endswith("s4_data/gt_masks/train/dog/clip001")
    assert train[0]["wave"].endswith("s4_data/audio_wav/train/violin/clip000.wav")
    val = [json.loads(row["example"]) for row in read_avsbench_s4_annotations(s4["eval"], split="val")]
    assert [e["num_masks"] for e in val] == [5]
    with pytest.raises(AnnotationError, match=r"no clip of split 'test' \(splits present: \['train', 'val'\]\)"):
        read_avsbench_s4_annotations(s4["eval"], split="test")


def test_s4_malformed_line_names_the_file_and_line(tmp_path):
    path = tmp_path / "s4_meta_data.csv"
    path.write_text("name,index,category,split\nclip0,0,dog,train\nclip1,1,train\n")
    with pytest.raises(AnnotationError, match=r"s4_meta_data.csv line 3: 3 comma-separated fields, the header has 4"):
        read_avsbench_s4_annotations(path)
    path.write_text("name,index,category\nclip0,0,dog\n")
    with pytest.raises(AnnotationError, match=r"line 1: header .*`split` column"):
        read_avsbench_s4_annotations(path)


def test_s4_decoder_masks_at_the_model_size(s4):
    processor = DgSctSegmentationProcessor(_extractor(5), DgSctSegmentationImageProcessor(size={"height": 32,
                                                                                                "width": 32}))
    train = _examples(read_avsbench_s4_annotations(s4["train"], split="train"), DgSctSegmentationDecoder(processor, 16))
    assert tuple(train[0]["pixel_values"].shape) == (5, 3, 32, 32)
    assert tuple(train[0]["input_values"].shape)[:1] == (5,)
    mask = np.asarray(train[0]["labels"])
    assert mask.shape == (16, 16) and set(np.unique(mask)) == {0.0, 1.0}  # resized nearest: still binary
    val = _examples(read_avsbench_s4_annotations(s4["eval"], split="val"), DgSctSegmentationDecoder(processor, 32))
    assert tuple(np.asarray(val[0]["labels"]).shape) == (5, 32, 32)
    batch = DgSctTaskCollator(("input_values", "pixel_values", "labels"))(train)
    assert tuple(batch["labels"].shape) == (2, 16, 16)


# ----------------------------------------------------------------------------------------------- AVSBench MS3
@pytest.fixture(scope="module")
def ms3(tmp_path_factory):
    return write_synthetic_avsbench_ms3(tmp_path_factory.mktemp("ms3") / "Multi-sources", num_train=2, num_eval=1)


def test_ms3_rows_have_five_masks_in_every_split(ms3):
    train = [json.loads(row["example"]) for row in read_avsbench_ms3_annotations(ms3["train"], split="train")]
    assert [e["name"] for e in train] == ["multi000", "multi001"] and {e["num_masks"] for e in train} == {5}
    assert train[0]["frames_dir"].endswith("ms3_data/visual_frames/multi000")  # no split folder for frames
    assert train[1]["masks_dir"].endswith("ms3_data/gt_masks/train/multi001")
    assert train[0]["wave"].endswith("ms3_data/audio_wav/train/multi000.wav")
    val = [json.loads(row["example"]) for row in read_avsbench_ms3_annotations(ms3["eval"], split="val")]
    assert [(e["name"], e["num_masks"]) for e in val] == [("multi002", 5)]


def test_avsbench_setting_comes_from_the_file_name_or_the_data_folder(ms3, s4, tmp_path):
    assert json.loads(read_avsbench_annotations(ms3["train"])[0]["example"])["mask_mode"] == "P"
    assert json.loads(read_avsbench_annotations(s4["train"])[0]["example"])["num_masks"] == 1
    renamed = tmp_path / "meta.csv"  # a renamed metadata file: the data folder beside it decides
    renamed.write_text(ms3["train"].read_text())
    assert json.loads(read_avsbench_annotations(renamed, ms3["train"].parent)[0]["example"])["num_masks"] == 5
    with pytest.raises(AnnotationError, match=r"meta.csv: cannot tell AVSBench S4 from MS3"):
        read_avsbench_annotations(renamed)
    assert len(read_avsbench_annotations(renamed, ms3["train"].parent, setting="ms3")) == 2
    with pytest.raises(ValueError, match=r"setting must be one of \['ms3', 's4'\], got 's5'"):
        read_avsbench_annotations(renamed, setting="s5")


def test_ms3_malformed_line_names_the_file_and_line(tmp_path):
    path = tmp_path / "ms3_meta_data.csv"
    path.write_text("video_id,fold,split\nmulti0,0,train\nmulti1,train\n")
    with pytest.raises(AnnotationError, match=r"ms3_meta_data.csv line 3: 2 comma-separated fields, the header has 3"):
        read_avsbench_annotations(path)
    path.write_text("video_id,fold\nmulti0,0\n")
    with pytest.raises(AnnotationError, match=r"ms3_meta_data.csv line 1: header .*`split` column"):
        read_avsbench_annotations(path)


def test_ms3_decoder_gives_five_binary_masks_and_skips_a_missing_frame(ms3, tmp_path):
    from PIL import Image

    processor = DgSctSegmentationProcessor(_extractor(5), DgSctSegmentationImageProcessor(size={"height": 32,
                                                                                                "width": 32}))
    rows = read_avsbench_ms3_annotations(ms3["train"], split="train")
    train = _examples(rows, DgSctSegmentationDecoder(processor, 16))
    assert tuple(train[0]["pixel_values"].shape) == (5, 3, 32, 32)
    masks = np.asarray(train[0]["labels"])
    assert masks.shape == (5, 16, 16) and set(np.unique(masks)) == {0.0, 1.0}
    # the palette index decides, not the colour: index 255 (any non-zero) is foreground
    example = json.loads(rows[0]["example"])
    mask_file = f"{example['masks_dir']}/multi000_1.png"
    with Image.open(mask_file) as image:
        assert image.mode == "P"
        expected = np.asarray(image) != 0
    full = _examples(rows[:1], DgSctSegmentationDecoder(processor, 32))
    np.testing.assert_array_equal(np.asarray(full[0]["labels"])[0], expected.astype(np.float32))
    assert tuple(DgSctTaskCollator(("labels",))(train)["labels"].shape) == (2, 5, 16, 16)

    # a missing frame: the clip is skipped and named by the stream's policy
    broken = dict(example, frames_dir=str(tmp_path / "nowhere"))
    policy = DecodeErrorPolicy(max_fraction=None)
    rows = [{"sample_id": "multi000", "example": json.dumps(broken)}, rows[1]]
    decoded = list(stream_task_rows(rows, DgSctSegmentationDecoder(processor, 16), error_policy=policy))
    assert len(decoded) == 1 and "multi000.mp4_1.png does not exist" in policy.failures[0]["error"]


def test_collator_names_a_key_only_some_examples_have():
    with pytest.raises(ValueError, match=r"'clip_features' is missing from 1 of 2 examples"):
        DgSctTaskCollator(("labels", "clip_features"))([{"labels": [1.0], "clip_features": [0.0]}, {"labels": [0.0]}])
