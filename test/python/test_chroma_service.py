"""The chroma-server front as chroma-server's clients use it: one ROOT
ChromaPhotonList per request on a REQ socket, against a real `acheron photon
serve --chroma-bind` and a real `acheron broker --chroma-bind` with two
`acheron photon worker` processes, all on loopback with ephemeral ports.

Checked: the detected photons come back in the client's framing; every
request that cannot be served (malformed, truncated, another class, NaN, too
many photons, too many bytes) gets the error reply or, over the byte limit,
a dropped connection, and the next good request is served; many concurrent
clients are all answered; the chroma and ChAR0N fronts of one server give
the same hits for the same photons and event id; and, where ROOT is
importable, a PyROOT client written the way chroma-server's serialize.py is
gets its hits.
"""

import re
import struct
import threading

import numpy as np
import pytest
import zmq

from acheron import chroma
from acheron.chroma import ChromaClient, ChromaServerError, Framing, Header
from acheron.photon import PhotonClient

from chroma_layout import build
from conftest import READY, Process

CTX = zmq.Context.instance()
MAX_PHOTONS = 20_000
# Holds MAX_PHOTONS in either framing with room to spare, so lists a little
# over the photon limit still reach the decoder (and get the error reply).
MAX_BYTES = 2 * chroma.encoded_size(MAX_PHOTONS, Framing.MESSAGE)
CHROMA_OPTIONS = ["--chroma-bind", "tcp://127.0.0.1:*", "--chroma-max-photons", MAX_PHOTONS,
                  "--chroma-max-bytes", MAX_BYTES]


