"""The clustering core stands alone: `segcore/kmeans/` imports none of the pipeline (config,
preparation, errors, ...), checked in a fresh interpreter."""

import json
import subprocess
import sys
from pathlib import Path

import segcore.kmeans

IMPORT_EVERY_MODULE = """
import json, pkgutil, importlib, sys
import segcore.kmeans
names = [m.name for m in pkgutil.walk_packages(segcore.kmeans.__path__, "segcore.kmeans.")]
for name in names:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.startswith(("segcore", "cuml")))
print(json.dumps({"imported": names, "loaded": loaded}))
"""


def test_no_module_of_the_core_imports_the_pipeline():
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE], capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout)
    package = Path(segcore.kmeans.__file__).parent
    modules = {
        ".".join(p.relative_to(package).with_suffix("").parts).removesuffix(".__init__")
        for p in package.rglob("*.py")
    } - {"__init__"}
    assert {name.removeprefix("segcore.kmeans.") for name in found["imported"]} == modules
    # Nothing of the pipeline, and no cuML (imported only when a cuml fit runs).
    outside = [m for m in found["loaded"] if m != "segcore" and not m.startswith("segcore.kmeans")]
    assert outside == [], (
        f"segcore/kmeans imports more than NumPy, scikit-learn, PyArrow, PySpark, Dask: {outside}"
    )
