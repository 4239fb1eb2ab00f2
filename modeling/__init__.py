"""Networks only: configs and nn.Modules of every hf_av model family. No file I/O, no media."""
