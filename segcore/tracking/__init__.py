"""Everything MLflow: the store, run lifecycle, artifacts, the registry, new segment ids, run
tables, lineage.

The only package that imports mlflow, apart from the two pyfunc modules (:mod:`segcore.model.pyfunc`,
:mod:`segcore.value.pyfunc`)."""
