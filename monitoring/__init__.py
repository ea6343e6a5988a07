"""Monitoring: Evidently reports on data, score and performance drift (issue 7).

Imports from `features` only, never from `training` or `serving`.
"""
