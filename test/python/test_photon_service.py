"""`acheron photon serve` as ChAR0N clients use it: a RAT-PAC-like client,
a v1 client, malformed requests, resends, many clients, the Python client."""

import struct
import threading

import numpy as np
import pytest
import zmq

from acheron.photon import PhotonClient, PhotonError, isotropic_photons
from charon_wire import async_run_conversation, photon_frames, req

@pytest.fixture(scope="module")
def server():
    from conftest import Process

    p = Process(["photon", "serve", "--seed", "7", "--bind", "tcp://127.0.0.1:*", "--threads", "2"])
    yield p
    assert p.stop() == 0  # SIGTERM is a clean shutdown


def test_rat_pac_conversation(server):
    ep = server.endpoint
    assert req(ep, [b"PING"]) == [b"ACK"]
    assert req(ep, [b"RUN_BEGIN", b"output/run_1.root"]) == [b"ACK"]
    info = req(ep, [b"DETECTOR_INFO"])
    assert info[0] == b"DETECTOR_INFO" and len(info) == 5
    x, y, z = (np.frombuffer(info[i], "<f4") for i in (1, 2, 3))
    types = np.frombuffer(info[4], "<i4")
    assert len(x) == 400 and list(types[:3]) == [0, 1, 2]
    r = np.sqrt(x**2 + y**2 + z**2)
    assert np.allclose(r, r[0], rtol=1e-5)  # PMTs on one sphere
    for event_id, n in [(0, 2000), (1, 0), (2, 5000)]:
        reply = req(ep, photon_frames(event_id, n))
        assert reply[0] == b"SIM_COMPLETE" and len(reply) >= 12
        assert struct.unpack("<I", reply[1])[0] == event_id
        channels = np.frombuffer(reply[2], "<u4")
        flags = np.frombuffer(reply[11], "<u4")
        assert len(channels) == len(flags) == len(np.frombuffer(reply[10], "<f4"))
        if n == 0:
            assert len(channels) == 0
        else:
            assert len(channels) > 0 and channels.max() < 400
            assert np.all(flags & (1 << 2))  # SURFACE_DETECT
            assert np.all(flags & (1 << 10))  # the creator label is carried through
    assert req(ep, [b"RUN_END"]) == [b"ACK"]


def test_v1_client_gets_five_frame_reply(server):
    reply = req(server.endpoint, photon_frames(7, 3000, version=1))
    assert reply[0] == b"SIM_COMPLETE" and len(reply) == 5
    assert struct.unpack("<I", reply[1])[0] == 7
    assert len(np.frombuffer(reply[2], "<u4")) == len(np.frombuffer(reply[3], "<f4"))


def test_malformed_requests_get_error_replies_and_the_server_keeps_serving(server):
    ep = server.endpoint
    assert req(ep, [b"HELLO"]) == [b"UNKNOWN_REQUEST"]
    good = photon_frames(11, 10)
    assert req(ep, good[:6]) == [b"SIM_FAILED", struct.pack("<I", 11)]
    bad_len = list(good)
    bad_len[4] = b"\x00" * 7
    assert req(ep, bad_len)[0] == b"SIM_FAILED"
    mismatch = list(good)
    mismatch[1] = struct.pack("<II", 11, 9)
    assert req(ep, mismatch) == [b"SIM_FAILED", struct.pack("<I", 11)]
    assert req(ep, [b"PHOTONDATA"]) == [b"SIM_FAILED", b"\xff\xff\xff\xff"]
    # NaN photons are not simulated but the event is.
    nan = list(good)
    nan[2] = np.full(10, np.nan, "<f4").tobytes()
    assert req(ep, nan)[0] == b"SIM_COMPLETE"
    assert req(ep, [b"PING"]) == [b"ACK"]


def test_a_resent_request_is_simulated_once(server):
    client = PhotonClient(server.endpoint)
    before = client.stats()
    frames = photon_frames(4242, 20000, seed=5)
    first = req(server.endpoint, frames)
    second = req(server.endpoint, frames)  # a resend on a fresh socket
    assert first == second
    after = client.stats()
    assert after["events"] - before["events"] == 1
    assert after["duplicates"] - before["duplicates"] == 1
    assert sum(after["latency_ms"].values()) == after["requests"]


def test_many_concurrent_clients_lose_nothing(server):
    errors = []

    def run(k):
        try:
            for e in range(5):
                eid = 1000 * k + e
                reply = req(server.endpoint, photon_frames(eid, 3000, seed=eid))
                assert reply[0] == b"SIM_COMPLETE"
                assert struct.unpack("<I", reply[1])[0] == eid
        except Exception as exc:  # collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors


