"""Training: LightGBM renewal model, baselines, MLflow tracking and the registry (issue 4).

Imports from `features` only, never from `serving` or `monitoring`.
"""
