"""The segment model: fitted preparation, centres and names; its Spark assignment and profiles;
the MLflow pyfunc that serves it (:mod:`segcore.model.pyfunc`, loaded lazily)."""

from segcore.model.segment_model import OUTPUT_COLUMNS, STATE_ARTIFACT, SegmentModel


def __getattr__(name: str):
    # Versions registered before the package layout run `from segcore.model import SegmentPyfunc`.
    if name == "SegmentPyfunc":
        from segcore.model.pyfunc import SegmentPyfunc

        return SegmentPyfunc
    raise AttributeError(f"module 'segcore.model' has no attribute {name!r}")


__all__ = ["OUTPUT_COLUMNS", "STATE_ARTIFACT", "SegmentModel"]
