"""Named failures of a tokenizer training run."""

from __future__ import annotations


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the run ends as failed with this reason."""

    def __init__(self, step: int, losses: dict[str, float]):
        self.step, self.losses = step, losses
        parts = ", ".join(f"{k}={v}" for k, v in losses.items())
        super().__init__(f"non-finite loss at step {step}: {parts}")
