"""`python -m hf_av.training ...` (what `accelerate launch -m hf_av.training` runs): same as `hf-av train`."""

import sys

from .run import cli_main

if __name__ == "__main__":
    sys.exit(cli_main())
