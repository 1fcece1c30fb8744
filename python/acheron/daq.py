"""Client of the PANOSETI DaqData gRPC service (``acheron daq serve`` or the
upstream Python server: the wire protocol is the same).

Runs on Debian's python3 with python3-grpcio, python3-protobuf and
python3-numpy. The gRPC stubs are the subpackage ``acheron.proto``, generated
from proto/acheron/ when the package is built (``pip install .``).

    from acheron.daq import DaqDataClient
    with DaqDataClient("unix:///tmp/daq_data.sock") as c:
        c.init_sim()
        for image in c.stream_images(update_interval_seconds=0.1, max_images=10):
            print(image["module_id"], image["type"], image["image_array"].shape)
"""

from __future__ import annotations

import decimal
import json
import os
import threading
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence

import grpc
import numpy as np
from google.protobuf import empty_pb2
from google.protobuf.json_format import MessageToDict

from ._extension import load_proto

daqdata_pb2, daqdata_pb2_grpc = load_proto("daqdata")

DEFAULT_PORT = 50051
TAI_UTC_OFFSET = 37  # seconds

# PanoImage.Type names as PANOSETI's clients use them.
_TYPE_NAMES = {daqdata_pb2.PanoImage.UNDEFINED: "UNDEFINED",
               daqdata_pb2.PanoImage.PULSE_HEIGHT: "PULSE_HEIGHT",
               daqdata_pb2.PanoImage.MOVIE: "MOVIE"}

# (type, side, bytes per pixel) -> data product name
DATA_PRODUCTS = {("MOVIE", 32, 2): "img16", ("MOVIE", 32, 1): "img8",
                 ("PULSE_HEIGHT", 16, 2): "ph256", ("PULSE_HEIGHT", 32, 2): "ph1024"}


def resolve_target(address: str) -> str:
    """``unix:...`` stays as is; a bare host gets PANOSETI's port 50051."""
    if address.startswith("unix:"):
        return address
    if ":" not in address:
        return f"{address}:{DEFAULT_PORT}"
    return address


def wr_to_unix_decimal(pkt_tai: int, pkt_nsec: int, tv_sec: int) -> decimal.Decimal:
    """White-Rabbit time in Unix seconds, or Decimal(0) when the WR and host
    clocks disagree by more than one second."""
    d = (int(tv_sec) - int(pkt_tai) + TAI_UTC_OFFSET) % 1024
    if d == 0:
        sec = int(tv_sec)
    elif d == 1:
        sec = int(tv_sec) - 1
    elif d == 1023:
        sec = int(tv_sec) + 1
    else:
        return decimal.Decimal(0)
    return decimal.Decimal(sec) + decimal.Decimal(int(pkt_nsec)) / decimal.Decimal(10**9)


def data_product(image: Dict) -> Optional[str]:
    shape = image["shape"]
    side = shape[0] if len(shape) == 2 and shape[0] == shape[1] else None
    return DATA_PRODUCTS.get((image["type"], side, image["bytes_per_pixel"]))


def parse_pano_image(pano_image) -> Dict:
    """A PanoImage as a dictionary: ``image_array`` is a 2-D NumPy array
    (uint8 at 1 byte per pixel, uint16 for movie mode, int16 for pulse
    heights), ``header`` the frame header plus ``wr_unix_timestamp`` and
    ``pkt_unix_timestamp`` (Decimal) and ``pandas_unix_timestamp``
    (numpy.datetime64, from tv_sec + tv_usec)."""
    header = MessageToDict(pano_image.header)
    shape = list(pano_image.shape)
    bpp = pano_image.bytes_per_pixel
    kind = _TYPE_NAMES.get(pano_image.type, "UNDEFINED")
    raw = np.fromiter(pano_image.image_array, dtype=np.uint32, count=len(pano_image.image_array))
    if bpp == 1:
        array = raw.astype(np.uint8)
    elif kind == "PULSE_HEIGHT":
        array = raw.astype(np.uint16).view(np.int16)  # signed on disk, zero-extended on the wire
    else:
        array = raw.astype(np.uint16)
    if len(shape) == 2 and shape[0] * shape[1] == array.size:
        array = array.reshape(shape)
    stamps = header if shape == [16, 16] else header.get("quabo_0", {})
    if all(k in stamps for k in ("pkt_tai", "pkt_nsec", "tv_sec", "tv_usec")):
        tv_sec, tv_usec = int(stamps["tv_sec"]), int(stamps["tv_usec"])
        header["wr_unix_timestamp"] = wr_to_unix_decimal(stamps["pkt_tai"], stamps["pkt_nsec"],
                                                         tv_sec)
        header["pkt_unix_timestamp"] = decimal.Decimal(tv_sec) + decimal.Decimal(tv_usec) / 10**6
        header["pandas_unix_timestamp"] = np.datetime64(tv_sec * 10**6 + tv_usec, "us")
    return {
        "type": kind,
        "header": header,
        "shape": shape,
        "bytes_per_pixel": bpp,
        "image_array": array,
        "file": pano_image.file,
        "frame_number": pano_image.frame_number,
        "module_id": pano_image.module_id,
    }


