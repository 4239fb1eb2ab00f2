#!/usr/bin/env python
"""Convert an original DG-SCT checkpoint (github.com/haoyi-duan/DG-SCT) into a Transformers-loadable folder.

    python conversion_scripts/convert_dg_sct_original_to_hf.py --checkpoint FILE.pt --output-dir DIR \
        [--task ave|avvp|avqa|avs|avs-ms3] [--original-config config.json] [--question-json avqa-train.json]

--task picks the original model: ave (`AVE` `MMIL_Net`, the default), avvp (`AVVP` `MGN_Net`), avqa
(`AVQA` `AVQA_Fusion_Net`, DataParallel keys; --question-json adds the question tokenizer and answer labels built
from the MUSIC-AVQA train json as the original does), avs (`AVS` S4 `Pred_endecoder`) or avs-ms3 (the MS3 copy:
`conv_adapter`, alpha/beta 0.2/0.1, gate scale 0.1; same keys as S4, so the setting must be given).

Without --original-config the released AVE configuration (Swin-V2-L 192 px, AudioSet HTS-AT, train.sh flags) is
assumed and sizes are read from the tensor shapes. --original-config takes the original settings (layout of
tests/fixtures/dg-sct/config.json: `opt`, `swin`, `htsat`, `heads`) for checkpoints of other sizes. The logic lives
in `hf_av.conversion.dg_sct`; this file only parses arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

# allow running from a source checkout without installing the package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hf_av.conversion.dg_sct import convert_dg_sct_checkpoint  # noqa: E402
from hf_av.conversion.dg_sct_tasks import TASKS, convert_dg_sct_task_checkpoint  # noqa: E402
from hf_av.errors import CheckpointConversionError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True,
                        help="the original state dict of the --task model (AVE, AVVP, AVQA, AVS S4/MS3; .pt/.pth, "
                             "plain torch.save)")
    parser.add_argument("--output-dir", required=True, help="folder to write (replaced atomically)")
    parser.add_argument("--original-config", default=None,
                        help="JSON with the original settings (opt/swin/htsat/heads)")
    parser.add_argument("--task", default="ave", choices=("ave", *TASKS), help="which original task model (default ave)")
    parser.add_argument("--question-json", default=None, help="avqa: the MUSIC-AVQA train json (question vocabulary)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.task == "ave":
            output = convert_dg_sct_checkpoint(args.checkpoint, args.output_dir, args.original_config)
        else:
            output = convert_dg_sct_task_checkpoint(
                args.task, args.checkpoint, args.output_dir, args.original_config, question_json=args.question_json
            )
    except CheckpointConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
