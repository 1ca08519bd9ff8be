"""Tokenizer pre-training. Entry points: `vtp.train.loop.train(cfg, run_dir=...)`,
`vtp.train.config.TokenizerTrainConfig`, `vtp.train.checkpoint.load_tokenizer(path)`.

Kept import-free on purpose: `vtp.train.config` is read by the torch-free FLOP formula at plan time.
"""
