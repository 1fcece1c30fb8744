"""Load and abuse for DaqData (bench_abuse.py's target `daq`): `acheron daq
serve` with the simulator (rpc mode, two modules, 100 Hz) on a loopback TCP
port. Well-behaved clients make Ping, Status and short StreamImages calls
whose answers they check; hostile clients send malformed protobuf bytes
(raw gRPC calls without serializers), messages over the size limit, streams
they never read, uploads that stall, and requests the server must refuse."""

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import grpc
import grpc.aio
import numpy as np
from abuse_procs import stop_process
from google.protobuf import empty_pb2

from acheron.proto import daqdata_pb2, daqdata_pb2_grpc

MAX_MESSAGE = 1 << 20  # the server's max_receive_message_bytes here
MODULES = (1, 2)
SIM_INTERVAL = 0.01
TIMEOUT_S = 20.0
KINDS = ["malformed", "oversized", "slow", "upload", "bad", "malformed", "slow", "bad"]
SERVICE = "/daqdata.DaqData/"
STATUS = re.compile(r"(hp_io initialised|being configured); \d+ of 100 streams; \d+ images sent")
# (type, shape, bytes per pixel) of the simulator's img16 and ph256 frames
EXPECTED = {daqdata_pb2.PanoImage.MOVIE: ([32, 32], 2), daqdata_pb2.PanoImage.PULSE_HEIGHT: ([16, 16], 2)}


def config(tmp):
    return {
        "init_from_default": False,
        "default_hp_io_config_file": "",
        "unix_domain_socket": f"unix://{tmp}/daq.sock",
        "max_concurrent_rpcs": 100,
        "min_hp_io_update_interval_seconds": 0.001,
        "shutdown_grace_period": 2,
        "max_receive_message_bytes": MAX_MESSAGE,
        "upload_idle_timeout": 2,
        "acquisition_methods": {"uds": {"enabled": False}, "filesystem_poll": {"enabled": False},
                                "filesystem_pipe": {"enabled": False}, "rpc": {"enabled": True}},
        "allowed_data_roots": [str(tmp)],
        "simulate_daq_cfg": {
            "simulation_mode": "rpc", "sim_module_ids": list(MODULES), "movie_type": "img16",
            "ph_type": "ph256", "update_interval_seconds": SIM_INTERVAL,
            "source_data": {"real_module_id": 1, "movie_pff_path": "", "ph_pff_path": ""},
            "filesystem_cfg": {"sim_data_dir": f"{tmp}/sim",
                               "sim_run_dir_template": "module_{module_id}/obs_SIMULATE",
                               "daq_active_file": "module_{module_id}.daq-active"},
            "strategies": {"rpc": {}},
        },
    }


