"""DaqData server integration tests: the real `acheron daq serve` process,
driven over TCP and its unix socket with the generated Python stubs and the
acheron.daq client (the calls PANOSETI's clients make)."""

import collections
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest

grpc = pytest.importorskip("grpc")

from conftest import make_pki, ROOT, acheron_binary  # noqa: E402

from acheron.proto import daqdata_pb2, daqdata_pb2_grpc  # noqa: E402
from acheron.daq import DaqDataClient, make_pano_image, parse_pano_image, wr_to_unix_decimal  # noqa: E402

SAMPLE_PH = (ROOT.parent / "shared" / "data" / "panoseti" /
             "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff")


def base_config(tmp: pathlib.Path, mode="rpc", modules=(224,), sim_interval=0.02, **over):
    cfg = {
        "init_from_default": False,
        "default_hp_io_config_file": "",
        "unix_domain_socket": f"unix://{tmp}/grpc_test.sock",
        "max_concurrent_rpcs": 100,
        "min_hp_io_update_interval_seconds": 0.001,
        "shutdown_grace_period": 5,
        "read_status_pipe_name": "read_status_2",
        "acquisition_methods": {
            "uds": {"enabled": mode == "uds", "data_products": ["img16", "ph256"],
                    "socket_path_template": f"{tmp}/hashpipe.dp_{{dp_name}}.sock",
                    "read_timeout": 10},
            "filesystem_poll": {"enabled": mode == "filesystem_poll"},
            "filesystem_pipe": {"enabled": mode == "filesystem_pipe"},
            "rpc": {"enabled": True},
        },
        # InitHpIo reads real data only below these (the default is /mnt/panoseti).
        "allowed_data_roots": [str(tmp)],
        "simulate_daq_cfg": {
            "simulation_mode": mode, "sim_module_ids": list(modules), "movie_type": "img16",
            "ph_type": "ph256", "update_interval_seconds": sim_interval,
            "source_data": {"real_module_id": 1, "movie_pff_path": "", "ph_pff_path": ""},
            "filesystem_cfg": {"sim_data_dir": f"{tmp}/sim",
                               "sim_run_dir_template": "module_{module_id}/obs_SIMULATE",
                               "daq_active_file": "module_{module_id}.daq-active"},
            "strategies": {"filesystem_poll": {"frames_per_pff": 20, "frame_limit": 1000},
                           "filesystem_pipe": {"frames_per_pff": 20, "frame_limit": 1000},
                           "uds": {"data_products": ["img16", "ph256"]}, "rpc": {}},
        },
        # Unused upstream keys are accepted.
        "max_read_queue_size": 50, "max_client_update_interval_seconds": 60,
        "max_reader_enqueue_timeouts": 2, "max_reader_dequeue_timeouts": 3, "reader_timeout": 5,
        "hp_io_stop_timeout": 5, "valid_data_products": ["img8", "img16", "ph256", "ph1024"],
    }
    for k, v in over.items():
        cfg[k] = v
    return cfg


class DaqServer:
    def __init__(self, proc, tmp, tcp):
        self.proc, self.tmp, self.tcp = proc, tmp, tcp
        self.unix = f"unix://{tmp}/grpc_test.sock"


@pytest.fixture
def tmpdir_short():
    d = pathlib.Path(tempfile.mkdtemp(prefix="daq", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daq_server(acheron_process, tmpdir_short):
    def start(cfg=None, args=(), **kw):
        cfg = cfg or base_config(tmpdir_short, **kw)
        path = tmpdir_short / "server.json"
        path.write_text(json.dumps(cfg))
        p = acheron_process("daq", "serve", "--config", path, "--bind", "127.0.0.1:0", "--bind",
                            cfg["unix_domain_socket"], *args, timeout=10)
        return DaqServer(p, tmpdir_short, p.ready["tcp"])
    return start


def stub(target):
    return daqdata_pb2_grpc.DaqDataStub(grpc.insecure_channel(target))


def collect(client, n, timeout=5.0, **kw):
    out, t0 = [], time.monotonic()
    for img in client.stream_images(timeout=timeout, **kw):
        out.append(img)
        if len(out) >= n or time.monotonic() - t0 > timeout:
            break
    return out


# ------------------------------------------------------------------ basics

def test_ping_and_reflection_on_tcp_and_unix(daq_server):
    s = daq_server()
    for target in (s.tcp, s.unix):
        with DaqDataClient(target) as c:
            assert c.ping()
            services = c.reflect_services()
            assert "daqdata.DaqData" in services
    assert os.path.exists(s.unix[len("unix://"):])


def test_status_reports_hp_io_and_streams(daq_server):
    s = daq_server()
    with DaqDataClient(s.unix) as c:
        st = c.status()
        assert st["hp_io_initialized"] is False
        assert st["message"].startswith("hp_io not initialised; 0 of 100 streams")
        assert c.init_sim()
        stream = stub(s.unix).StreamImages(daqdata_pb2.StreamImagesRequest(stream_movie_data=True))
        next(stream)
        st = c.status()
        assert st["hp_io_initialized"] is True
        assert st["message"].startswith("hp_io initialised; 1 of 100 streams")
        stream.cancel()


def test_stream_refusals_before_init(daq_server):
    s = daq_server()
    st = stub(s.unix)
    with pytest.raises(grpc.RpcError) as e:
        next(st.StreamImages(daqdata_pb2.StreamImagesRequest(stream_movie_data=False)))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == "At least one stream flag must be True."
    with pytest.raises(grpc.RpcError) as e:
        next(st.StreamImages(daqdata_pb2.StreamImagesRequest(stream_movie_data=True)))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert e.value.details() == "hp_io task is not valid."
    with pytest.raises(grpc.RpcError) as e:
        st.UploadImages(iter([daqdata_pb2.UploadImageRequest()]))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_init_argument_checks(daq_server, tmpdir_short):
    s = daq_server()
    st = stub(s.unix)
    with pytest.raises(grpc.RpcError) as e:
        st.InitHpIo(daqdata_pb2.InitHpIoRequest(simulate_daq=True, update_interval_seconds=0.0001))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == "update_interval_seconds is below server minimum."
    with pytest.raises(grpc.RpcError) as e:
        st.InitHpIo(daqdata_pb2.InitHpIoRequest(data_dir="/nonexistent/run",
                                                update_interval_seconds=0.1))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not exist" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        st.InitHpIo(daqdata_pb2.InitHpIoRequest(data_dir=str(tmpdir_short),
                                                update_interval_seconds=0.1))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert e.value.details() == "Real DAQ software is not active."


