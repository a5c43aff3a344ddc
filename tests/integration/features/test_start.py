"""What `segcore features` imports before it starts Spark: the config (with its checks) and the
feature stage load no SciPy, scikit-learn or MLflow, which the feature job does not use (SciPy's
optimiser alone took about 0.3 s of every start). Checked in a fresh interpreter."""

import json
import subprocess
import sys

from conftest import ROOT

LOAD = """
import json, sys
from segcore.config import load_config
load_config(sys.argv[1], ["train.features=[recency_days,churn_risk]"])  # a value score: its check
import segcore.cli.commands, segcore.features.stage
print(json.dumps(sorted(m for m in ("scipy", "sklearn", "mlflow") if m in sys.modules)))
"""


def test_the_config_and_the_feature_stage_load_without_scipy_sklearn_or_mlflow():
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(ROOT / "conf" / "default.yaml")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == []
