"""The registered model's code (MLflow models-from-code): MLflow runs this file to build the
pyfunc model, which then reads its JSON state; nothing is pickled."""

from mlflow.models import set_model

from segcore.model import SegmentPyfunc

set_model(SegmentPyfunc())