def test_malformed_request_bytes_get_invalid_argument_and_server_keeps_serving(daq_server):
    s = daq_server()
    ch = grpc.insecure_channel(s.unix)
    raw = ch.unary_stream("/daqdata.DaqData/StreamImages", request_serializer=lambda b: b,
                          response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        next(raw(b"\xff\xff\xff\xff\x0f", timeout=2))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with DaqDataClient(s.unix) as c:
        assert c.ping()
        assert c.init_sim()
        assert len(collect(c, 2, update_interval_seconds=0)) == 2


def test_unknown_simulation_mode_fails_with_status_ok(daq_server, tmpdir_short):
    cfg = base_config(tmpdir_short)
    cfg["simulate_daq_cfg"]["simulation_mode"] = "carrier_pigeon"
    s = daq_server(cfg)
    st = stub(s.unix)
    r = st.InitHpIo(daqdata_pb2.InitHpIoRequest(simulate_daq=True, update_interval_seconds=0.1))
    assert r.success is False
    assert "carrier_pigeon" in r.error_message


# ------------------------------------------------------------------ simulation modes

@pytest.mark.parametrize("mode", ["rpc", "uds", "filesystem_poll", "filesystem_pipe"])
def test_simulation_modes_stream_both_kinds(daq_server, mode):
    s = daq_server(mode=mode)
    with DaqDataClient(s.unix) as c:
        assert c.init_sim(hp_io_cfg={"update_interval_seconds": 0.01})
        images = collect(c, 12, update_interval_seconds=0.01)
    assert len(images) >= 10, mode
    kinds = {i["type"] for i in images}
    assert kinds == {"MOVIE", "PULSE_HEIGHT"}, mode
    for i in images:
        assert i["module_id"] == 224
        if i["type"] == "MOVIE":
            assert i["image_array"].shape == (32, 32) and i["image_array"].dtype == np.uint16
        else:
            assert i["image_array"].shape == (16, 16) and i["image_array"].dtype == np.int16
        # synthesized frames carry consistent White-Rabbit stamps
        assert abs(float(i["header"]["wr_unix_timestamp"]) - time.time()) < 30
    files = {i["file"] for i in images}
    if mode == "rpc":
        assert files <= {"rpc_sim_img16.pff", "rpc_sim_ph256.pff"}
    elif mode == "uds":
        assert files <= {"uds_img16", "uds_ph256"}
    else:
        assert all(f.startswith("sim.dp_") and f.endswith(".pff") for f in files)
    movie_frames = [i["frame_number"] for i in images if i["type"] == "MOVIE"]
    assert movie_frames == sorted(movie_frames) or mode.startswith("filesystem")


def test_sim_from_the_real_pulse_height_file(daq_server, tmpdir_short):
    if not SAMPLE_PH.exists():
        pytest.skip(f"sample data absent: {SAMPLE_PH}")
    cfg = base_config(tmpdir_short)
    cfg["simulate_daq_cfg"]["source_data"]["ph_pff_path"] = str(SAMPLE_PH)
    s = daq_server(cfg)
    with DaqDataClient(s.unix) as c:
        assert c.init_sim()
        images = collect(c, 8, stream_movie_data=False, update_interval_seconds=0)
    assert images and all(i["type"] == "PULSE_HEIGHT" for i in images)
    lows = [int(i["image_array"].min()) for i in images]
    assert min(lows) < 0  # signed pulse heights survive the uint32 wire format
    assert images[0]["header"]["wr_unix_timestamp"] == 0  # this file's WR clock is off


# ------------------------------------------------------------------ stream semantics

def test_type_filters_and_module_whitelist(daq_server):
    s = daq_server(modules=(1, 2, 3))
    with DaqDataClient(s.tcp) as c:
        assert c.init_sim()
        movie = collect(c, 10, stream_pulse_height_data=False, update_interval_seconds=0)
        ph = collect(c, 10, stream_movie_data=False, update_interval_seconds=0)
        only2 = collect(c, 10, module_ids=[2], update_interval_seconds=0)
        every = collect(c, 30, update_interval_seconds=0)
    assert {i["type"] for i in movie} == {"MOVIE"}
    assert {i["type"] for i in ph} == {"PULSE_HEIGHT"}
    assert {i["module_id"] for i in only2} == {2}
    assert {i["module_id"] for i in every} == {1, 2, 3}


def test_no_module_starves_at_a_slow_interval(daq_server):
    # Per tick every (module, kind) with a newer frame is sent: at 0.2 s per
    # tick, each of the three modules appears in every tick.
    s = daq_server(modules=(10, 11, 12), sim_interval=0.01)
    with DaqDataClient(s.unix) as c:
        assert c.init_sim(hp_io_cfg={"update_interval_seconds": 0.01})
        images = collect(c, 18, stream_pulse_height_data=False, update_interval_seconds=0.2)
    counts = {m: sum(1 for i in images if i["module_id"] == m) for m in (10, 11, 12)}
    assert all(v >= 5 for v in counts.values()), counts


def test_update_intervals_on_one_channel(daq_server):
    s = daq_server(sim_interval=0.01)
    with DaqDataClient(s.unix) as c:
        assert c.init_sim(hp_io_cfg={"update_interval_seconds": 0.01})
        counts = {}

        def run(interval):
            n, t0 = 0, time.monotonic()
            for _ in c.stream_images(stream_pulse_height_data=False,
                                     update_interval_seconds=interval, timeout=5):
                n += 1
                if time.monotonic() - t0 > 1.5:
                    break
            counts[interval] = n

        threads = [threading.Thread(target=run, args=(iv,)) for iv in (0.02, 0.25)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert 4 <= counts[0.25] <= 9, counts        # ~7 ticks in 1.5 s
    assert counts[0.02] >= 3 * counts[0.25], counts


def test_every_frame_at_fast_interval_has_few_gaps(daq_server):
    s = daq_server(sim_interval=0.005)
    with DaqDataClient(s.unix) as c:
        assert c.init_sim(hp_io_cfg={"update_interval_seconds": 0.001})
        images = collect(c, 100, stream_pulse_height_data=False, update_interval_seconds=0.001,
                         timeout=10)
    frames = [i["frame_number"] for i in images]
    assert len(frames) == 100
    jumps = sum(1 for a, b in zip(frames, frames[1:]) if b - a > 2)
    assert jumps < 10, frames


def test_resource_limit_and_slot_freed_on_cancel(daq_server, tmpdir_short):
    s = daq_server(base_config(tmpdir_short, max_concurrent_rpcs=3))
    with DaqDataClient(s.unix) as c:
        assert c.init_sim()
    ch = grpc.insecure_channel(s.unix)
    st = daqdata_pb2_grpc.DaqDataStub(ch)
    req = daqdata_pb2.StreamImagesRequest(stream_movie_data=True, update_interval_seconds=0.05)
    calls = [st.StreamImages(req) for _ in range(3)]
    for call in calls:
        next(call)  # each is live
    with pytest.raises(grpc.RpcError) as e:
        next(st.StreamImages(req))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert e.value.details() == "Max clients (3) reached."
    st.Ping(daqdata_pb2.google_dot_protobuf_dot_empty__pb2.Empty(), timeout=1)  # unary still works
    calls[0].cancel()
    deadline = time.monotonic() + 3
    while True:
        try:
            next(st.StreamImages(req))
            break
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert time.monotonic() < deadline, "the cancelled stream's slot was not freed"
            time.sleep(0.05)
    for call in calls[1:]:
        call.cancel()


def test_hundred_streams_then_the_next_is_refused(daq_server):
    s = daq_server()
    with DaqDataClient(s.unix) as c:
        assert c.init_sim()
    st = stub(s.unix)
    req = daqdata_pb2.StreamImagesRequest(stream_movie_data=True, update_interval_seconds=0.1)
    calls = [st.StreamImages(req) for _ in range(100)]
    for call in calls:
        next(call)
    with pytest.raises(grpc.RpcError) as e:
        next(st.StreamImages(req))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with DaqDataClient(s.unix) as c:
        assert c.ping()
    for call in calls:
        call.cancel()


# ------------------------------------------------------------------ writers

def test_init_refused_while_streaming_unless_forced(daq_server):
    s = daq_server()
    with DaqDataClient(s.unix) as c:
        assert c.init_sim()
        st = stub(s.unix)
        call = st.StreamImages(daqdata_pb2.StreamImagesRequest(stream_movie_data=True,
                                                               update_interval_seconds=0.05))
        next(call)
        with pytest.raises(grpc.RpcError) as e:
            st.InitHpIo(daqdata_pb2.InitHpIoRequest(simulate_daq=True, update_interval_seconds=0.1,
                                                    force=False))
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert e.value.details().startswith("Cannot modify server state: 1 clients are streaming: [")
        next(call)  # the reader is untouched
        assert c.init_sim(hp_io_cfg={"force": True})
        with pytest.raises(grpc.RpcError) as e:
            for _ in call:
                pass
        assert e.value.code() == grpc.StatusCode.CANCELLED
        assert "forced a reconfiguration" in e.value.details()
        assert len(collect(c, 3, update_interval_seconds=0)) == 3  # streaming works again


def test_unforced_inits_while_streaming_do_not_keep_others_from_streaming(daq_server):
    """InitHpIo without force is refused while a client streams; it used to
    wait in the InitHpIo queue first, and new streams were UNAVAILABLE
    meanwhile, so one client calling it over and over kept every other
    client from starting a stream."""
    s = daq_server()
    with DaqDataClient(s.unix) as c:
        assert c.init_sim()
    st = stub(s.unix)
    held = st.StreamImages(daqdata_pb2.StreamImagesRequest(stream_movie_data=True, update_interval_seconds=0.05))
    next(held)  # streaming from here on: every InitHpIo below is refused
    stop = threading.Event()
    init_codes = []

    def init_spam():
        own = stub(s.unix)
        while not stop.is_set():
            try:
                own.InitHpIo(daqdata_pb2.InitHpIoRequest(simulate_daq=True, update_interval_seconds=0.1),
                             timeout=5)
                init_codes.append("OK")
            except grpc.RpcError as e:
                init_codes.append(e.code().name)

    spammers = [threading.Thread(target=init_spam) for _ in range(6)]
    for t in spammers:
        t.start()
    stream_codes = []
    try:
        while len(init_codes) < 300 or len(stream_codes) < 100:
            call = st.StreamImages(daqdata_pb2.StreamImagesRequest(stream_movie_data=True), timeout=5)
            try:
                next(call)
                stream_codes.append("OK")
            except grpc.RpcError as e:
                stream_codes.append(e.code().name)
            call.cancel()
    finally:
        stop.set()
        for t in spammers:
            t.join(10)
        held.cancel()
    assert set(init_codes) == {"FAILED_PRECONDITION"}, collections.Counter(init_codes)
    assert set(stream_codes) == {"OK"}, collections.Counter(stream_codes)


def test_concurrent_inits_are_serialised_and_all_succeed(daq_server):
    s = daq_server()
    results = []

    def init():
        with DaqDataClient(s.unix) as c:
            results.append(c.init_sim(hp_io_cfg={"force": True}))

    threads = [threading.Thread(target=init) for _ in range(6)]
    for t in threads:
        t.start()
    # readers arriving meanwhile get UNAVAILABLE or a stream, never a crash
    st = stub(s.unix)
    seen = set()
    for _ in range(20):
        try:
            next(st.StreamImages(daqdata_pb2.StreamImagesRequest(stream_movie_data=True), timeout=2))
            seen.add("ok")
        except grpc.RpcError as e:
            seen.add(e.code())
        time.sleep(0.01)
    for t in threads:
        t.join()
    assert results == [True] * 6
    assert seen <= {"ok", grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.FAILED_PRECONDITION,
                    grpc.StatusCode.CANCELLED}
    with DaqDataClient(s.unix) as c:
        assert len(collect(c, 2, update_interval_seconds=0)) == 2


# ------------------------------------------------------------------ ingest paths

def test_upload_images_round_trip(daq_server):
    s = daq_server(modules=())  # simulation produces nothing: uploads only
    with DaqDataClient(s.unix) as c:
        assert c.init_sim()
        ph = (np.arange(256, dtype=np.int16) - 100).reshape(16, 16)
        mv = (np.arange(1024, dtype=np.uint16) * 3).reshape(32, 32)
        stamps = {"pkt_num": 1, "pkt_tai": (1754112728 + 37) % 1024, "pkt_nsec": 5,
                  "tv_sec": 1754112728, "tv_usec": 7}
        good = [make_pano_image(ph, dict(stamps, quabo_num=0), 7, "PULSE_HEIGHT", "up.pff", 1),
                make_pano_image(mv, {"quabo_0": stamps, "quabo_1": stamps, "quabo_2": stamps,
                                     "quabo_3": stamps}, 7, "MOVIE", "up.pff", 2)]
        bad = make_pano_image(np.zeros((8, 8), np.uint16), {}, 7, "MOVIE")  # unknown shape
        c.upload_images([bad] + good)
        got = collect(c, 2, update_interval_seconds=0)
    by_type = {i["type"]: i for i in got}
    assert np.array_equal(by_type["PULSE_HEIGHT"]["image_array"], ph)
    assert np.array_equal(by_type["MOVIE"]["image_array"], mv)
    assert by_type["PULSE_HEIGHT"]["header"]["wr_unix_timestamp"] == wr_to_unix_decimal(
        stamps["pkt_tai"], 5, stamps["tv_sec"])
    assert by_type["MOVIE"]["frame_number"] == 2 and by_type["MOVIE"]["module_id"] == 7


def hashpipe_record(module_id, header: bytes, pixels: bytes) -> bytes:
    return module_id.to_bytes(2, "big") + header + b"*" + pixels


def test_hashpipe_socket_stream_with_the_real_file(daq_server, tmpdir_short):
    if not SAMPLE_PH.exists():
        pytest.skip(f"sample data absent: {SAMPLE_PH}")
    cfg = base_config(tmpdir_short, mode="uds", modules=())
    # a stale socket file from an earlier run is replaced
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmpdir_short / "hashpipe.dp_ph256.sock"))
    stale.close()
    s = daq_server(cfg)
    with DaqDataClient(s.unix) as c:
        assert c.init_sim()
        data = SAMPLE_PH.read_bytes()
        frame = 636
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(tmpdir_short / "hashpipe.dp_ph256.sock"))
        received = []

        def stream():
            for img in c.stream_images(stream_movie_data=False, update_interval_seconds=0,
                                       timeout=5):
                received.append(img)
                if img["frame_number"] == 87:
                    break

        t = threading.Thread(target=stream)
        t.start()
        time.sleep(0.3)
        for k in range(88):  # one frame every 10 ms, split across writes
            rec = hashpipe_record(254, data[k * frame:k * frame + 123],
                                  data[k * frame + 124:(k + 1) * frame])
            sock.sendall(rec[:50])
            sock.sendall(rec[50:])
            time.sleep(0.01)
        t.join(10)
        sock.close()
    assert received and received[-1]["frame_number"] == 87
    assert all(i["module_id"] == 254 and i["file"] == "uds_ph256" for i in received)
    assert min(int(i["image_array"].min()) for i in received) < 0