def test_python_client(server):
    client = PhotonClient(server.endpoint)
    assert client.ping()
    info = client.detector_info()
    assert len(info) == 400 and info.positions.shape == (400, 3)
    photons = isotropic_photons(20000, seed=1, wavelength=(400, 400))
    hits = client.simulate(photons, event_id=3)
    # ~30 % coverage x 25 % QE at 400 nm
    assert 0.05 < len(hits) / 20000 < 0.10
    assert hits.direction.shape == (len(hits), 3)
    records = hits.to_records()
    assert np.all(records["event"] == 3)
    many = client.simulate_many([isotropic_photons(5000, seed=s) for s in range(6)],
                                event_ids=range(100, 106), in_flight=3)
    assert [h.event_id for h in many] == list(range(100, 106))
    # Same photons, same event id, same seed: the same hits.
    again = PhotonClient(server.endpoint).simulate(photons, event_id=3)
    assert np.array_equal(again.channel, hits.channel) and np.array_equal(again.time, hits.time)
    # Inconsistent input is refused before anything is sent.
    bad = dict(photons)
    bad["wavelength"] = bad["wavelength"][:10]
    with pytest.raises(ValueError):
        client.simulate(bad)


def test_sim_failed_raises_photon_error(server):
    client = PhotonClient(server.endpoint)
    with pytest.raises(PhotonError):
        client._hits([zmq.Frame(b"SIM_FAILED"), zmq.Frame(struct.pack("<I", 5))], 5)