def make_pano_image(image_array: np.ndarray, header: Dict, module_id: int, kind: str,
                    file: str = "", frame_number: int = 0):
    """A PanoImage for UploadImages from a 2-D array (see parse_pano_image)."""
    img = daqdata_pb2.PanoImage()
    img.type = daqdata_pb2.PanoImage.Type.Value(kind)
    img.header.update(header)
    a = np.asarray(image_array)
    img.shape.extend(list(a.shape))
    img.bytes_per_pixel = 1 if a.dtype.itemsize == 1 else 2
    flat = a.reshape(-1)
    if flat.dtype.itemsize == 2:
        flat = flat.view(np.uint16)
    img.image_array.extend(flat.astype(np.uint32).tolist())
    img.file = file
    img.frame_number = frame_number
    img.module_id = module_id
    return img


def _varint(data: bytes, pos: int):
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes):
    """(field number, wire type, value) of a protobuf message (bytes for
    length-delimited fields); enough for the reflection listing."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            n, pos = _varint(data, pos)
            value, pos = data[pos:pos + n], pos + n
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def hosts_from_config(config) -> List[str]:
    """Host addresses from an address, a list of them, or a PANOSETI
    ``daq_config`` (dict or JSON file path) with ``daq_nodes[{ip_addr}]``."""
    if isinstance(config, (str, os.PathLike)) and (
            str(config).endswith(".json") or os.path.isfile(str(config))):
        with open(config) as f:
            config = json.load(f)
    if isinstance(config, dict):
        nodes = config.get("daq_nodes")
        if not nodes:
            raise ValueError("daq_nodes is empty")
        hosts = []
        for node in nodes:
            if "ip_addr" not in node:
                raise ValueError(f"daq node {node} does not have an 'ip_addr' key")
            hosts.append(node["ip_addr"])
        return hosts
    if isinstance(config, str):
        return [config]
    return list(config or [])


def _read_pem(path, what: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if b"-----BEGIN " not in data:
        raise ValueError(f"the TLS {what} '{path}' is not in PEM format (no -----BEGIN line)")
    return data


def channel_credentials(tls_ca=None, tls_cert=None, tls_key=None):
    """gRPC channel credentials for TLS from PEM files, or None when no file
    is given (plaintext). Without tls_ca the system's trusted roots are used;
    tls_cert and tls_key give a client certificate for servers that require
    one."""
    if not (tls_ca or tls_cert or tls_key):
        return None
    if bool(tls_cert) != bool(tls_key):
        raise ValueError("a TLS client certificate needs its private key (tls_cert and tls_key)")
    return grpc.ssl_channel_credentials(
        root_certificates=_read_pem(tls_ca, "CA") if tls_ca else None,
        private_key=_read_pem(tls_key, "client key") if tls_key else None,
        certificate_chain=_read_pem(tls_cert, "client certificate") if tls_cert else None)


class DaqDataClient:
    """Synchronous client for one or more DaqData hosts (addresses are
    ``unix:///path``, ``host:port`` or a bare host on port 50051).

    ``tls_ca`` (and ``tls_cert``/``tls_key`` for a server that requires
    client certificates) connect TCP hosts with TLS; unix-socket hosts stay
    plaintext, as the server's unix socket serves."""

    def __init__(self, hosts, options: Sequence = (), tls_ca=None, tls_cert=None, tls_key=None):
        hosts = hosts_from_config(hosts)
        if not hosts:
            raise ValueError("no DaqData host given")
        self.hosts: List[str] = [resolve_target(h) for h in hosts]
        opts = [("grpc.max_receive_message_length", 64 << 20)] + list(options)
        creds = channel_credentials(tls_ca, tls_cert, tls_key)

        def channel(h):
            if creds is None or h.startswith("unix:"):
                return grpc.insecure_channel(h, options=opts)
            return grpc.secure_channel(h, creds, options=opts)

        self._channels = {h: channel(h) for h in self.hosts}
        self._stubs = {h: daqdata_pb2_grpc.DaqDataStub(c) for h, c in self._channels.items()}
        self._calls = []
        self._lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.cancel()
        for c in self._channels.values():
            c.close()

    def cancel(self):
        """Ends every running stream_images() iteration."""
        with self._lock:
            calls, self._calls = self._calls, []
        for call in calls:
            call.cancel()

    def _pick(self, hosts) -> List[str]:
        if hosts is None:
            return list(self.hosts)
        if isinstance(hosts, str):
            hosts = [hosts]
        return [resolve_target(h) for h in hosts]

    # ----------------------------------------------------------- unary calls
    def ping(self, host: Optional[str] = None, timeout: float = 0.3) -> bool:
        host = resolve_target(host) if host else self.hosts[0]
        try:
            self._stubs[host].Ping(empty_pb2.Empty(), timeout=timeout, wait_for_ready=True)
            return True
        except grpc.RpcError:
            return False

    def status(self, host: Optional[str] = None, timeout: float = 2.0) -> Dict[str, Any]:
        """The Status RPC: {'hp_io_initialized': bool, 'message': str}."""
        host = resolve_target(host) if host else self.hosts[0]
        r = self._stubs[host].Status(empty_pb2.Empty(), timeout=timeout)
        return {"hp_io_initialized": r.hp_io_initialized, "message": r.message}

    def get_valid_daq_hosts(self) -> List[str]:
        return [h for h in self.hosts if self.ping(h)]

    def init_hp_io(self, hosts=None, hp_io_cfg: Optional[Dict] = None, timeout: float = 10.0) -> bool:
        """InitHpIo on every host; True if all succeeded. An RPC error is
        raised as grpc.RpcError (code() and details() tell why)."""
        cfg = dict(hp_io_cfg or {})
        req = daqdata_pb2.InitHpIoRequest(
            data_dir=str(cfg.get("data_dir", "")),
            update_interval_seconds=float(cfg.get("update_interval_seconds", 0.1)),
            force=bool(cfg.get("force", False)),
            simulate_daq=bool(cfg.get("simulate_daq", False)),
            module_ids=list(cfg.get("module_ids", [])))
        ok = True
        for h in self._pick(hosts):
            ok = self._stubs[h].InitHpIo(req, timeout=timeout).success and ok
        return ok

    def init_sim(self, hosts=None, hp_io_cfg: Optional[Dict] = None, timeout: float = 10.0) -> bool:
        """InitHpIo with simulated data (the server's simulate_daq_cfg)."""
        cfg = {"data_dir": "simulated_data_dir", "update_interval_seconds": 0.1, "force": True,
               "module_ids": []}
        cfg.update(hp_io_cfg or {})
        cfg["simulate_daq"] = True
        return self.init_hp_io(hosts, cfg, timeout)

    def reflect_services(self, host: Optional[str] = None, timeout: float = 2.0) -> List[str]:
        """Service names the host lists through gRPC server reflection
        (grpc.reflection.v1alpha)."""
        host = resolve_target(host) if host else self.hosts[0]
        method = self._channels[host].stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda b: b, response_deserializer=lambda b: b)
        # ServerReflectionRequest{list_services = 7: ""}
        replies = method(iter([b"\x3a\x00"]), timeout=timeout)
        names = []
        for reply in replies:
            for number, _, value in _fields(reply):
                if number == 6:  # list_services_response
                    for n2, _, service in _fields(value):
                        if n2 == 1:
                            for n3, _, name in _fields(service):
                                if n3 == 1:
                                    names.append(name.decode())
            break
        return names

    # ----------------------------------------------------------- streaming
    def stream_images(self, hosts=None, stream_movie_data: bool = True,
                      stream_pulse_height_data: bool = True,
                      update_interval_seconds: float = 1.0, module_ids: Iterable[int] = (),
                      wait_for_ready: bool = False, parse_pano_images: bool = True,
                      timeout: float = 36000, max_images: Optional[int] = None) -> Iterator:
        """Yields images from every host, merged. CANCELLED, UNAVAILABLE and
        OK end a host's stream cleanly; any other status is raised."""
        req = daqdata_pb2.StreamImagesRequest(
            stream_movie_data=stream_movie_data,
            stream_pulse_height_data=stream_pulse_height_data,
            update_interval_seconds=update_interval_seconds, module_ids=list(module_ids))
        calls = []
        for h in self._pick(hosts):
            call = self._stubs[h].StreamImages(req, timeout=timeout, wait_for_ready=wait_for_ready)
            calls.append(call)
        with self._lock:
            self._calls.extend(calls)
        out = _Merge(calls)
        count = 0
        try:
            for response in out:
                yield parse_pano_image(response.pano_image) if parse_pano_images else response
                count += 1
                if max_images is not None and count >= max_images:
                    break
        finally:
            for call in calls:
                call.cancel()
            out.close()
            with self._lock:
                self._calls = [c for c in self._calls if c not in calls]

    def upload_images(self, images: Iterable, host: Optional[str] = None, timeout: float = 60.0):
        """UploadImages: each item is a PanoImage (see make_pano_image)."""
        host = resolve_target(host) if host else self.hosts[0]
        requests = (daqdata_pb2.UploadImageRequest(pano_image=img) for img in images)
        self._stubs[host].UploadImages(requests, timeout=timeout)


_CLEAN_END = (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK)


class _Merge:
    """Merges server streams of several hosts into one iterator."""

    def __init__(self, calls):
        import queue
        self._queue = queue.Queue(maxsize=256)
        self._done = object()
        self._closed = False
        self._threads = []
        for call in calls:
            t = threading.Thread(target=self._pump, args=(call,), daemon=True)
            t.start()
            self._threads.append(t)
        self._live = len(calls)

    def _put(self, item) -> bool:
        """Hands item to the consumer unless it has gone away."""
        import queue
        while not self._closed:
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self, call):
        try:
            for response in call:
                if not self._put(response):
                    return
            self._put(self._done)
        except grpc.RpcError as e:
            self._put(self._done if e.code() in _CLEAN_END else e)

    def __iter__(self):
        while self._live > 0:
            item = self._queue.get()
            if item is self._done:
                self._live -= 1
                continue
            if isinstance(item, grpc.RpcError):
                self._live -= 1
                raise item
            yield item

    def close(self):
        self._closed = True