@pytest.fixture
def fake_hashpipe(tmpdir_short):
    """A process named exactly `hashpipe` (InitHpIo's real-DAQ check)."""
    exe = tmpdir_short / "hashpipe"
    shutil.copy("/bin/sleep", exe)
    p = subprocess.Popen([str(exe), "30"])
    yield p
    p.kill()
    p.wait()


@pytest.mark.parametrize("method", ["filesystem_poll", "filesystem_pipe"])
def test_real_run_directory(daq_server, tmpdir_short, fake_hashpipe, method):
    """A Hashpipe-like writer appends frames to the newest obs_* run of
    module_1; the server follows the newest complete frame."""
    cfg = base_config(tmpdir_short, mode=method)
    s = daq_server(cfg)
    data_dir = tmpdir_short / "data"
    old = data_dir / "module_1" / "obs_Lick.start_2024-01-01T00:00:00Z.runtype_sci-data.pffd"
    run = data_dir / "module_1" / "obs_Lick.start_2025-08-02T05:31:36Z.runtype_sci-data.pffd"
    old.mkdir(parents=True)
    (old / "start_2024-01-01T00:00:00Z.dp_img16.bpp_2.module_1.seqno_0.pff").write_bytes(b"")
    time.sleep(0.02)
    run.mkdir(parents=True)
    pff = run / "start_2025-08-02T05:31:36Z.dp_ph256.bpp_2.module_1.seqno_0.pff"
    fifo = run / "read_status_2"
    if method == "filesystem_pipe":
        os.mkfifo(fifo)
    source = SAMPLE_PH.read_bytes() if SAMPLE_PH.exists() else None
    with DaqDataClient(s.unix) as c:
        assert c.init_hp_io(hp_io_cfg={"data_dir": str(data_dir), "update_interval_seconds": 0.01,
                                       "force": True})
        received = []

        def stream():
            for img in c.stream_images(update_interval_seconds=0, timeout=6):
                received.append(img)
                if len(received) >= 5:
                    break

        t = threading.Thread(target=stream)
        t.start()
        time.sleep(0.3)
        pipe_fd = None
        with open(pff, "ab") as f:
            for k in range(30):
                if source:
                    f.write(source[k * 636:(k + 1) * 636])
                else:
                    f.write(b'{ "quabo_num": 0 }\n\n*' + bytes(512))
                f.flush()
                if method == "filesystem_pipe":
                    if pipe_fd is None:
                        try:
                            pipe_fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                        except OSError:
                            pass
                    if pipe_fd is not None:
                        os.write(pipe_fd, b"ph256     ")
                time.sleep(0.03)
                if not t.is_alive():
                    break
        if pipe_fd is not None:
            os.close(pipe_fd)
        t.join(8)
    assert len(received) >= 5
    assert all(i["module_id"] == 1 and i["type"] == "PULSE_HEIGHT" for i in received)
    assert all(i["file"] == pff.name for i in received)
    frames = [i["frame_number"] for i in received]
    assert frames == sorted(frames) and len(set(frames)) == len(frames)


