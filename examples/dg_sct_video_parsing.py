"""DG-SCT audio-visual video parsing (AVVP) fine-tuning on a tiny LLP-layout dataset (CPU, seconds).

1. writes a tiny dataset in LLP's layout from synthetic media: `AVVP_train.csv` / `AVVP_val_pd.csv` (weak labels),
   `AVVP_eval_audio.csv` / `AVVP_eval_visual.csv` (segment annotations), `LLP_dataset/frame/<id>/%08d.jpg`,
   `LLP_dataset/wave/<id>.npy`, `LLP_dataset/feats/r2plus1d_18/<id>.npy` (`hf_av.data.dg_sct_tasks`);
2. trains `DgSctForAudioVisualVideoParsing` on the weak labels through the shared entry point
   (`hf-av train --task video-parsing`; loss = the model's weak-label loss);
3. evaluates the LLP segment-level F-scores (audio, visual, audio-visual, Type@Avg, Event@Avg) and saves a model
   folder that `AutoModel` / `AutoProcessor` load.

`python examples/dg_sct_video_parsing.py [--out DIR] [--model FOLDER] [--steps 4] [--no-clip-features]`. With
`--model`, a saved or converted `dg-sct-avvp` folder is fine-tuned instead of a tiny model from scratch;
`--no-clip-features` writes the layout without `feats/r2plus1d_18` and builds the model with `clip_feature_size=None`. On a real LLP copy, point
`hf-av train --task video-parsing --train_manifest data/AVVP/AVVP_train.csv --eval_manifest data/AVVP/AVVP_val_pd.csv`
at it.
"""

from __future__ import annotations

from pathlib import Path

from _dg_sct_tiny import parse_arguments, train

from hf_av.data.dg_sct_tasks import write_synthetic_llp

# the MGN head at toy width; 6-d clip features stand in for the 512-d R(2+1)D-18 ones
HEAD = {"parsing_hidden_size": 8, "clip_feature_size": 6, "grouping_num_attention_heads": 2, "audio_grouping_depth": 1,
        "visual_grouping_depth": 1, "audio_visual_grouping_depth": 1}


def main() -> dict:
    args = parse_arguments(__doc__.splitlines()[0], "dg_sct_video_parsing_run",
                           extra=[("--no-clip-features", "a layout without feats/r2plus1d_18 and a model built "
                                                         "with clip_feature_size=None")])
    width = None if args.no_clip_features else HEAD["clip_feature_size"]
    files = write_synthetic_llp(Path(args.out) / "data" / "AVVP", num_segments=3, clip_feature_size=width)
    return train("video-parsing", "dg-sct-avvp", {**HEAD, "clip_feature_size": width}, files, args)


if __name__ == "__main__":
    main()
