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

from acheron.proto import ublox_control_pb2, ublox_control_pb2_grpc
from conftest import make_pki, acheron_binary

json5 = pytest.importorskip("json5", reason="Debian python3-json5 (scripts/install-deps.sh)")


def default_config():
    text = subprocess.run([str(acheron_binary()), "config", "default", "gnss"], check=True,
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
    sim = acheron_process("gnss", "sim", "--period", "50ms", ready_pattern=r"device (\S+)")
    server = acheron_process("gnss", "serve", "--bind", "127.0.0.1:0")
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


def wait_for_signal_handler(proc, signum, timeout=30.0):
    """Until proc handles signum: catches it or blocks it to wait for it (its
    SigCgt or SigBlk in /proc). A sanitized build under load takes longer than
    any fixed sleep to get there, and a signal before that kills it."""
    bit = 1 << (signum - 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}: {proc.stderr.read()}"
        with open(f"/proc/{proc.pid}/status") as f:
            masks = dict(line.split(":", 1) for line in f if line.startswith(("SigCgt", "SigBlk")))
        if (int(masks["SigCgt"], 16) | int(masks["SigBlk"], 16)) & bit:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {proc.pid} did not install a handler for signal {signum}")


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
    wait_for_signal_handler(idle, signal.SIGINT)
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


# ------------------------------------------------------------------ limits and security

def secure_stub(target, pki, cert=False, ca="ca.pem"):
    creds = grpc.ssl_channel_credentials(
        root_certificates=(pki / ca).read_bytes(),
        private_key=(pki / "client.key").read_bytes() if cert else None,
        certificate_chain=(pki / "client.pem").read_bytes() if cert else None)
    channel = grpc.secure_channel(target, creds)
    return channel, ublox_control_pb2_grpc.UbloxControlStub(channel)


def init_request(device):
    return ublox_control_pb2.InitF9tRequest(
        f9t_config=ParseDict(chip_request(default_config(), device), Struct()), force_init=True)


def test_tls_server_and_clients(acheron_process, tmp_path):
    pki = make_pki(tmp_path / "pki")
    sim = acheron_process("gnss", "sim", "--period", "50ms", ready_pattern=r"device (\S+)")
    device = sim.endpoint
    server = acheron_process("gnss", "serve", "--bind", "127.0.0.1:0", "--tls-cert",
                             pki / "server.pem", "--tls-key", pki / "server.key")
    assert server.ready.service == "gnss serve"
    channel, stub = secure_stub(server.endpoint, pki)
    r = stub.InitF9t(init_request(device), timeout=30)
    assert r.init_status == ublox_control_pb2.InitF9tResponse.SUCCESS
    channel.close()
    for make in (lambda: grpc.insecure_channel(server.endpoint),
                 lambda: secure_stub(server.endpoint, pki, ca="other_ca.pem")[0]):
        ch = make()
        with pytest.raises(grpc.RpcError) as e:
            ublox_control_pb2_grpc.UbloxControlStub(ch).InitF9t(init_request(device), timeout=3)
        assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        ch.close()
    exe = str(acheron_binary())
    ca = str(pki / "ca.pem")
    out = subprocess.run([exe, "gnss", "init", "--connect", server.endpoint, "--device", device,
                          "--tls-ca", ca], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "verified successfully" in out.stdout, out.stderr
    out = subprocess.run([exe, "gnss", "capture", "--connect", server.endpoint, "-p", "TIM",
                          "-n", "2", "--json", "--tls-ca", ca], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert [json.loads(line)["name"] for line in out.stdout.splitlines()] == ["TIM-TP"] * 2
    out = subprocess.run([exe, "gnss", "capture", "--connect", server.endpoint, "-n", "1",
                          "--duration", "3s"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 3, (out.stdout, out.stderr)  # plaintext: no answer
    assert server.stop() == 0


def test_tls_with_client_certificates(acheron_process, tmp_path):
    pki = make_pki(tmp_path / "pki")
    sim = acheron_process("gnss", "sim", "--period", "50ms", ready_pattern=r"device (\S+)")
    server = acheron_process("gnss", "serve", "--bind", "127.0.0.1:0", "--tls-cert",
                             pki / "server.pem", "--tls-key", pki / "server.key",
                             "--tls-client-ca", pki / "ca.pem")
    assert server.ready.service == "gnss serve"
    channel, stub = secure_stub(server.endpoint, pki, cert=False)
    with pytest.raises(grpc.RpcError) as e:
        stub.InitF9t(init_request(sim.endpoint), timeout=3)
    assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    channel.close()
    channel, stub = secure_stub(server.endpoint, pki, cert=True)
    r = stub.InitF9t(init_request(sim.endpoint), timeout=30)
    assert r.init_status == ublox_control_pb2.InitF9tResponse.SUCCESS
    channel.close()
    exe = str(acheron_binary())
    out = subprocess.run([exe, "gnss", "capture", "--connect", server.endpoint, "-n", "1",
                          "--tls-ca", pki / "ca.pem", "--tls-cert", pki / "client.pem",
                          "--tls-key", pki / "client.key"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr


def test_oversize_request_is_refused_and_the_server_serves_on(acheron_process):
    sim = acheron_process("gnss", "sim", "--period", "50ms", ready_pattern=r"device (\S+)")
    server = acheron_process("gnss", "serve", "--bind", "127.0.0.1:0", "--max-receive-bytes",
                             "16384")
    channel = grpc.insecure_channel(server.endpoint)
    stub = ublox_control_pb2_grpc.UbloxControlStub(channel)
    cfg = chip_request(default_config(), sim.endpoint)
    cfg["comment"] = "x" * 40000
    with pytest.raises(grpc.RpcError) as e:
        stub.InitF9t(ublox_control_pb2.InitF9tRequest(f9t_config=ParseDict(cfg, Struct()),
                                                      force_init=True), timeout=10)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    r = stub.InitF9t(init_request(sim.endpoint), timeout=30)
    assert r.init_status == ublox_control_pb2.InitF9tResponse.SUCCESS
    channel.close()


def test_serve_help_names_the_default_address_and_the_limits():
    out = subprocess.run([str(acheron_binary()), "gnss", "serve", "--help"], capture_output=True,
                         text=True, timeout=10).stdout
    assert "[::]:50051" in out and "every interface" in out
    for flag in ("--tls-cert", "--tls-key", "--tls-client-ca", "--max-threads",
                 "--max-streams-per-connection", "--max-receive-bytes"):
        assert flag in out
