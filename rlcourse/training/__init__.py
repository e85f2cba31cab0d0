"""Training entry points: ``train`` (one run), ``train_many`` (several, in processes), recipes, the
reproducibility check."""
