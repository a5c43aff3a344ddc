"""Where a block's rows live: the array namespace of ``kmeans.device`` (NumPy on ``cpu``, CuPy on
``gpu``; any array-API namespace by module name, such as ``array_api_strict`` in the tests), and
the one way back to the host.

A block keeps its rows in its namespace for a whole fit (:class:`~segcore.kmeans.engines.local.
LocalBlocks`); the kernels (:mod:`segcore.kmeans.kernels`) use only the array API standard on
them, through ``array-api-compat``; what crosses back to the host is small: (k, d) partials,
moments, a few rows (:func:`to_host`). The driver (:mod:`segcore.kmeans.core`) works on those
with NumPy.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np
from array_api_compat import array_namespace

# kmeans.device -> the module whose arrays hold the blocks.
DEVICE_MODULES = {"cpu": "numpy", "gpu": "cupy"}
GPU_HELP = (
    "install CuPy for the machine's CUDA (pip install cupy-cuda12x) and run where an NVIDIA GPU is "
    "visible, or set kmeans.device=cpu"
)


class DeviceUnavailable(RuntimeError):
    """The device asked for is not here (no CuPy, no CUDA device): an environment problem."""


def namespace(module: str = "numpy") -> ModuleType:
    """The array-API namespace of ``module``'s arrays (``numpy``, ``cupy``, ``array_api_strict``,
    ``torch``), checked usable: CuPy must see a CUDA device."""
    try:
        library = importlib.import_module(module)
    except ImportError:
        if module == "cupy":
            raise DeviceUnavailable(
                f"kmeans.device=gpu needs CuPy, which is not installed: {GPU_HELP}"
            ) from None
        raise
    try:
        probe = library.zeros(1)
    except Exception as exc:  # CuPy's CUDA errors: no driver, no device
        raise DeviceUnavailable(
            f"kmeans.device=gpu found no usable CUDA device ({exc}): {GPU_HELP}"
        ) from None
    return array_namespace(probe)


def device_namespace(device: str) -> ModuleType:
    """The namespace of ``kmeans.device`` (``cpu`` or ``gpu``)."""
    return namespace(DEVICE_MODULES[device])


def to_host(array) -> np.ndarray:
    """``array`` as a NumPy array: as it is for NumPy, copied from the GPU for CuPy, through DLPack
    for any other namespace (never through ``__array__``, which the strict namespace refuses in
    the tests)."""
    if isinstance(array, np.ndarray):
        return array
    get = getattr(array, "get", None)  # CuPy: device to host
    return get() if callable(get) else np.from_dlpack(array)
