"""DG-SCT audio-visual segmentation (AVSBench S4 or MS3) fine-tuning on a tiny AVSBench-layout dataset (CPU, seconds).

1. writes a tiny dataset in AVSBench's layout from synthetic media (`hf_av.data.dg_sct_tasks`):
   * `--setting s4` (default): `s4_meta_data.csv` (name, ..., category, split),
     `s4_data/visual_frames/<split>/<category>/<name>/<name>_{1..5}.png`, `s4_data/gt_masks/...` (the first frame's
     mask for train clips, all five for val) and `s4_data/audio_wav/<split>/<category>/<name>.wav`;
   * `--setting ms3`: `ms3_meta_data.csv` (name, ..., split), `ms3_data/visual_frames/<name>/<name>.mp4_{1..5}.png`,
     `ms3_data/gt_masks/<split>/<name>/<name>_{1..5}.png` (palette masks, all five frames in every split) and
     `ms3_data/audio_wav/<split>/<name>.wav`; two sounding sources per clip;
2. trains `DgSctForAudioVisualSegmentation` (`avs_setting` = the setting) through the shared entry point
   (`hf-av train --task segmentation`, which tells the layouts apart by the metadata file; loss: S4 = the first
   frame's mask BCE, MS3 = the five masks' BCE + the audio-visual matching loss);
3. evaluates AVSBench's mIoU and F-score on the val split's five masks per clip, and saves a model folder.

`python examples/dg_sct_segmentation.py [--setting s4|ms3] [--out DIR] [--model FOLDER] [--steps 4]`. On a real
AVSBench copy: `hf-av train --task segmentation --train_manifest Single-source/s4_meta_data.csv --eval_manifest
Single-source/s4_meta_data.csv --eval_split test ...` (MS3: `Multi-sources/ms3_meta_data.csv`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _dg_sct_tiny import parse_arguments, train

from hf_av.data.dg_sct_tasks import write_synthetic_avsbench_ms3, write_synthetic_avsbench_s4

# the decoder at toy width; masks come out at 4 x 8 = 32 px (the release: 4 x 56 = 224)
HEAD = {"num_segments": 5, "decoder_channels": 4, "feature_map_sizes": [8, 4, 2], "fusion_stages": [0, 1, 2],
        "audio_feature_size": 8, "temporal_visual_fc_dim": 4, "mask_head_sizes": [4, 4]}


def main() -> dict:
    # `--setting` is this example's own flag; the shared parser takes the rest
    setting_parser = argparse.ArgumentParser(add_help=False)
    setting_parser.add_argument("--setting", choices=("s4", "ms3"), default="s4",
                                help="AVSBench single-source (s4) or multi-source (ms3)")
    setting, sys.argv[1:] = setting_parser.parse_known_args()
    args = parse_arguments(__doc__.splitlines()[0], f"dg_sct_segmentation_{setting.setting}_run")
    data = Path(args.out) / "data"
    if setting.setting == "ms3":
        files = write_synthetic_avsbench_ms3(data / "Multi-sources", num_train=4, num_eval=2)
    else:
        files = write_synthetic_avsbench_s4(data / "Single-source", num_train=4, num_eval=2)
    return train("segmentation", "dg-sct-avs", {**HEAD, "avs_setting": setting.setting}, files, args,
                 eval_split="val")


if __name__ == "__main__":
    main()
