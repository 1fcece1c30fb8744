"""Load and abuse, reduced to a test: well-behaved clients of `acheron
photon serve`, `acheron broker`, the C++ and Python remote-object servers
and `acheron daq serve` lose no reply and get no wrong one while hostile
clients send malformed, oversized, slow-reading, replayed and forged
traffic. The full run, with latency ratios, is bench/bench_abuse.py."""

import argparse
import importlib.util
import sys

import pytest

from conftest import ROOT, acheron_binary

spec = importlib.util.spec_from_file_location("bench_abuse", ROOT / "bench" / "bench_abuse.py")
bench_abuse = importlib.util.module_from_spec(spec)
sys.modules["bench_abuse"] = bench_abuse  # the hostile clients' processes unpickle its functions
spec.loader.exec_module(bench_abuse)


@pytest.mark.parametrize("target", ["serve", "broker"])
def test_no_lost_or_wrong_replies_under_abuse(target, capsys):
    exe = str(acheron_binary())
    args = argparse.Namespace(clients=16, requests=400, hostile=8, photons=100)
    sets = bench_abuse.photon_sets(args.photons)
    start = {"serve": bench_abuse.start_serve, "broker": bench_abuse.start_broker}[target]
    result = bench_abuse.run_target(target, start, exe, args, sets)
    line = capsys.readouterr().out
    assert result["lost"] == 0 and result["wrong"] == 0, line
    assert result["alive"], "a server or worker died: " + line
    assert result["hostile_messages"] > 100, "the hostile clients sent (almost) nothing: " + line


@pytest.mark.parametrize("target", ["remote-cpp", "remote-py", "daq"])
def test_remote_and_daq_clients_lose_no_reply_under_abuse(target, capsys):
    if target == "daq":
        pytest.importorskip("grpc")
        import abuse_daq as module
    else:
        import abuse_remote as module
    exe = str(acheron_binary())
    args = argparse.Namespace(clients=16, requests=400, hostile=8, photons=0)
    result = bench_abuse.run_service_target(target, module, exe, args)
    line = capsys.readouterr().out
    assert result["lost"] == 0 and result["wrong"] == 0, line
    assert result["alive"], "the server died: " + line
    assert result["hostile_messages"] > 100, "the hostile clients sent (almost) nothing: " + line
