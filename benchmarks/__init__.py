"""hf_av benchmark suite (see benchmarks/run.py)."""
