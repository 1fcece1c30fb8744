"""UbloxControl end to end: `acheron gnss sim` (a simulated ZED-F9T on a
pseudo-terminal) and `acheron gnss serve` as real processes, driven by a
PANOSETI-style Python client through the generated stubs (grpcio), and by the
`acheron gnss init|capture` commands."""
import asyncio
import copy
import json
import signal
import subprocess
import time

import grpc
import pytest
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.struct_pb2 import Struct

from conftest import acheron_binary, build_dir

import sys

sys.path.insert(0, str(build_dir() / "python"))
from acheron_proto import ublox_control_pb2, ublox_control_pb2_grpc  # noqa: E402

json5 = pytest.importorskip("json5", reason="Debian python3-json5 (scripts/install-deps.sh)")


def default_config():
    text = subprocess.run([str(acheron_binary()), "gnss", "default-config"], check=True,
                          capture_output=True, text=True).stdout
    return json5.loads(text)


def chip_request(cfg, device):
    """What PANOSETI's client sends: the globals without f9t_chips, overlaid
    with one chip's entry."""
    chip = cfg["f9t_chips"][0]
    out = copy.deepcopy(cfg)
    del out["f9t_chips"]
    out.update(chip)
    out["device"] = device
    return out


@pytest.fixture
def gnss(acheron_process):
    sim = acheron_process("gnss", "sim", "--period-ms", "50", ready_pattern=r"device (\S+)")
    server = acheron_process("gnss", "serve", "--bind", "127.0.0.1:0", ready_pattern=r"serving on (\S+)")
    return sim.endpoint, server


def test_upstream_style_async_client_inits_and_captures(gnss):
    device, server = gnss
    cfg = default_config()
    assert len(cfg["cfg_key_settings"]) == 40

    async def main():
        async with grpc.aio.insecure_channel(server.endpoint) as channel:
            stub = ublox_control_pb2_grpc.UbloxControlStub(channel)
            request = ublox_control_pb2.InitF9tRequest(
                f9t_config=ParseDict(chip_request(cfg, device), Struct()), force_init=True)
            response = await stub.InitF9t(request)
            assert response.init_status == ublox_control_pb2.InitF9tResponse.SUCCESS
            assert response.message == "F9T initialized, configured, and verified successfully."
            assert MessageToDict(response.f9t_config)["f9t_uid"] == "DF03A241BC"
            got = []
            call = stub.CaptureUblox(ublox_control_pb2.CaptureUbloxRequest(patterns=[".*"]))
            async for r in call:
                got.append(r)
                if len(got) == 6:
                    call.cancel()
                    break
            return got

    got = asyncio.run(main())
    names = {r.name for r in got}
    assert names <= {"TIM-TP", "NAV-TIMEUTC", "ACK-ACK"} and "TIM-TP" in names
    now = time.time()
    for r in got:
        assert r.type == ublox_control_pb2.CaptureUbloxResponse.DATA
        parsed = MessageToDict(r.parsed_data)
        assert parsed["identity"] == r.name
        assert r.payload[:2] == b"\xb5\x62"
        assert parsed["length"] == len(r.payload) - 8
        assert abs(r.pkt_unix_timestamp.ToNanoseconds() * 1e-9 - now) < 30
        if r.name == "TIM-TP":
            assert set(parsed) >= {"towMS", "towSubMS", "qErr", "week", "timeBase", "utc", "raim",
                                   "qErrInvalid", "TpNotLocked", "timeRefGnss", "utcStandard"}
            assert parsed["msg_cls"] == "\r"


