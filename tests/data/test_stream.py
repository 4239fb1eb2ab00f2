import json
import os
import shutil

import pytest
import torch
from torch.utils.data import DataLoader

from hf_av.data import (
    AudioVisualCollator,
    DecodeErrorPolicy,
    TooManyDecodingErrors,
    read_error_report,
    read_manifest,
    split_by_node,
    stream_from_folder,
    stream_from_hf_dataset,
    stream_from_manifest,
    stream_from_rows,
    stream_label_names,
)

from .helpers import LABELS, NUM_FRAMES, FakeProcessor, garble, truncate


def ids_of(ds):
    return [ex["sample_id"] for ex in ds]


def test_manifest_csv_single_label(corpus):
    root, rows = corpus
    ds = stream_from_manifest(root / "manifest.csv", FakeProcessor(), label_names=list(LABELS))
    examples = list(ds)
    assert len(examples) == len(rows)
    ex = examples[0]
    assert ex["pixel_values"].shape == (NUM_FRAMES, 3, 8, 8)
    assert ex["input_values"].shape == (64, 64)
    assert [e["labels"] for e in examples] == [i % 3 for i in range(len(rows))]
    assert ex["sample_id"].endswith("clip00.mp4") and os.path.isabs(ex["sample_id"])
    inferred = stream_from_manifest(root / "manifest.csv", FakeProcessor())
    assert stream_label_names(inferred) == list(LABELS)
    assert stream_label_names(split_by_node(inferred, rank=0, world_size=2)) == list(LABELS)


def test_manifest_jsonl_multi_label_and_segments(corpus):
    root, rows = corpus
    multi = list(stream_from_manifest(root / "manifest.jsonl", FakeProcessor(), label_mode="multi",
                                      label_names=list(LABELS)))
    assert multi[1]["labels"].tolist() == [0.0, 1.0, 1.0]  # dog + owl
    assert multi[0]["labels"].tolist() == [1.0, 0.0, 0.0]
    seg = list(stream_from_manifest(root / "manifest.jsonl", FakeProcessor(), label_mode="segment",
                                    label_names=list(LABELS), background_label="background"))
    assert seg[2]["labels"].tolist() == [2, 3]  # owl, then background = last class
    inferred = list(stream_from_manifest(root / "manifest.jsonl", FakeProcessor()))  # mode inferred: segment
    assert inferred[2]["labels"].dtype == torch.long and inferred[2]["labels"].shape == (2,)


def test_two_dataloader_workers_cover_every_sample_once(corpus):
    root, rows = corpus
    ds = stream_from_manifest(root / "manifest.csv", FakeProcessor(), shuffle=True, seed=3)
    assert ds.num_shards >= 2
    loader = DataLoader(ds, batch_size=3, num_workers=2,
                        collate_fn=AudioVisualCollator(passthrough=("sample_id",)))
    seen = []
    for batch in loader:
        assert batch["pixel_values"].shape[1:] == (NUM_FRAMES, 3, 8, 8)
        assert batch["labels"].dtype == torch.long
        seen += batch["sample_id"]
    expected = sorted(e["path"] for e in read_manifest(root / "manifest.csv"))
    assert sorted(seen) == expected  # every sample, exactly once


def test_two_processes_get_disjoint_halves(corpus):
    root, rows = corpus
    ds = stream_from_manifest(root / "manifest.csv", FakeProcessor())
    parts = [ids_of(split_by_node(ds, rank=r, world_size=2)) for r in range(2)]
    assert not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == sorted(ids_of(ds))
    assert abs(len(parts[0]) - len(parts[1])) <= 1
    # ranks x DataLoader workers: still exactly once
    seen = []
    for r in range(2):
        loader = DataLoader(split_by_node(ds, rank=r, world_size=2), batch_size=2, num_workers=2,
                            collate_fn=AudioVisualCollator(passthrough=("sample_id",)))
        seen += [s for b in loader for s in b["sample_id"]]
    assert sorted(seen) == sorted(ids_of(ds))


def test_split_by_node_reads_env(corpus, monkeypatch):
    root, rows = corpus
    ds = stream_from_manifest(root / "manifest.csv", FakeProcessor())
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    part = ids_of(split_by_node(ds))
    assert 0 < len(part) < len(rows)


@pytest.fixture()
def corrupt_manifest(corpus, tmp_path):
    root, rows = corpus
    good = [str(root / r["path"]) for r in rows[:8]]
    bad = [truncate(good[0], tmp_path / "truncated.mp4"), garble(good[1], tmp_path / "garbled.mp4")]
    (tmp_path / "empty.mp4").write_bytes(b"")
    bad.append(str(tmp_path / "empty.mp4"))
    paths = good[:3] + bad[:1] + good[3:6] + bad[1:] + good[6:]
    return [{"path": p, "label": i % 3} for i, p in enumerate(paths)], good, bad


def test_corrupt_clips_are_skipped_counted_and_reported(corrupt_manifest, tmp_path, caplog):
    rows, good, bad = corrupt_manifest
    report = tmp_path / "errors.jsonl"
    policy = DecodeErrorPolicy(max_fraction=0.5, min_samples=1, report_path=str(report))
    with caplog.at_level("WARNING", logger="hf_av.data"):
        got = ids_of(stream_from_rows(rows, FakeProcessor(), error_policy=policy))
    assert got == [r["path"] for r in rows if r["path"] in good]
    assert policy.num_failed == 3 and policy.num_attempted == len(rows)
    assert sorted(e["sample"] for e in read_error_report(str(report))) == sorted(bad)
    assert all("truncated.mp4" in r or "garbled" in r or "empty" in r for r in policy.summary()["failed_samples"])
    assert "truncated.mp4" in caplog.text and "MediaDecodingError" in caplog.text


