"""Serving: the BentoML service for online health scores (issue 6).

Imports from `features` only, never from `training` or `monitoring`: the health model travels as one
MLflow artifact, so serving needs no training code.
"""
