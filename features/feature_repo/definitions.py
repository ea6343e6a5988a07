"""Feast definitions for `feast apply`: the objects `features.store.definitions` builds.

Nothing is defined here: the entity, one FeatureView per health domain and the FeatureService
`account_health_v1` come from the catalog, exactly as `healthscore features apply` registers
them. `feast apply` finds objects by scanning module attributes, so each is exposed under its
name. Needs HEALTHSCORE_FEATURE_DIR (the snapshot Parquet files) and the variables of
feature_store.yaml; see README.md.
"""

import os
from pathlib import Path

from features.store import definitions

_REQUIRED = (
    "HEALTHSCORE_FEATURE_DIR",
    "HEALTHSCORE_FEAST_REGISTRY",
    "HEALTHSCORE_FEAST_ONLINE_PATH",
)
_missing = [name for name in _REQUIRED if not os.environ.get(name)]
if _missing:
    # Unset variables stay verbatim in feature_store.yaml: fail before Feast writes anything.
    raise RuntimeError(f"set {', '.join(_missing)} (see features/feature_repo/README.md)")

globals().update(
    {obj.name: obj for obj in definitions(Path(os.environ["HEALTHSCORE_FEATURE_DIR"]))}
)
