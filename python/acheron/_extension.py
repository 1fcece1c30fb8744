"""The package's compiled parts, which ``pip install .`` builds into it: the
DHS extension ``acheron._dcss`` and the gRPC stubs ``acheron.proto``. A copy
of the package that was not built (python/acheron of a checkout put on
PYTHONPATH) has neither; importing acheron.dcss or acheron.daq from it
says how to install the package.

``ACHERON_DCSS_EXTENSION``, when set, is the path of a compiled ``_dcss``
module loaded instead of the installed one. It serves ``make test-asan``,
which runs the Python tests against the sanitized build's extension
(build/asan/python/acheron/_dcss.*.so) with the installed package.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Tuple

PACKAGE_DIR = Path(__file__).resolve().parent
DCSS_EXTENSION_VARIABLE = "ACHERON_DCSS_EXTENSION"

_INSTALL = "install the package with `pip install .` in an Acheron checkout (docs/python.md)"


def _missing(e: ModuleNotFoundError, *names: str) -> bool:
    return e.name in names


def load_dcss() -> ModuleType:
    """acheron._dcss: the installed one, or the file ACHERON_DCSS_EXTENSION names."""
    path = os.environ.get(DCSS_EXTENSION_VARIABLE)
    if path:
        return _load_extension_file("acheron._dcss", Path(path))
    try:
        return importlib.import_module("acheron._dcss")
    except ModuleNotFoundError as e:
        if not _missing(e, "acheron._dcss"):
            raise
        raise ImportError(
            f"acheron.dcss needs the compiled module acheron._dcss, which is not in "
            f"{PACKAGE_DIR} (this copy of the package was not built): {_INSTALL}") from e


def _load_extension_file(name: str, path: Path) -> ModuleType:
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    if not path.is_file():
        raise ImportError(
            f"{DCSS_EXTENSION_VARIABLE}={path} is not a file (it should name a compiled "
            f"acheron._dcss, e.g. build/asan/python/acheron/_dcss.cpython-311-x86_64-linux-gnu.so): "
            f"build it or unset {DCSS_EXTENSION_VARIABLE}")
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, str(path), loader=loader)
    try:
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader.exec_module(module)
    except ImportError as e:
        sys.modules.pop(name, None)
        raise ImportError(
            f"{DCSS_EXTENSION_VARIABLE}={path} could not be loaded as {name} ({e}): name a "
            f"_dcss module built by Acheron for this Python, or unset "
            f"{DCSS_EXTENSION_VARIABLE}") from e
    return module


def load_proto(schema: str) -> Tuple[ModuleType, ModuleType]:
    """acheron.proto.<schema>_pb2 and <schema>_pb2_grpc."""
    names = [f"acheron.proto.{schema}_pb2", f"acheron.proto.{schema}_pb2_grpc"]
    try:
        return tuple(importlib.import_module(n) for n in names)
    except ModuleNotFoundError as e:
        if not _missing(e, "acheron.proto", *names):
            raise
        raise ImportError(
            f"the gRPC stubs {names[0]} are not in {PACKAGE_DIR / 'proto'} (this copy of the "
            f"package was not built): {_INSTALL}") from e
