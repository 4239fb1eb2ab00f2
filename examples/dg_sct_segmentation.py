"""DG-SCT audio-visual segmentation (AVSBench S4) fine-tuning on a tiny AVSBench-layout dataset (CPU, seconds).

1. writes a tiny dataset in AVSBench S4's layout from synthetic media: `s4_meta_data.csv` (name, ..., category,
   split), `s4_data/visual_frames/<split>/<category>/<name>/<name>_{1..5}.png`, `s4_data/gt_masks/...` (the first
   frame's mask for train clips, all five for val) and `s4_data/audio_wav/<split>/<category>/<name>.wav`
   (`hf_av.data.dg_sct_tasks`);
2. trains `DgSctForAudioVisualSegmentation` on the train split's first-frame masks through the shared entry point
   (`hf-av train --task segmentation`; loss = the model's mask BCE);
3. evaluates AVSBench's mIoU and F-score on the val split's five masks per clip, and saves a model folder.

`python examples/dg_sct_segmentation.py [--out DIR] [--model FOLDER] [--steps 4]`. On a real AVSBench copy:
`hf-av train --task segmentation --train_manifest Single-source/s4_meta_data.csv --eval_manifest
Single-source/s4_meta_data.csv --eval_split test ...`.
"""

from __future__ import annotations

from pathlib import Path

from _dg_sct_tiny import parse_arguments, train

from hf_av.data.dg_sct_tasks import write_synthetic_avsbench_s4

# the decoder at toy width; masks come out at 4 x 8 = 32 px (the release: 4 x 56 = 224)
HEAD = {"num_segments": 5, "decoder_channels": 4, "feature_map_sizes": [8, 4, 2], "fusion_stages": [0, 1, 2],
        "audio_feature_size": 8, "temporal_visual_fc_dim": 4, "mask_head_sizes": [4, 4]}


def main() -> dict:
    args = parse_arguments(__doc__.splitlines()[0], "dg_sct_segmentation_run")
    files = write_synthetic_avsbench_s4(Path(args.out) / "data" / "Single-source", num_train=4, num_eval=2)
    return train("segmentation", "dg-sct-avs", HEAD, files, args, eval_split="val")


if __name__ == "__main__":
    main()
