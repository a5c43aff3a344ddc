"""The registered customer value model's code (MLflow models-from-code): MLflow runs this file to
build the pyfunc model, which then reads its JSON state; nothing is pickled."""

from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model

from segcore.value.model import STATE_ARTIFACT, ValueModel


class ValuePyfunc(mlflow.pyfunc.PythonModel):
    """The MLflow wrapper: loads the JSON state and scores frames of the value inputs."""

    def load_context(self, context) -> None:
        self.model = ValueModel.from_json(Path(context.artifacts[STATE_ARTIFACT]).read_text())

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.model.score(model_input)


set_model(ValuePyfunc())
