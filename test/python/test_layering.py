"""The modules depend on each other one way only (scripts/check-layering.py,
docs/architecture.md): the real tree passes, and a tree with a forbidden
include, an unknown module or a stale exception fails with the reason."""

import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check-layering.py"


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True,
                          text=True, timeout=60)


def test_the_source_tree_keeps_the_layering():
    r = run()
    assert r.returncode == 0, r.stderr


def copy_tree(tmp_path):
    shutil.copytree(ROOT / "src", tmp_path / "src",
                    ignore=shutil.ignore_patterns("*.json", "*.toml", "web"))
    return tmp_path


def prepend_include(root, module, header):
    """Adds an include of `header` to the first source file of `module`;
    returns that file's path relative to root."""
    f = sorted((root / "src/acheron" / module).glob("*.cc"))[0]
    f.write_text(f'#include "{header}"\n' + f.read_text())
    return f.relative_to(root)


def test_a_service_including_another_service_is_refused(tmp_path):
    root = copy_tree(tmp_path)
    changed = prepend_include(root, "daq", "acheron/gnss/Service.hh")
    r = run("--root", root)
    assert r.returncode == 1
    assert f"daq must not include gnss: {changed}" in r.stderr


def test_a_lower_layer_including_a_higher_one_is_refused(tmp_path):
    root = copy_tree(tmp_path)
    prepend_include(root, "optics", "acheron/hub/Topic.hh")
    r = run("--root", root)
    assert r.returncode == 1
    assert "optics must not include hub" in r.stderr


def test_a_new_module_must_be_placed_first(tmp_path):
    root = copy_tree(tmp_path)
    (root / "src/acheron/newmod").mkdir()
    (root / "src/acheron/newmod/A.cc").write_text('#include "acheron/core/Error.hh"\n')
    r = run("--root", root)
    assert r.returncode == 2
    assert "newmod" in r.stderr


def test_an_exception_no_longer_needed_must_be_removed(tmp_path, capsys, monkeypatch):
    # The table has no exception today; one for an include that does not
    # exist (photon -> daq) must be reported as stale.
    import importlib.util
    spec = importlib.util.spec_from_file_location("check_layering", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "EXCEPTIONS", {("photon", "daq"): "a test entry"})
    assert mod.main(["--root", str(copy_tree(tmp_path))]) == 1
    assert "photon -> daq is no longer needed" in capsys.readouterr().err


def test_photon_including_broker_is_refused(tmp_path):
    # photon uses the ChAR0N policy in charon/, never the broker process.
    root = copy_tree(tmp_path)
    changed = prepend_include(root, "photon", "acheron/broker/Broker.hh")
    r = run("--root", root)
    assert r.returncode == 1
    assert f"photon must not include broker: {changed}" in r.stderr


def test_charon_including_broker_is_refused(tmp_path):
    root = copy_tree(tmp_path)
    changed = prepend_include(root, "charon", "acheron/broker/Monitor.hh")
    r = run("--root", root)
    assert r.returncode == 1
    assert f"charon must not include broker: {changed}" in r.stderr


def test_the_charon_policy_writes_runs_only_through_run_sink():
    # HDF5 is behind RunSink.hh: only the run file writer and reader include
    # it, and the router's and the run policy's headers do not include them.
    charon = ROOT / "src/acheron/charon"
    with_hdf5 = sorted(f.name for f in charon.iterdir() if '#include <hdf5.h>' in f.read_text())
    assert with_hdf5 == ["RunFile.cc", "RunFileReader.cc"]
    for f in list(charon.glob("Router*")) + [charon / n for n in
                                             ("CharonRouter.hh", "CharonRouter.cc",
                                              "AsyncRuns.hh", "RunSink.hh")]:
        assert '#include "acheron/charon/RunFile' not in f.read_text(), f.name
