"""FLOP formulas, torch-free (the sweep engine calls them at plan time). Tokenizer: `vtp.flops.tokenizer`."""
