"""The policy for undecodable samples: count them, log which file and why, fail past a threshold."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..errors import HfAvError

logger = logging.getLogger("hf_av.data")

__all__ = ["DecodeErrorPolicy", "TooManyDecodingErrors", "read_error_report"]


class TooManyDecodingErrors(HfAvError):
    """More samples failed to decode than the :class:`DecodeErrorPolicy` allows."""


@dataclass
class DecodeErrorPolicy:
    """What a stream does with a sample it cannot decode or preprocess.

    Policy: the sample is skipped, counted, and logged (``logging`` logger ``hf_av.data``, level WARNING,
    naming the file and the exception). The stream raises :class:`TooManyDecodingErrors` as soon as

    * more than ``max_count`` samples have failed (absolute threshold; ``None`` = no absolute limit), or
    * at least ``min_samples`` samples have been attempted and more than ``max_fraction`` of them failed
      (fraction threshold; ``None`` = no fraction limit).

    ``max_count=0`` turns the policy into "fail on the first bad sample".

    Counting is per process: each DataLoader worker (and each distributed rank) holds its own copy of the
    counters (``num_attempted``, ``num_failed``, ``failures``), so thresholds apply to the share of the
    data that process decodes. To see every failure of a run in one place, set ``report_path``: each
    failure is appended as one JSON line (``read_error_report(path)`` reads them back) by whichever
    process saw it.

    Only exceptions in ``catch`` count as decoding failures: ``MediaDecodingError`` and other ``ValueError``s,
    ``OSError`` (unreadable files, PyAV/FFmpeg errors) and ``EOFError``. Anything else (a ``KeyError`` or a
    torch ``RuntimeError`` from a processor bug) propagates at once.
    """

    max_fraction: Optional[float] = 0.05
    max_count: Optional[int] = None
    min_samples: int = 20
    report_path: Optional[str] = None
    catch: tuple = (ValueError, OSError, EOFError)
    num_attempted: int = 0
    num_failed: int = 0
    failures: List[Dict] = field(default_factory=list)

    def record_success(self) -> None:
        self.num_attempted += 1

    def record_failure(self, sample_id: str, error: BaseException) -> None:
        """Count, log and report one failed sample, then raise if the policy's threshold is passed."""
        self.num_attempted += 1
        self.num_failed += 1
        reason = f"{type(error).__name__}: {error}"
        entry = {"sample": str(sample_id), "error": reason, "pid": os.getpid(), "time": time.time()}
        if len(self.failures) < 1000:
            self.failures.append(entry)
        logger.warning("hf_av.data: skipping undecodable sample %s (%s) [%d failed of %d attempted]",
                       sample_id, reason, self.num_failed, self.num_attempted)
        if self.report_path:
            with open(self.report_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
        self.check()

    def check(self) -> None:
        too_many = self.max_count is not None and self.num_failed > self.max_count
        frac = self.num_failed / max(self.num_attempted, 1)
        too_frac = (
            self.max_fraction is not None and self.num_attempted >= self.min_samples and frac > self.max_fraction
        )
        if too_many or too_frac:
            last = "; ".join(f"{f['sample']} ({f['error']})" for f in self.failures[-5:])
            limit = (
                f"max_count={self.max_count}" if too_many
                else f"max_fraction={self.max_fraction} after min_samples={self.min_samples}"
            )
            raise TooManyDecodingErrors(
                f"{self.num_failed} of {self.num_attempted} samples could not be decoded in this process "
                f"({frac:.1%}), over the limit {limit}. Last failures: {last}. Fix or remove these files, or "
                f"loosen DecodeErrorPolicy(max_fraction=..., max_count=...)."
            )

    def summary(self) -> Dict:
        return {"num_attempted": self.num_attempted, "num_failed": self.num_failed,
                "failed_samples": [f["sample"] for f in self.failures]}


def read_error_report(path: str) -> List[Dict]:
    """The failures appended to a ``DecodeErrorPolicy.report_path`` file by every process of a run."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
