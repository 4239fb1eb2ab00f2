"""Transformers' own common model tests (`ModelTesterMixin` of the installed release) on hf_av models.

See `upstream.py` for where the upstream code comes from and how a family adds its tester.
"""
