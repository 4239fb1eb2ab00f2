#!/usr/bin/env python
"""Convert an original VATT TensorFlow 2 checkpoint (google-research/vatt) into a Transformers-loadable folder.

    python conversion_scripts/convert_vatt_tf_to_hf.py --checkpoint PATH/ckpt-N --output-dir DIR \
        [--original-config config.json --original-model tx_fac|ut_fac|video_cls|audio_cls]
        [--vocab-file howto100m_en.txt]

The checkpoint kind (tx_fac / ut_fac pre-training, video_cls / audio_cls fine-tuned classifier) is recognised from
the variable paths. Without --original-config the released sizes are read from the tensor shapes (64 dimensions per
attention head, as every released tower). --original-config takes the original constructor arguments (layout of
tests/fixtures/vatt/config.json: backbone names + overrides) for checkpoints of other sizes. TensorFlow is not
needed: hf_av reads the tensor bundle itself. The logic lives in `hf_av.conversion.vatt`; this file only parses
arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

# allow running from a source checkout without installing the package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hf_av.conversion.vatt import ORIGINAL_KINDS, convert_vatt_checkpoint  # noqa: E402
from hf_av.errors import CheckpointConversionError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="TF2 checkpoint prefix PATH/ckpt-N (or its .index file)")
    parser.add_argument("--output-dir", required=True, help="folder to write (replaced atomically)")
    parser.add_argument("--original-config", default=None, help="JSON with the original constructor arguments")
    parser.add_argument("--original-model", choices=ORIGINAL_KINDS, default=None,
                        help="checkpoint kind; inferred from the variables when omitted (and checked when given)")
    parser.add_argument("--vocab-file", default=None,
                        help="VATT's word vocabulary (howto100m_en.txt from misc_data.tgz) for the tokenizer")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        output = convert_vatt_checkpoint(
            args.checkpoint, args.output_dir, args.original_config, args.original_model, args.vocab_file
        )
    except CheckpointConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
