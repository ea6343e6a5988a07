"""Features: the base layer — the raw-data contract, synthetic data, validation and (issue 3) the
Feast feature store. Imports nothing from the other healthscore packages."""
