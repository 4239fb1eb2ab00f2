#!/usr/bin/env python
"""Convert an original CAV-MAE checkpoint (github.com/YuanGongND/cav-mae) into a Transformers-loadable folder.

    python conversion_scripts/convert_cav_mae_original_to_hf.py --checkpoint FILE.pth --output-dir DIR \
        [--original-config config.json --original-model pretrain|finetune]

Without --original-config the released configuration is assumed (the release registry supplies labels and training
settings when the file name is a released one) and sizes are read from the tensor shapes. --original-config takes
the original constructor arguments (layout of tests/fixtures/cav-mae/config.json) for checkpoints of other sizes.
The logic lives in `hf_av.conversion.cav_mae`; this file only parses arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

# allow running from a source checkout without installing the package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hf_av.conversion.cav_mae import ORIGINAL_KINDS, convert_cav_mae_checkpoint  # noqa: E402
from hf_av.errors import CheckpointConversionError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="original .pth state dict (keys may start with 'module.')")
    parser.add_argument("--output-dir", required=True, help="folder to write (replaced atomically)")
    parser.add_argument("--original-config", default=None, help="JSON with the original constructor arguments")
    parser.add_argument("--original-model", choices=ORIGINAL_KINDS, default=None,
                        help="checkpoint kind; inferred from the keys when omitted (and checked when given)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        output = convert_cav_mae_checkpoint(args.checkpoint, args.output_dir, args.original_config, args.original_model)
    except CheckpointConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
