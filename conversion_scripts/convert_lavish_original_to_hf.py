#!/usr/bin/env python
"""Convert an original LAVisH AVE checkpoint (github.com/GenjiB/LAVISH) into a Transformers-loadable folder.

    python conversion_scripts/convert_lavish_original_to_hf.py --checkpoint FILE.pth --output-dir DIR \
        [--original-config config.json]

FILE.pth is a `torch.save(MMIL_Net.state_dict())` of the original AVE code (Swin-V2 path). Without
--original-config the sizes are read from the tensor shapes; --original-config takes the original constructor
arguments (layout of tests/fixtures/lavish/config.json) for checkpoints of other sizes. DIR receives safetensors
weights, config, processor config and a model card. The logic lives in `hf_av.conversion.lavish`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

# allow running from a source checkout without installing the package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hf_av.conversion.lavish import convert_lavish_checkpoint  # noqa: E402
from hf_av.errors import CheckpointConversionError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="original MMIL_Net state dict (.pth/.pt)")
    parser.add_argument("--output-dir", required=True, help="folder to write (replaced atomically)")
    parser.add_argument("--original-config", default=None, help="JSON with the original constructor arguments")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        output = convert_lavish_checkpoint(args.checkpoint, args.output_dir, args.original_config)
    except CheckpointConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
