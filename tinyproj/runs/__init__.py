"""What every experiment stands on: a run's config, its training loop, evaluation and files.

    runs.config      TrainConfig (validated before any I/O), the papers' presets
    runs.training    THE training loop (Algorithm 1 per step; checkpoints, exact resume)
    runs.evaluation  error rates, batch-norm re-estimation, errors by test projection
    runs.files       atomic writes, JSON lines, the checkpoint format
"""
