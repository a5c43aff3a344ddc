"""The registered model's code (MLflow models-from-code): MLflow runs this file to build the
pyfunc model, which then reads its JSON state; nothing is pickled."""

from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model

from segcore.model.segment_model import STATE_ARTIFACT, SegmentModel


class SegmentPyfunc(mlflow.pyfunc.PythonModel):
    """The MLflow wrapper: loads the JSON state and scores pandas frames."""

    def load_context(self, context) -> None:
        self.model = SegmentModel.from_json(Path(context.artifacts[STATE_ARTIFACT]).read_text())

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.model.assign(model_input)


set_model(SegmentPyfunc())
