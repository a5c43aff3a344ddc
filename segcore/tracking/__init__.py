"""Everything MLflow: the store, run lifecycle, artifacts, the registry, run tables, lineage.

The only package that imports mlflow, apart from the pyfunc module (:mod:`segcore.model.pyfunc`)."""
