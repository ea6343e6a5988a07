"""healthscore: settings, the `healthscore` CLI and the pipeline wiring that joins the stages."""

__version__ = "0.1.0"
