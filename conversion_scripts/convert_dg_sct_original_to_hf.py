#!/usr/bin/env python
"""Convert an original DG-SCT AVE checkpoint (github.com/haoyi-duan/DG-SCT) into a Transformers-loadable folder.

    python conversion_scripts/convert_dg_sct_original_to_hf.py --checkpoint FILE.pt --output-dir DIR \
        [--original-config config.json]

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
from hf_av.errors import CheckpointConversionError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="original AVE state dict (.pt/.pth, plain torch.save)")
    parser.add_argument("--output-dir", required=True, help="folder to write (replaced atomically)")
    parser.add_argument("--original-config", default=None,
                        help="JSON with the original settings (opt/swin/htsat/heads)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        output = convert_dg_sct_checkpoint(args.checkpoint, args.output_dir, args.original_config)
    except CheckpointConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
