"""Model factories. Each config in configs/model/ points at one of these by `_target_`.

Every model exposes `features(x)` (the penultimate representation) and `classifier` (the last
linear layer), so predictions can carry embeddings for individual fairness.
"""