def test_ping_exit_codes(server, acheron_process):
    import subprocess

    from conftest import acheron_binary

    ok = subprocess.run([str(acheron_binary()), "ping", "--connect", server.endpoint, "--stats"],
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and '"role":"server"' in ok.stdout
    # Nothing listens on this port: exit code 3 (unavailable) after the timeout.
    dead = subprocess.run([str(acheron_binary()), "ping", "--connect", "tcp://127.0.0.1:9", "--timeout", "300ms"],
                          capture_output=True, text=True, timeout=30)
    assert dead.returncode == 3 and "within 300ms" in dead.stderr
    # The old spelling still works for a release, with a warning naming the new one.
    old = subprocess.run([str(acheron_binary()), "ping", "tcp://127.0.0.1:9", "--timeout-ms", "300"],
                         capture_output=True, text=True, timeout=30)
    assert old.returncode == 3
    assert "--timeout-ms is deprecated and will be removed; use --timeout 300ms" in old.stderr
    assert "use --connect tcp://127.0.0.1:9" in old.stderr


def test_async_mode_writes_runs_to_hdf5(tmp_path, acheron_process):
    h5py = pytest.importorskip("h5py")
    srv = acheron_process("photon", "serve", "--seed", "7", "--bind", "tcp://127.0.0.1:*", "--threads", "2",
                          "--async", "--outdir", tmp_path, "--events-per-basket", "3")
    ep = srv.endpoint
    path, offsets = async_run_conversation(ep, tmp_path, "myrun")
    # The same event in synchronous mode gives the same hits: batching does
    # not change the random streams.
    e2 = slice(offsets[2], offsets[3])
    sync = acheron_process("photon", "serve", "--seed", "7", "--bind", "tcp://127.0.0.1:*", "--threads", "1")
    reply = req(sync.endpoint, photon_frames(2, 2000, seed=2))
    with h5py.File(path, "r") as f:
        assert np.array_equal(np.frombuffer(reply[2], "<u4"), f["output/channel_id"][e2])
        assert np.array_equal(np.frombuffer(reply[10], "<f4"), f["output/time"][e2])


def test_curve_authentication(tmp_path, acheron_process):
    import subprocess

    from conftest import acheron_binary

    exe = str(acheron_binary())
    subprocess.run([exe, "keygen", tmp_path / "server"], check=True, capture_output=True)
    subprocess.run([exe, "keygen", tmp_path / "client"], check=True, capture_output=True)
    srv = acheron_process("photon", "serve", "--seed", "7", "--bind", "tcp://127.0.0.1:*", "--threads", "1",
                          "--curve-key", tmp_path / "server.key")
    server_pub = (tmp_path / "server.pub").read_text().strip()
    # A plain client gets nothing: the handshake never completes.
    assert not PhotonClient(srv.endpoint, timeout_ms=300, attempts=1).ping()
    secure = PhotonClient(srv.endpoint, curve_server_key=server_pub)
    assert secure.ping()
    assert len(secure.simulate(isotropic_photons(1000, seed=3), event_id=1)) > 0
    # The command-line client with key files.
    r = subprocess.run([exe, "photon", "simulate", "--connect", srv.endpoint, "--events", "2",
                        "--photons", "500", "--curve-key", tmp_path / "client.key",
                        "--server-key", tmp_path / "server.pub"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "2 events" in r.stdout


def test_simulate_command_with_a_photon_file(server, tmp_path):
    import subprocess

    from acheron.photon import save_photons
    from conftest import acheron_binary

    src = tmp_path / "photons.npy"
    save_photons(src, [isotropic_photons(3000, seed=1), isotropic_photons(1000, seed=2)],
                 event_ids=[17, 4])
    out = tmp_path / "hits.npy"
    r = subprocess.run([str(acheron_binary()), "photon", "simulate", "--connect", server.endpoint,
                        "--source", src, "--out", out], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "2 events, 4000 photons" in r.stdout
    hits = np.load(out)
    assert set(np.unique(hits["event"])) <= {17, 4} and len(hits) > 0
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros(3, "<f4"))
    r = subprocess.run([str(acheron_binary()), "photon", "simulate", "--connect", server.endpoint,
                        "--source", bad], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unexpected dtype" in r.stderr


def test_each_server_start_draws_a_fresh_seed_unless_given(acheron_process):
    """Two servers started without --seed use different seeds (printed and
    in STATS), so two RAT jobs on two servers never share random numbers; the
    same event then gets different hits. --seed makes a run reproducible."""
    servers = [acheron_process("photon", "serve", "--bind", "tcp://127.0.0.1:*", "--threads", "1")
               for _ in range(2)]
    seeds = [PhotonClient(s.endpoint).stats()["seed"] for s in servers]
    assert seeds[0] != seeds[1]
    photons = isotropic_photons(4000, seed=3, wavelength=(400, 400))
    a, b = (PhotonClient(s.endpoint).simulate(photons, event_id=0) for s in servers)
    assert not (len(a) == len(b) and np.array_equal(a.channel, b.channel)
                and np.array_equal(a.time, b.time))
    fixed = acheron_process("photon", "serve", "--seed", "12345", "--bind", "tcp://127.0.0.1:*",
                            "--threads", "1")
    assert PhotonClient(fixed.endpoint).stats()["seed"] == 12345


TRACK_DTYPE = np.dtype(
    [("event", "<u4"), ("photon", "<u4"), ("pos", "<f4", (3,)), ("dir", "<f4", (3,)),
     ("pol", "<f4", (3,)), ("wavelength", "<f4"), ("time", "<f4"), ("history", "<u4"),
     ("channel", "<i4"), ("boundaries", "<u4"), ("scatters", "<u4"), ("reemissions", "<u4")])


def test_propagate_writes_every_photons_end(tmp_path):
    """`acheron photon propagate` writes one record per input photon (the
    photon-by-photon comparison format): hits carry their channel and end on
    the photocathode's sphere, histories are terminal, counts add up, and the
    same seed reproduces the file."""
    import subprocess

    from acheron.photon import save_photons
    from conftest import acheron_binary

    src = tmp_path / "in.npy"
    save_photons(src, [isotropic_photons(5000, seed=2, wavelength=(400, 400)),
                       isotropic_photons(3000, seed=3, wavelength=(400, 400))],
                 event_ids=[7, 9])
    outs = []
    for name in ("a.npy", "b.npy"):
        out = tmp_path / name
        r = subprocess.run([str(acheron_binary()), "photon", "propagate", "--source", src,
                            "--out", out, "--threads", "2", "--seed", "4"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "8000 photons" in r.stdout and "casts/photon" in r.stdout
        outs.append(np.load(out))
    t = outs[0]
    assert t.dtype == TRACK_DTYPE and len(t) == 8000
    assert outs[0].tobytes() == outs[1].tobytes()
    assert list(np.unique(t["event"])) == [7, 9]
    assert np.array_equal(t["photon"][:5000], np.arange(5000))
    terminal = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3)
    assert np.all(t["history"] & terminal)
    hit = t["channel"] >= 0
    assert 0 < hit.sum() < len(t)
    assert np.all(t["history"][hit] & (1 << 2))
    assert np.all(t["boundaries"][hit] >= 1)
    assert np.all(t["channel"][hit] < 400)
    # Photons absorbed in the water never reached a boundary unless reflected first.
    bulk = (t["history"] & (1 << 1)) != 0
    assert np.all(t["channel"][bulk] == -1)
    assert np.array_equal(t["scatters"] > 0, (t["history"] & (1 << 4)) != 0)