def burst(n: int, seed: int) -> chroma.PhotonList:
    """n photons from the detector's centre in random directions, 380-480 nm,
    polarisations perpendicular to the directions."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1)[:, None]
    pol = np.cross(d, [0.0, 0.0, 1.0])
    pol /= np.maximum(np.linalg.norm(pol, axis=1), 1e-6)[:, None]
    zeros = np.zeros(n)
    return chroma.PhotonList(x=zeros, y=zeros, z=zeros, px=d[:, 0], py=d[:, 1], pz=d[:, 2],
                             polx=pol[:, 0], poly=pol[:, 1], polz=pol[:, 2], t=zeros + 1.0,
                             wavelength=rng.uniform(380, 480, n), pmtid=np.full(n, -1))


def call(endpoint: str, message, timeout_ms: int = 30000):
    """One chroma-server client call: a new REQ socket, one request, one
    reply (None if none came within the timeout). `message` is bytes or a
    list of frames."""
    s = CTX.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    try:
        s.send_multipart(message if isinstance(message, list) else [message])
        if not s.poll(timeout_ms, zmq.POLLIN):
            return None
        reply = s.recv_multipart()
        assert len(reply) == 1, "a chroma reply is one frame"
        return reply[0]
    finally:
        s.close()


def simulate(endpoint: str, photons, framing=Framing.BUFFER, event_id=0):
    reply = call(endpoint, chroma.encode(photons, Header(framing=framing, unique_id=event_id)))
    assert reply is not None, "no reply"
    return chroma.decode(reply)


def with_nan(photons: chroma.PhotonList) -> bytes:
    """The list's bytes with x[0] replaced by a NaN (the encoder refuses
    to write one): x[0] follows 41 bytes of object header and the vector's
    10-byte header."""
    data = bytearray(chroma.encode(photons))
    data[51:55] = struct.pack(">f", float("nan"))
    return bytes(data)


# ------------------------------------------------------------------ processes

def start(args, ready=READY):
    """A real `acheron` process, by default ready at its ready line."""
    return Process(args, ready_pattern=ready)


@pytest.fixture(scope="module")
def serve():
    """One `photon serve` with both fronts: (chroma endpoint, ChAR0N endpoint, process)."""
    p = start(["--log-level", "warn", "photon", "serve", "--seed", "7", "--threads", 1, "--concurrent", 2,
               "--bind", "tcp://127.0.0.1:*"] + CHROMA_OPTIONS)
    yield p.ready["chroma"], p.ready["charon"], p
    assert p.stop() == 0


@pytest.fixture(scope="module")
def broker():
    """`acheron broker` with two `photon worker` processes: (chroma endpoint,
    ChAR0N frontend, broker process)."""
    b = start(["--log-level", "warn", "broker", "--bind", "tcp://127.0.0.1:*",
               "--worker-bind", "tcp://127.0.0.1:*"] + CHROMA_OPTIONS)
    front, back = b.ready["client"], b.ready["worker"]
    workers = [start(["--log-level", "warn", "photon", "worker", "--seed", "7", "--connect", back,
                      "--threads", 1], None) for _ in range(2)]
    try:
        client = PhotonClient(front, timeout_ms=2000)
        wait = threading.Event()
        for _ in range(300):
            s = client.stats()
            if s["workers"] == 2 and s["workers_probing"] == 0:
                break
            wait.wait(0.1)
        else:
            raise AssertionError(f"workers did not register: {client.stats()}")
        yield b.ready["chroma"], front, b
    finally:
        for w in workers:
            w.stop()
        b.stop()


@pytest.fixture(params=["serve", "broker"])
def front(request):
    """The chroma endpoint and ChAR0N endpoint of either front."""
    chroma_ep, charon_ep, _ = request.getfixturevalue(request.param)
    return request.param, chroma_ep, charon_ep


def channel_positions(charon_endpoint) -> np.ndarray:
    return PhotonClient(charon_endpoint, timeout_ms=10000).detector_info().positions


# ---------------------------------------------------------------------- tests

@pytest.mark.parametrize("framing", list(Framing))
def test_detected_photons_come_back_in_the_clients_framing(front, framing):
    kind, chroma_ep, charon_ep = front
    photons = burst(5000, 1)
    detected, header = simulate(chroma_ep, photons, framing, event_id=5)
    assert header.framing is framing
    assert header.unique_id == 5  # the event id travels back
    assert 20 < len(detected) < len(photons)
    positions = channel_positions(charon_ep)
    assert ((detected.pmtid >= 0) & (detected.pmtid < len(positions))).all()
    assert (detected.t > 1.0).all()  # input time plus the flight
    assert np.isin(detected.wavelength, photons.wavelength).all()
    assert np.allclose(np.linalg.norm(np.stack([detected.px, detected.py, detected.pz], 1), axis=1),
                       1, atol=1e-5)
    at = positions[detected.pmtid]
    offset = np.linalg.norm(np.stack([detected.x, detected.y, detected.z], 1) - at, axis=1)
    if kind == "serve":
        # The true final positions: on the PMT, near its placement.
        assert (offset < 300).all() and offset.max() > 1
    else:
        # SIM_COMPLETE has no positions: the broker gives the channel's.
        assert (offset == 0).all()
    # An empty list is answered with an empty list.
    empty, header = simulate(chroma_ep, chroma.PhotonList(), framing)
    assert len(empty) == 0 and header.framing is framing


def test_what_cannot_be_served_gets_the_error_reply_and_the_next_list_is_served(front):
    kind, chroma_ep, charon_ep = front
    good = burst(300, 2)
    cases = [
        (b"", "invalid_argument", "empty", Framing.BUFFER),
        (b"not a ChromaPhotonList at all", "invalid_argument", "", Framing.BUFFER),
        (chroma.encode(good)[:1000], "invalid_argument", "truncated", Framing.BUFFER),
        (chroma.encode(good, Header(framing=Framing.MESSAGE))[:-9], "invalid_argument",
         "length word", Framing.MESSAGE),
        (build(good, class_name=b"TH1F"), "invalid_argument", "wrong class 'TH1F'",
         Framing.BUFFER),
        (chroma.encode_error("internal", "an error reply sent back"), "invalid_argument",
         "wrong class 'TObjString'", Framing.BUFFER),
        (with_nan(good), "invalid_argument", "x[0] is nan", Framing.BUFFER),
        (build(good, framing="message", class_version=2), "invalid_argument",
         "class version 2", Framing.MESSAGE),
        (chroma.encode(burst(MAX_PHOTONS + 1, 3)), "resource_exhausted",
         f"limit of {MAX_PHOTONS}", Framing.BUFFER),
        (chroma.encode(burst(MAX_PHOTONS + 1, 3), Header(framing=Framing.MESSAGE)),
         "resource_exhausted", f"limit of {MAX_PHOTONS}", Framing.MESSAGE),
        ([chroma.encode(good), chroma.encode(good)], "invalid_argument", "2 frames",
         Framing.BUFFER),
    ]
    before = PhotonClient(charon_ep).stats()
    for message, code, text, framing in cases:
        reply = call(chroma_ep, message)
        assert reply is not None, f"no reply to a request that should get {code}"
        assert chroma.detect_framing(reply) is framing
        with pytest.raises(chroma.CodecError):
            chroma.decode(reply)  # never mistaken for a list, not even an empty one
        error = chroma.decode_error(reply)
        assert error.code == code and text in error.message, error
    after = PhotonClient(charon_ep).stats()
    if kind == "serve":
        assert after["chroma_refused"] - before["chroma_refused"] == len(cases)
    else:
        assert after["rejected"] - before["rejected"] == len(cases)
        assert after["chroma_refused"] - before["chroma_refused"] == len(cases)
    detected, _ = simulate(chroma_ep, good)
    assert len(detected) > 0


def test_a_message_over_the_byte_limit_closes_the_connection_and_the_server_serves_on(front):
    _, chroma_ep, _ = front
    over = chroma.encode(burst(2 * MAX_PHOTONS + 100, 4))
    assert len(over) > MAX_BYTES
    # ZeroMQ drops the sender's connection: no reply on that socket.
    assert call(chroma_ep, over, timeout_ms=1500) is None
    # A client with a deadline retries on a fresh socket and gives up cleanly.
    client = ChromaClient(chroma_ep, timeout_ms=500, attempts=2)
    with pytest.raises(chroma.Unavailable):
        client.request(over)
    detected, _ = simulate(chroma_ep, burst(300, 5))
    assert len(detected) > 0


def test_many_concurrent_clients_are_all_served(front):
    _, chroma_ep, _ = front
    n_clients = 16
    results = [None] * n_clients
    errors = []

    def client(i):
        try:
            # Even clients send the same list with the same id, odd ones their own.
            seed = 100 if i % 2 == 0 else 100 + i
            framing = Framing.MESSAGE if i % 4 == 1 else Framing.BUFFER
            results[i] = simulate(chroma_ep, burst(2000, seed), framing, event_id=seed)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert all(r is not None for r in results)
    same = [results[i][0] for i in range(0, n_clients, 2)]
    assert all(s.bitwise_equal(same[0]) for s in same), "one list and id, one result"
    assert len({len(results[i][0]) for i in range(1, n_clients, 2)}) > 1
    for i in range(n_clients):
        assert results[i][1].framing is (Framing.MESSAGE if i % 4 == 1 else Framing.BUFFER)


def test_both_fronts_give_the_same_hits_for_the_same_photons_and_event_id(serve, broker):
    chroma_ep, charon_ep, _ = serve
    photons = burst(20000, 6)
    detected, _ = simulate(chroma_ep, photons, event_id=123)
    hits = PhotonClient(charon_ep, timeout_ms=30000).simulate(
        {"x": photons.x, "y": photons.y, "z": photons.z,
         "dx": photons.px, "dy": photons.py, "dz": photons.pz,
         "px": photons.polx, "py": photons.poly, "pz": photons.polz,
         "wavelength": photons.wavelength, "time": photons.t,
         "flags": np.zeros(len(photons), np.uint32)}, event_id=123)
    assert len(hits) == len(detected) > 100
    assert np.array_equal(hits.channel.astype(np.int64), detected.pmtid.astype(np.int64))
    for theirs, ours in ((hits.time, detected.t), (hits.wavelength, detected.wavelength),
                         (hits.direction[:, 0], detected.px), (hits.direction[:, 2], detected.pz),
                         (hits.polarization[:, 1], detected.poly)):
        assert np.array_equal(np.ascontiguousarray(theirs).view(np.uint32),
                              ours.view(np.uint32))
    # The broker's workers (same seed) give the same detected photons,
    # except the positions, which are the channels' there.
    via_broker, _ = simulate(broker[0], photons, event_id=123)
    assert np.array_equal(via_broker.pmtid, detected.pmtid)
    assert np.array_equal(via_broker.t.view(np.uint32), detected.t.view(np.uint32))
    # Another event id keys other random streams.
    other, _ = simulate(chroma_ep, photons, event_id=124)
    assert not other.bitwise_equal(detected)


def test_python_client(front):
    _, chroma_ep, _ = front
    client = ChromaClient(chroma_ep, timeout_ms=30000, framing=Framing.MESSAGE)
    detected = client.simulate(burst(3000, 7), event_id=9)
    assert len(detected) > 0
    assert detected.bitwise_equal(client.simulate(burst(3000, 7), event_id=9))
    with pytest.raises(ChromaServerError) as e:
        client.simulate(burst(MAX_PHOTONS + 1, 8))
    assert e.value.code == "resource_exhausted"
    with pytest.raises(chroma.CodecError):
        bad = burst(2, 9)
        bad.t[0] = np.nan
        client.simulate(bad)  # never sent


def test_chroma_only_server():
    p = start(["--log-level", "warn", "photon", "serve", "--seed", "7", "--threads", 1, "--no-charon",
               "--chroma-bind", "tcp://127.0.0.1:*"])
    try:
        assert list(p.ready.endpoints) == ["chroma"]  # no ChAR0N endpoint
        detected, _ = simulate(p.ready["chroma"], burst(1000, 10))
        assert len(detected) > 0
    finally:
        assert p.stop() == 0


# ------------------------------------------------------ a PyROOT client

ROOT_CLIENT = r"""
#include <TBufferFile.h>
#include <cstring>
namespace acheron_pyroot_client {
// What chroma-server's serialize.C does: the buffer's bytes, copied out.
void copy_bytes(TBufferFile* buf, unsigned char* out) {
  std::memcpy(out, buf->Buffer(), buf->Length());
}
}
"""


def test_a_pyroot_client_like_chroma_servers_own_gets_its_hits(serve):
    ROOT = pytest.importorskip("ROOT")
    from chroma_layout import golden_script  # noqa: PLC0415

    golden_script.load_root("declare")
    if not hasattr(ROOT, "acheron_pyroot_client"):
        ROOT.gInterpreter.Declare(ROOT_CLIENT)
    chroma_ep, _, _ = serve
    photons = burst(4000, 11)

    # serialize.py: TBufferFile(kWrite), Reset, WriteObjectAny(o, cls), bytes.
    cpl = golden_script.to_root(ROOT, {k: v for k, v in photons.arrays().items()})
    buf = ROOT.TBufferFile(ROOT.TBuffer.kWrite)
    buf.Reset()
    buf.WriteObjectAny(cpl, ROOT.ChromaPhotonList.Class())
    request = np.empty(buf.Length(), np.uint8)
    ROOT.acheron_pyroot_client.copy_bytes(buf, request)
    reply = call(chroma_ep, request.tobytes())
    assert reply is not None

    # deserialize(): TBufferFile(kRead, len, data, False).ReadObject(cls)
    # (serialize.py also passes 0 as the realloc function, which is the
    # default and which today's PyROOT no longer converts).
    data = np.frombuffer(bytearray(reply), np.uint8)
    rbuf = ROOT.TBufferFile(ROOT.TBuffer.kRead, len(data), data, False)
    obj = rbuf.ReadObject(ROOT.ChromaPhotonList.Class())
    assert obj and obj.ClassName() == "ChromaPhotonList"
    ROOT.SetOwnership(obj, True)
    got = golden_script.from_root(ROOT, obj)
    ours, _ = chroma.decode(reply)
    assert len(got["pmtid"]) == len(ours) > 0
    assert np.array_equal(got["pmtid"], ours.pmtid)
    assert np.array_equal(got["t"].view(np.uint32), ours.t.view(np.uint32))

    # The TMessage framing, as ZeroMQ clients reusing ROOT's message class send it.
    msg = ROOT.acheron_golden.Message(ROOT.kMESS_OBJECT)
    msg.WriteObject(cpl)
    msg.set_length()
    mbytes = np.empty(msg.Length(), np.uint8)
    ROOT.acheron_golden.copy_out(msg, mbytes)
    mreply = call(chroma_ep, mbytes.tobytes())
    back = golden_script.root_read(ROOT, mreply, "message")
    assert back is not None and np.array_equal(back["pmtid"], ours.pmtid)

    # And what such a client sees for a list it cannot have served: asking
    # ROOT for a ChromaPhotonList gives no object, reading any object gives
    # the TObjString with the reason.
    bad = call(chroma_ep, request.tobytes()[:500])
    assert golden_script.root_read(ROOT, bad, "buffer") is None
    raw = np.frombuffer(bytearray(bad), np.uint8)
    text = ROOT.acheron_golden.read_any_buffer(raw, len(raw))
    assert text.ClassName() == "TObjString"
    ROOT.SetOwnership(text, True)
    assert str(text.GetString()).startswith("invalid_argument: truncated")