class DaqServer:
    def __init__(self, exe):
        self.tmp = tempfile.mkdtemp(prefix="abuse-daq", dir="/tmp")
        path = os.path.join(self.tmp, "server.json")
        with open(path, "w") as f:
            json.dump(config(self.tmp), f)
        self.p = subprocess.Popen([exe, "--log-level", "error", "daq", "serve", "--config", path,
                                   "--bind", "127.0.0.1:0"], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        self.target = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.p.stdout.readline()
            if not line and self.p.poll() is not None:
                break
            m = re.search(r"daq serve ready: tcp ([^\s,]+)", line)
            if m:
                self.target = m.group(1)
                break
        if not self.target:
            self.stop()
            raise RuntimeError("acheron daq serve did not start")
        with grpc.insecure_channel(self.target) as ch:
            r = daqdata_pb2_grpc.DaqDataStub(ch).InitHpIo(
                daqdata_pb2.InitHpIoRequest(simulate_daq=True, force=True, update_interval_seconds=SIM_INTERVAL),
                timeout=20)
            if not r.success:
                self.stop()
                raise RuntimeError(f"InitHpIo failed: {r.error_message}")

    def address(self):
        """What a hostile client process needs (picklable)."""
        return {"target": self.target}

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        stop_process(self.p)
        shutil.rmtree(self.tmp, ignore_errors=True)


def start(exe, args):
    return DaqServer(exe)


def check_images(images, module):
    """What is wrong with the images of one short stream (None: nothing):
    the module asked for, the simulator's shapes, frame numbers that
    increase per kind, both kinds."""
    last = {}
    for im in images:
        p = im.pano_image
        if p.module_id != module or p.type not in EXPECTED:
            return f"module {p.module_id} type {p.type} (asked for module {module})"
        shape, bpp = EXPECTED[p.type]
        if list(p.shape) != shape or p.bytes_per_pixel != bpp or len(p.image_array) != shape[0] * shape[1]:
            return f"shape {list(p.shape)}, {p.bytes_per_pixel} bytes per pixel, {len(p.image_array)} pixels"
        if p.type in last and p.frame_number <= last[p.type]:
            return f"type {p.type}: frame {p.frame_number} after {last[p.type]}"
        last[p.type] = p.frame_number
    return None if len(last) == 2 else f"only type {list(last)} in {len(images)} images"


async def good_clients(target, clients, requests):
    """`clients` channels make `requests` calls between them: Ping (two in
    five), Status (one in five), StreamImages of one module until it has
    given four images (two in five)."""
    ids = iter(range(requests))
    latencies, lost, wrong, errors = [], [], [], []

    async def one_client():
        async with grpc.aio.insecure_channel(target) as ch:
            stub = daqdata_pb2_grpc.DaqDataStub(ch)
            for n in ids:
                t0 = time.perf_counter()
                try:
                    if n % 5 in (0, 1):
                        r = await stub.Ping(empty_pb2.Empty(), timeout=TIMEOUT_S)
                        ok = isinstance(r, empty_pb2.Empty)
                    elif n % 5 == 2:
                        r = await stub.Status(empty_pb2.Empty(), timeout=TIMEOUT_S)
                        # "being configured" while an InitHpIo (a hostile one) runs
                        ok = r.hp_io_initialized and STATUS.match(r.message) is not None
                    else:
                        module = MODULES[n % len(MODULES)]
                        call = stub.StreamImages(daqdata_pb2.StreamImagesRequest(
                            stream_movie_data=True, stream_pulse_height_data=True, module_ids=[module]),
                            timeout=TIMEOUT_S)
                        images = []
                        async for im in call:
                            images.append(im)
                            if len(images) == 4:
                                break
                        call.cancel()
                        why = check_images(images, module) if len(images) == 4 else f"{len(images)} images"
                        ok = why is None
                    latencies.append(time.perf_counter() - t0)
                    if not ok:
                        wrong.append(n)
                        errors.append(f"wrong: {why if n % 5 > 2 else r}")
                except grpc.aio.AioRpcError as e:
                    lost.append(n)
                    errors.append(f"{e.code().name}: {e.details()}")

    t0 = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    return {"latencies": latencies, "lost": len(lost), "wrong": len(wrong), "wall": time.perf_counter() - t0,
            "refused": errors[:3]}


def run_good(server, args):
    return asyncio.run(good_clients(server.target, args.clients, args.requests))


def _upload_request(module, rng):
    image = daqdata_pb2.PanoImage(type=daqdata_pb2.PanoImage.MOVIE, shape=[32, 32], bytes_per_pixel=2,
                                  image_array=rng.integers(0, 4096, 1024).tolist(), module_id=module,
                                  file="abuse.pff")
    return daqdata_pb2.UploadImageRequest(pano_image=image)


def hostile(kind, server, stop, stop_at, counter):
    """One hostile client until stop is set (or stop_at, time.time(), at the
    latest); counts the messages it sent."""
    rng = np.random.default_rng(os.getpid())
    sent = 0
    running = lambda: not stop.is_set() and time.time() < stop_at  # noqa: E731
    target = server["target"]
    host, port = target.rsplit(":", 1)
    opts = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    ch = grpc.insecure_channel(target, options=opts)
    stub = daqdata_pb2_grpc.DaqDataStub(ch)
    held = []
    try:
        if kind == "malformed":
            # Bytes that are not the methods' protobuf messages, through raw
            # gRPC calls without serializers; now and then bytes that are
            # not HTTP/2 at all.
            unary = [ch.unary_unary(SERVICE + m) for m in ("Ping", "Status", "InitHpIo", "Nope")]
            stream = ch.unary_stream(SERVICE + "StreamImages")
            upload = ch.stream_unary(SERVICE + "UploadImages")
            while running():
                junk = rng.bytes(int(rng.integers(1, 300)))
                r = int(rng.integers(0, 3))
                try:
                    if r == 0:
                        unary[int(rng.integers(0, len(unary)))](junk, timeout=2)
                    elif r == 1:
                        for _ in stream(junk, timeout=0.5):
                            break
                    else:
                        upload(iter([junk, rng.bytes(50)]), timeout=2)
                except grpc.RpcError:
                    pass
                sent += 1
                if sent % 100 == 0:
                    with socket.create_connection((host, int(port)), timeout=1) as raw:
                        raw.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + rng.bytes(300) if sent % 200
                                    else rng.bytes(300))
                    sent += 1
                time.sleep(0.002)
        elif kind == "oversized":
            ping = ch.unary_unary(SERVICE + "Ping")
            while running():
                try:
                    if sent % 2:
                        ping(b"\0" * (MAX_MESSAGE + 1), timeout=5)
                    else:
                        big = _upload_request(99, rng)
                        big.pano_image.file = "x" * (MAX_MESSAGE + 1)
                        stub.UploadImages(iter([big]), timeout=5)
                except grpc.RpcError:
                    pass
                sent += 1
                time.sleep(0.05)
        elif kind == "slow":
            # Streams of every image at once, never read: their replies fill
            # the connection's flow-control window. Reopened now and then.
            while running():
                for c in held:
                    c.cancel()
                held = [stub.StreamImages(daqdata_pb2.StreamImagesRequest(
                    stream_movie_data=True, stream_pulse_height_data=True), timeout=30) for _ in range(4)]
                sent += 4
                t = time.time()
                while running() and time.time() - t < 3:
                    time.sleep(0.05)
        elif kind == "upload":
            # Uploads that send one image (for a module nobody reads), then
            # nothing: the idle timeout (2 s here) ends them.
            import threading
            gate = threading.Event()

            def stalled():
                yield _upload_request(99, rng)
                gate.wait(60)

            while running():
                futures = [stub.UploadImages.future(stalled(), timeout=30) for _ in range(4)]
                sent += 4
                for f in futures:
                    while running() and not f.done():
                        time.sleep(0.05)
                for f in futures:
                    f.cancel()
            gate.set()
        else:  # bad: requests the server must refuse
            while running():
                r = int(rng.integers(0, 6))
                try:
                    if r == 0:
                        req = daqdata_pb2.StreamImagesRequest()  # no stream flag
                    elif r == 1:
                        req = daqdata_pb2.StreamImagesRequest(stream_movie_data=True,
                                                              module_ids=list(range(100000)))
                    elif r == 2:
                        req = daqdata_pb2.StreamImagesRequest(stream_pulse_height_data=True,
                                                              update_interval_seconds=float(
                                                                  rng.choice([np.nan, -1, 1e300, np.inf])))
                    if r <= 2:
                        for _ in stub.StreamImages(req, timeout=0.3):
                            break
                    elif r == 3:
                        stub.InitHpIo(daqdata_pb2.InitHpIoRequest(data_dir="/etc", update_interval_seconds=0.1),
                                      timeout=2)
                    elif r == 4:
                        stub.InitHpIo(daqdata_pb2.InitHpIoRequest(simulate_daq=True,
                                                                  update_interval_seconds=float("nan")), timeout=2)
                    else:  # a reconfiguration without force while others stream
                        stub.InitHpIo(daqdata_pb2.InitHpIoRequest(simulate_daq=True, update_interval_seconds=0.01),
                                      timeout=2)
                except grpc.RpcError:
                    pass
                sent += 1
                time.sleep(0.005)
    finally:
        for c in held:
            c.cancel()
        ch.close()
        with counter.get_lock():
            counter.value += sent