def test_corrupt_clips_past_threshold_fail_clearly(corrupt_manifest):
    rows, good, bad = corrupt_manifest
    with pytest.raises(TooManyDecodingErrors, match=r"max_count=1.*garbled\.mp4"):
        list(stream_from_rows(rows, FakeProcessor(), error_policy=DecodeErrorPolicy(max_count=1, max_fraction=None)))
    with pytest.raises(TooManyDecodingErrors, match="max_fraction=0.1"):
        list(stream_from_rows(rows, FakeProcessor(), error_policy=DecodeErrorPolicy(max_fraction=0.1, min_samples=4)))
    # the threshold error also comes through DataLoader workers
    loader = DataLoader(stream_from_rows(rows, FakeProcessor(), error_policy=DecodeErrorPolicy(max_count=0)),
                        batch_size=2, num_workers=2, collate_fn=AudioVisualCollator())
    with pytest.raises(Exception, match="could not be decoded"):
        list(loader)


def test_errors_other_than_decoding_are_not_swallowed(corpus):
    root, rows = corpus

    def broken(videos, return_tensors="pt"):
        raise KeyError("bug in the processor")

    with pytest.raises(KeyError):
        list(stream_from_manifest(root / "manifest.csv", broken))


@pytest.mark.parametrize("shuffle", [False, True])
def test_resume_from_state_dict_continues_exactly(corrupt_manifest, shuffle):
    rows, good, bad = corrupt_manifest
    make = lambda proc: stream_from_rows(rows, proc, shuffle=shuffle, seed=7, max_shards=4,  # noqa: E731
                                         error_policy=DecodeErrorPolicy(max_fraction=None))
    full = ids_of(make(FakeProcessor()))
    assert len(full) == len(good)
    for stop in (1, 4, 6):
        ds = make(FakeProcessor())
        it = iter(ds)
        head = [next(it)["sample_id"] for _ in range(stop)]
        state = json.loads(json.dumps(ds.state_dict()))  # what a checkpoint stores
        proc = FakeProcessor()
        resumed = make(proc)
        resumed.load_state_dict(state)
        tail = ids_of(resumed)
        assert head + tail == full
        # rows before the checkpoint are skipped without being decoded again; the batched map re-runs only
        # its last input row (output dropped), so at most one extra decode
        if not shuffle:
            remaining = len(rows) - (next(i for i, r in enumerate(rows) if r["path"] == head[-1]) + 1)
            assert remaining <= proc.calls <= remaining + 1


def test_resume_across_epochs(corpus):
    root, rows = corpus
    ds = stream_from_manifest(root / "manifest.csv", FakeProcessor(), shuffle=True, seed=1, max_shards=6)
    ds.set_epoch(1)
    epoch1 = ids_of(ds)
    ds.set_epoch(1)
    assert ids_of(ds) == epoch1  # deterministic per epoch
    ds.set_epoch(2)
    assert ids_of(ds) != epoch1 and sorted(ids_of(ds)) == sorted(epoch1)
    ds.set_epoch(1)
    it = iter(ds)
    head = [next(it)["sample_id"] for _ in range(5)]
    state = ds.state_dict()
    resumed = stream_from_manifest(root / "manifest.csv", FakeProcessor(), shuffle=True, seed=1, max_shards=6)
    resumed.set_epoch(1)
    resumed.load_state_dict(state)
    assert head + ids_of(resumed) == epoch1


def test_folder_source(corpus, tmp_path):
    root, rows = corpus
    for i, r in enumerate(rows[:6]):
        d = tmp_path / LABELS[i % 3]
        d.mkdir(exist_ok=True)
        shutil.copy(root / r["path"], d / f"{i}.mp4")
    examples = list(stream_from_folder(tmp_path, FakeProcessor()))
    assert len(examples) == 6
    for ex in examples:
        assert LABELS[ex["labels"]] in ex["sample_id"]


def test_hf_dataset_source_paths_bytes_and_streaming(corpus):
    import datasets

    root, rows = corpus
    paths = [str(root / r["path"]) for r in rows]
    hf = datasets.Dataset.from_dict({"video": paths, "label": [i % 3 for i in range(len(paths))]})
    hf = hf.cast_column("label", datasets.ClassLabel(names=list(LABELS)))
    examples = list(stream_from_hf_dataset(hf, FakeProcessor()))
    assert [e["sample_id"] for e in examples] == paths
    assert [e["labels"] for e in examples] == [i % 3 for i in range(len(paths))]

    blobs = [{"bytes": open(p, "rb").read(), "path": None} for p in paths]
    hf_bytes = datasets.Dataset.from_dict({"clip": blobs, "id": [f"c{i}" for i in range(len(paths))],
                                           "target": [i % 3 for i in range(len(paths))]})
    stream = hf_bytes.to_iterable_dataset(num_shards=4)
    ds = stream_from_hf_dataset(stream, FakeProcessor(), video_column="clip", label_column="target", id_column="id")
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=AudioVisualCollator(passthrough=("sample_id",)))
    seen = [s for b in loader for s in b["sample_id"]]
    assert sorted(seen) == sorted(f"c{i}" for i in range(len(paths)))


def test_stream_feeds_collator_for_trainer_style_batches(corpus):
    root, rows = corpus
    ds = stream_from_manifest(root / "manifest.csv", FakeProcessor())
    batch = AudioVisualCollator()(list(ds.take(4)))
    assert set(batch) == {"input_values", "pixel_values", "labels"}  # sample_id strings dropped
    assert batch["input_values"].shape == (4, 64, 64) and batch["labels"].tolist() == [0, 1, 2, 0]
