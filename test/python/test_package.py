"""The tests run against the installed package: `acheron` comes from
site-packages with its compiled parts inside it (acheron._dcss,
acheron.proto), nothing of it is a top-level module, and a copy of the
package that was not built says how to install it."""

import importlib.metadata
import importlib.util
import os
import pathlib
import subprocess
import sys

import acheron
import acheron.proto
from conftest import ROOT, installed_package_problem

PACKAGE = pathlib.Path(acheron.__file__).resolve().parent
OVERRIDE = os.environ.get("ACHERON_DCSS_EXTENSION")


def run_python(code, **env):
    """A fresh interpreter (this one's) with env added; PYTHONPATH and the
    extension override only if given."""
    e = {k: v for k, v in os.environ.items()
         if k not in ("PYTHONPATH", "ACHERON_DCSS_EXTENSION")}
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=e, timeout=60, cwd="/")


def test_acheron_is_the_installed_package():
    assert installed_package_problem(acheron.__file__) is None
    assert ROOT / "python" not in PACKAGE.parents and PACKAGE != ROOT / "python" / "acheron"
    assert importlib.metadata.version("acheron") == acheron.__version__


def test_a_source_tree_copy_is_refused_by_the_check():
    problem = installed_package_problem(str(ROOT / "python" / "acheron" / "__init__.py"))
    assert problem and "not from an installed package" in problem and "pip install ." in problem


def test_the_compiled_parts_are_inside_the_package():
    import acheron.dcss
    ext = pathlib.Path(acheron.dcss._ext.__file__).resolve()
    if OVERRIDE:  # make test-asan: the sanitized build's extension
        assert ext == pathlib.Path(OVERRIDE).resolve()
    else:
        assert ext.parent == PACKAGE and ext.name.startswith("_dcss.")
    assert acheron.dcss._ext.__name__ == "acheron._dcss"
    for schema in ("daqdata", "ublox_control"):
        for suffix in ("_pb2", "_pb2_grpc"):
            assert (PACKAGE / "proto" / f"{schema}{suffix}.py").is_file()
    # the stubs import each other inside the package
    from acheron.proto import daqdata_pb2, daqdata_pb2_grpc
    assert daqdata_pb2_grpc.daqdata__pb2 is daqdata_pb2
    import acheron.daq
    assert acheron.daq.daqdata_pb2 is daqdata_pb2


def test_nothing_is_installed_as_a_top_level_module():
    for name in ("acheron_proto", "acheron_dcss_ext", "_dcss", "daqdata_pb2",
                 "ublox_control_pb2"):
        assert importlib.util.find_spec(name) is None, name


def test_an_unbuilt_copy_says_how_to_install_the_package():
    for module, missing in (("acheron.dcss", "acheron._dcss"), ("acheron.daq", "acheron.proto")):
        r = run_python(f"import {module}", PYTHONPATH=str(ROOT / "python"))
        assert r.returncode != 0
        assert "ImportError" in r.stderr and missing in r.stderr, r.stderr
        assert "(this copy of the package was not built)" in r.stderr
        assert "pip install ." in r.stderr


def test_the_extension_override_loads_the_named_file():
    import acheron.dcss
    path = acheron.dcss._ext.__file__
    r = run_python("import acheron.dcss as d; print(d._ext.__file__, d.FakeDcss.__name__)",
                   ACHERON_DCSS_EXTENSION=path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [path, "FakeDcss"]


def test_the_extension_override_names_a_missing_file(tmp_path):
    r = run_python("import acheron.dcss", ACHERON_DCSS_EXTENSION=str(tmp_path / "nope.so"))
    assert r.returncode != 0
    assert f"ACHERON_DCSS_EXTENSION={tmp_path / 'nope.so'} is not a file" in r.stderr
    assert "unset ACHERON_DCSS_EXTENSION" in r.stderr


def test_the_extension_override_names_something_else(tmp_path):
    bogus = tmp_path / "_dcss.so"
    bogus.write_text("not a shared object\n")
    r = run_python("import acheron.dcss", ACHERON_DCSS_EXTENSION=str(bogus))
    assert r.returncode != 0
    assert f"ACHERON_DCSS_EXTENSION={bogus} could not be loaded as acheron._dcss" in r.stderr