# ------------------------------------------------------------------ shutdown and CLI

def test_sigterm_ends_streams_and_removes_the_socket(daq_server):
    s = daq_server()
    with DaqDataClient(s.unix) as c:
        assert c.init_sim()
    st = stub(s.unix)
    call = st.StreamImages(daqdata_pb2.StreamImagesRequest(stream_movie_data=True,
                                                           stream_pulse_height_data=True,
                                                           update_interval_seconds=0.1))
    next(call)
    t0 = time.monotonic()
    s.proc.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(grpc.RpcError) as e:
        for _ in call:
            pass
    assert e.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    assert s.proc.proc.wait(5) == 0
    assert time.monotonic() - t0 < 5
    assert not os.path.exists(s.unix[len("unix://"):])


def test_default_boot_and_cli_stream_writes_pff(acheron_process, tmpdir_short):
    sock = f"unix://{tmpdir_short}/boot.sock"
    p = acheron_process("daq", "serve", "--bind", sock)
    bin_ = str(acheron_binary())
    r = subprocess.run([bin_, "daq", "ping", "--connect", sock], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    out = tmpdir_short / "frames"
    r = subprocess.run([bin_, "daq", "stream", "--connect", sock, "--count", "8", "--outdir", str(out)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert "received 8 images" in r.stdout
    files = sorted(out.iterdir())
    assert any(".dp_img16." in f.name for f in files) and any(".dp_ph256." in f.name for f in files)
    for f in files:
        size = {"img16": 2540, "ph256": 636}[f.name.split(".dp_")[1].split(".")[0]]
        assert f.stat().st_size % size == 0 and f.stat().st_size > 0
        assert f.read_bytes()[:1] == b"{"
    r = subprocess.run([bin_, "daq", "init", "--connect", sock, "--simulate", "--interval", "10us"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "below server minimum" in r.stderr
    assert p.stop() == 0


def test_viewer_saves_a_figure_headless(daq_server, tmpdir_short):
    pytest.importorskip("matplotlib")
    s = daq_server(modules=(3,), sim_interval=0.01)
    with DaqDataClient(s.unix) as c:
        assert c.init_sim(hp_io_cfg={"update_interval_seconds": 0.01})
    out = tmpdir_short / "viewer.png"
    env = dict(os.environ, MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-m", "acheron.daq_viewer", "--connect", s.unix, "--module", "3",
                        "--interval", "0.01", "--save", str(out), "--images", "10"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert "10 images" in r.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_client_accepts_a_panoseti_daq_config(daq_server, tmpdir_short):
    s = daq_server()
    cfg = tmpdir_short / "daq_config.json"
    cfg.write_text(json.dumps({"daq_nodes": [{"ip_addr": s.unix, "data_dir": "x"},
                                             {"ip_addr": s.tcp}]}))
    with DaqDataClient(str(cfg)) as c:
        assert c.get_valid_daq_hosts() == [s.unix, s.tcp]
    with pytest.raises(ValueError, match="daq_nodes is empty"):
        DaqDataClient({"daq_nodes": []})
    with pytest.raises(ValueError, match="does not have an 'ip_addr' key"):
        DaqDataClient({"daq_nodes": [{"data_dir": "x"}]})


def test_merged_servers_and_one_stopping(acheron_process):
    dirs = [pathlib.Path(tempfile.mkdtemp(prefix="daqm", dir="/tmp")) for _ in range(2)]
    try:
        servers = []
        for i, d in enumerate(dirs):
            cfg = base_config(d, modules=(200 + i,), sim_interval=0.01)
            (d / "server.json").write_text(json.dumps(cfg))
            servers.append(acheron_process("daq", "serve", "--config", d / "server.json",
                                           "--bind", f"unix://{d}/grpc_test.sock"))
        targets = [f"unix://{d}/grpc_test.sock" for d in dirs]
        with DaqDataClient(targets) as c:
            assert c.init_sim(hp_io_cfg={"update_interval_seconds": 0.01})
            seen, after_stop = set(), set()
            stopped = False
            t0 = time.monotonic()
            for img in c.stream_images(update_interval_seconds=0.01, timeout=10):
                (after_stop if stopped else seen).add(img["module_id"])
                if not stopped and seen == {200, 201}:
                    assert servers[0].stop() == 0  # its stream ends cleanly (CANCELLED)
                    stopped = True
                    t_stop = time.monotonic()
                elif stopped and time.monotonic() - t_stop > 0.5:
                    break
                assert time.monotonic() - t0 < 8
        assert seen == {200, 201}
        assert 201 in after_stop  # the other server keeps streaming
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ limits and security

def wait_for(predicate, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def active_uploads(client) -> int:
    import re
    return int(re.search(r"(\d+) of \d+ uploads", client.status()["message"]).group(1))


def idle_requests(stop: threading.Event):
    """An UploadImages request stream that sends nothing until stop is set."""
    stop.wait(30)
    return
    yield  # a generator


def pulse_height_image(module_id, frame=0):
    ph = (np.arange(256, dtype=np.int16) - 100).reshape(16, 16)
    t = int(time.time())
    stamps = {"quabo_num": 0, "pkt_num": 1, "pkt_tai": (t + 37) % 1024, "pkt_nsec": 5,
              "tv_sec": t, "tv_usec": 7}
    return make_pano_image(ph, stamps, module_id, "PULSE_HEIGHT", "up.pff", frame)


def test_an_idle_uploader_blocks_no_other_and_uploads_are_capped(daq_server, tmpdir_short):
    """An uploader that opens UploadImages and sends nothing used to hold the
    one upload slot: every other uploader waited behind it for ever."""
    s = daq_server(base_config(tmpdir_short, modules=(), max_concurrent_uploads=2))
    st = stub(s.unix)
    stop = threading.Event()
    try:
        with DaqDataClient(s.unix) as c:
            assert c.init_sim()
            idle = st.UploadImages.future(idle_requests(stop), timeout=30)
            wait_for(lambda: active_uploads(c) == 1, what="the idle upload")
            got = []

            def read():
                for img in c.stream_images(update_interval_seconds=0, timeout=10):
                    if img["module_id"] == 9:
                        got.append(img)
                        break

            t = threading.Thread(target=read)
            t.start()
            wait_for(lambda: "; 1 of 100 streams" in c.status()["message"], what="the reader")
            c.upload_images([pulse_height_image(9, 1), pulse_height_image(9, 2)], timeout=10)
            t.join(10)
            assert got and got[0]["type"] == "PULSE_HEIGHT", "the second uploader's images did not arrive"
            # the second upload's call ends on the server just after its client has the answer
            wait_for(lambda: active_uploads(c) == 1, what="the second upload to end")
            # Two uploads at once; a third is refused while they run.
            idle2 = st.UploadImages.future(idle_requests(stop), timeout=30)
            wait_for(lambda: active_uploads(c) == 2, what="the second idle upload")
            with pytest.raises(grpc.RpcError) as e:
                c.upload_images([pulse_height_image(9)], timeout=10)
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert e.value.details() == "Max uploaders (2) reached."
            stop.set()
            idle.result(timeout=10)
            idle2.result(timeout=10)
            wait_for(lambda: active_uploads(c) == 0, what="the uploads to end")
            c.upload_images([pulse_height_image(9)], timeout=10)
    finally:
        stop.set()


def test_an_upload_without_messages_ends_after_the_idle_timeout(daq_server, tmpdir_short):
    s = daq_server(base_config(tmpdir_short, modules=(), max_concurrent_uploads=1,
                               upload_idle_timeout=0.5))
    st = stub(s.unix)
    stop = threading.Event()
    try:
        with DaqDataClient(s.unix) as c:
            assert c.init_sim()
            t0 = time.monotonic()
            idle = st.UploadImages.future(idle_requests(stop), timeout=30)
            with pytest.raises(grpc.RpcError) as e:
                idle.result(timeout=10)
            assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "upload_idle_timeout" in e.value.details()
            assert 0.4 < time.monotonic() - t0 < 8
            wait_for(lambda: active_uploads(c) == 0, what="the slot to be freed")
            c.upload_images([pulse_height_image(4)], timeout=10)  # the one slot is free again
    finally:
        stop.set()


def test_an_oversize_message_is_refused_and_the_server_serves_on(daq_server, tmpdir_short):
    s = daq_server(base_config(tmpdir_short, modules=(), max_receive_message_bytes=65536))
    with DaqDataClient(s.unix) as c:
        assert c.init_sim()
        big = pulse_height_image(5)
        big.header["note"] = "x" * 100_000
        with pytest.raises(grpc.RpcError) as e:
            c.upload_images([big], timeout=10)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert c.ping(timeout=2)
        got = []

        def read():
            for img in c.stream_images(update_interval_seconds=0, timeout=10):
                got.append(img)
                break

        t = threading.Thread(target=read)
        t.start()
        wait_for(lambda: "; 1 of 100 streams" in c.status()["message"], what="the reader")
        c.upload_images([pulse_height_image(5)], timeout=10)
        t.join(10)
        assert got and got[0]["module_id"] == 5


def test_data_dir_is_confined_to_the_allowed_roots(daq_server, tmpdir_short, fake_hashpipe):
    """InitHpIo with real data reads only below allowed_data_roots (here the
    --allow-data-root flag); `..`, symlinks out and paths elsewhere get one
    answer whether or not they exist."""
    root = tmpdir_short / "data_root"
    (root / "module_1").mkdir(parents=True)
    outside = tmpdir_short / "outside"
    outside.mkdir()
    (root / "link_out").symlink_to(outside)
    s = daq_server(base_config(tmpdir_short, mode="filesystem_poll"),
                   args=("--allow-data-root", str(root)))
    st = stub(s.unix)
    answers = set()
    for path in ["/etc", "/nonexistent/run", str(outside), f"{root}/../outside",
                 str(root / "link_out"), str(root / "missing"), str(tmpdir_short)]:
        with pytest.raises(grpc.RpcError) as e:
            st.InitHpIo(daqdata_pb2.InitHpIoRequest(data_dir=path, update_interval_seconds=0.1,
                                                    force=True), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, path
        assert "does not exist" in e.value.details()  # what upstream clients check
        answers.add(e.value.details().replace(path, "PATH"))
    assert len(answers) == 1, answers
    r = st.InitHpIo(daqdata_pb2.InitHpIoRequest(data_dir=str(root), update_interval_seconds=0.1,
                                                force=True), timeout=10)
    assert r.success, r.error_message
    assert s.proc.proc.poll() is None


def test_tls_on_tcp(daq_server, tmpdir_short):
    pki = make_pki(tmpdir_short / "pki")
    s = daq_server(args=("--tls-cert", pki / "server.pem", "--tls-key", pki / "server.key"))
    assert s.proc.ready.service == "daq serve"  # TLS itself is checked by the clients below
    ca, other = str(pki / "ca.pem"), str(pki / "other_ca.pem")
    with DaqDataClient(s.tcp, tls_ca=ca) as c:
        assert c.ping(timeout=5)
        assert c.init_sim()
        assert len(collect(c, 3, update_interval_seconds=0)) == 3
    with DaqDataClient(s.tcp) as c:
        assert not c.ping(timeout=1)  # plaintext
    with DaqDataClient(s.tcp, tls_ca=other) as c:
        assert not c.ping(timeout=1)  # a CA that did not sign the server's certificate
    with DaqDataClient(s.unix, tls_ca=ca) as c:
        assert c.ping(timeout=2)  # the unix socket stays plaintext
    bin_ = str(acheron_binary())

    def cli(*args):
        return subprocess.run([bin_, "daq", *args], capture_output=True, text=True, timeout=20)

    assert cli("ping", "--connect", s.tcp, "--tls-ca", ca, "--timeout", "5s").returncode == 0
    assert cli("ping", "--connect", s.tcp, "--timeout", "1s").returncode == 3
    assert cli("ping", "--connect", s.tcp, "--tls-ca", other, "--timeout", "1s").returncode == 3
    r = cli("stream", "--connect", s.tcp, "--tls-ca", ca, "--count", "3")
    assert r.returncode == 0 and "received 3 images" in r.stdout, r.stderr
    r = cli("init", "--connect", s.tcp, "--tls-ca", ca, "--simulate", "--force")
    assert r.returncode == 0, r.stderr


def test_tls_with_client_certificates(daq_server, tmpdir_short):
    pki = make_pki(tmpdir_short / "pki")
    s = daq_server(args=("--tls-cert", pki / "server.pem", "--tls-key", pki / "server.key",
                         "--tls-client-ca", pki / "ca.pem"))
    assert s.proc.ready.service == "daq serve"  # the clients below check the certificates
    ca, cert, key = str(pki / "ca.pem"), str(pki / "client.pem"), str(pki / "client.key")
    with DaqDataClient(s.tcp, tls_ca=ca) as c:
        assert not c.ping(timeout=1)  # no client certificate
    with DaqDataClient(s.tcp, tls_ca=ca, tls_cert=str(pki / "other_ca.pem"),
                       tls_key=str(pki / "other.key")) as c:
        assert not c.ping(timeout=1)  # one the client CA did not sign
    with DaqDataClient(s.tcp, tls_ca=ca, tls_cert=cert, tls_key=key) as c:
        assert c.ping(timeout=5)
        assert c.init_sim()
    bin_ = str(acheron_binary())
    r = subprocess.run([bin_, "daq", "ping", "--connect", s.tcp, "--tls-ca", ca, "--tls-cert", cert,
                        "--tls-key", key, "--timeout", "5s"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([bin_, "daq", "ping", "--connect", s.tcp, "--tls-ca", ca, "--timeout", "1s"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 3


def test_serve_help_names_the_default_address_and_the_ready_line_the_bound_one(acheron_process,
                                                                             tmpdir_short):
    bin_ = str(acheron_binary())
    help_text = subprocess.run([bin_, "daq", "serve", "--help"], capture_output=True, text=True,
                               timeout=10).stdout
    assert "[::]:50051" in help_text and "every interface" in help_text
    p = acheron_process("daq", "serve", "--bind", f"unix://{tmpdir_short}/b.sock")
    assert p.ready.service == "daq serve"
    assert p.ready.endpoints == {"unix": f"unix://{tmpdir_short}/b.sock"}


def test_reflection_streams_are_bounded_by_the_thread_quota(daq_server, tmpdir_short):
    """Server reflection is the one synchronous service: each open stream
    holds a gRPC thread. grpc_max_threads bounds them; the DaqData methods
    and the health service use no such thread and keep answering."""
    s = daq_server(base_config(tmpdir_short, grpc_max_threads=3))
    ch = grpc.insecure_channel(s.unix)
    reflect = ch.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)
    stop = threading.Event()

    def requests():
        yield b"\x3a\x00"  # list_services
        stop.wait(30)

    calls = []
    try:
        for _ in range(6):
            call = reflect(requests(), timeout=30)
            try:
                next(call)
                calls.append(call)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                break
        assert len(calls) == 2  # grpc_max_threads - 1: one thread stays to take calls
        health = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda b: b,
                                response_deserializer=lambda b: b)
        assert health(b"\x0a\x0fdaqdata.DaqData", timeout=5) == b"\x08\x01"  # SERVING
        with DaqDataClient(s.unix) as c:
            assert c.ping(timeout=2)
            assert c.init_sim()
            assert len(collect(c, 2, update_interval_seconds=0)) == 2
    finally:
        stop.set()
        for call in calls:
            call.cancel()
        ch.close()
