"""Pure active-learning library: arrays in, arrays out. Never imports Django or Celery.

- `sampler.features`: text / image / given vectors -> float32 feature matrices
- `sampler.ensemble`: an ensemble of small PyTorch MLPs (member probabilities, embeddings)
- `sampler.acquisition`: acquisition functions over member probabilities (K, N, C)
- `sampler.selection`: top-k, selection under a budget with batch diversity, cold start
- `sampler.pool`: scoring a pool in shards and merging the shards' candidates
- `sampler.simulate`: replaying a labeled set to compare strategies
- `sampler.allocation`: splitting a batch across item groups by their learning curves
"""
