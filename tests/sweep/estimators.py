"""Torch-free FLOP estimators for the plan tests (the real one is vtp.flops.tokenizer:train_flops)."""


def per_step(config: dict) -> float:
    return config["steps"] * 1e9


def broken(config: dict) -> float:
    raise KeyError("budget_samples")