def test_sync_client_errors_and_reflection(gnss):
    device, server = gnss
    channel = grpc.insecure_channel(server.endpoint)
    stub = ublox_control_pb2_grpc.UbloxControlStub(channel)
    cfg = chip_request(default_config(), device)
    del cfg["device"]
    with pytest.raises(grpc.RpcError) as e:
        stub.InitF9t(ublox_control_pb2.InitF9tRequest(f9t_config=ParseDict(cfg, Struct())), timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Device path not specified" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        list(stub.CaptureUblox(ublox_control_pb2.CaptureUbloxRequest(patterns=[".*"]), timeout=5))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as e:
        stub.PollMessage(ublox_control_pb2.PollRequest(), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # Server reflection: list_services (field 7) answered with the service names.
    reflect = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                    request_serializer=lambda b: b, response_deserializer=lambda b: b)
    replies = list(reflect(iter([b"\x3a\x00"]), timeout=5))
    assert replies and b"ubloxcontrol.UbloxControl" in replies[0]
    channel.close()


def test_cli_init_and_capture(gnss):
    device, server = gnss
    exe = str(acheron_binary())
    out = subprocess.run([exe, "gnss", "init", "--connect", server.endpoint, "--device", device],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "verified successfully" in out.stdout
    out = subprocess.run([exe, "gnss", "capture", "--connect", server.endpoint, "-p", "TIM", "-n", "3",
                          "--json"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 3 and {m["name"] for m in lines} == {"TIM-TP"}
    assert all(m["payload_hex"].startswith("b5620d01") for m in lines)
    # A second init without --force while nobody captures succeeds; a wrong uid fails with exit 1.
    out = subprocess.run([exe, "gnss", "init", "--connect", server.endpoint, "--device", device],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    bad = subprocess.run([exe, "gnss", "capture", "--connect", "127.0.0.1:1", "-n", "1"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 3, bad.stderr
    # Ctrl-C ends a capture that receives nothing (exit 130, interrupted).
    idle = subprocess.Popen([exe, "gnss", "capture", "--connect", server.endpoint, "-p", "NOTHING"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    idle.send_signal(signal.SIGINT)
    assert idle.wait(10) == 130
    idle.stdout.close()
    idle.stderr.close()
    # SIGTERM stops the server cleanly.
    assert server.stop() == 0


def test_hostile_patterns_and_device_paths_are_refused_and_the_server_keeps_serving(gnss):
    """A CaptureUblox pattern of 20,000 nested groups used to crash the
    server (recursive std::regex compile, SIGSEGV), and InitF9t opened any
    path a client named and said whether it existed."""
    device, server = gnss
    channel = grpc.insecure_channel(server.endpoint)
    stub = ublox_control_pb2_grpc.UbloxControlStub(channel)
    cfg = chip_request(default_config(), device)
    init = stub.InitF9t(ublox_control_pb2.InitF9tRequest(f9t_config=ParseDict(cfg, Struct()),
                                                         force_init=True), timeout=30)
    assert init.init_status == ublox_control_pb2.InitF9tResponse.SUCCESS
    nested = "(" * 20000 + "TIM" + ")" * 20000
    with pytest.raises(grpc.RpcError) as e:
        list(stub.CaptureUblox(ublox_control_pb2.CaptureUbloxRequest(patterns=[nested]), timeout=10))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "too long" in e.value.details()
    assert server.proc.poll() is None, "the server died on a hostile pattern"
    # Python re syntax that PANOSETI clients use keeps working.
    call = stub.CaptureUblox(ublox_control_pb2.CaptureUbloxRequest(patterns=[r"(?P<c>TIM)-\w+"]),
                             timeout=10)
    first = next(iter(call))
    call.cancel()
    assert first.name == "TIM-TP"
    answers = []
    for path in ["/etc/shadow", "/etc/acheron-no-such-file", "/dev/pts/../../etc/passwd"]:
        bad = dict(cfg, device=path)
        with pytest.raises(grpc.RpcError) as e:
            stub.InitF9t(ublox_control_pb2.InitF9tRequest(f9t_config=ParseDict(bad, Struct()),
                                                          force_init=True), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not an allowed serial device" in e.value.details()
        answers.append(e.value.details().replace(path, "PATH"))
    assert len(set(answers)) == 1, "a forbidden path's reply must not depend on whether it exists"
    assert server.proc.poll() is None
    channel.close()
