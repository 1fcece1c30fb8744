"""chroma-server photon lists: the bytes of a ROOT-serialised ChromaPhotonList.

Geant4 clients of chroma-server send a ``ChromaPhotonList`` (a ROOT TObject
with eleven ``std::vector<float>`` and one ``std::vector<int>``, ClassDef
version 1) on a ZeroMQ REQ socket and get the detected photons back in the
same form. Two framings carry it:

``buffer``
    the bare bytes of ``TBufferFile::WriteObjectAny`` (chroma-server's own
    client and server);
``message``
    a ``TMessage(kMESS_OBJECT)``: a length word, the what-word 4, then the
    same object bytes.

This module reads and writes both with NumPy and no ROOT; it is byte-for-byte
the C++ codec (``acheron/wire/ChromaPhotonList.hh``). The layout, offset by
offset, is in docs/chroma.md::

    from acheron import chroma
    photons, header = chroma.decode(request_bytes)        # ValueError if malformed
    reply = chroma.encode(detected, header)                # same framing as the request

A server that cannot serve a list answers with the error reply, a ROOT
``TObjString`` holding ``"<status>: <message>"`` (``encode_error``,
``decode_error``). ``ChromaClient`` (needs pyzmq) sends a list to a chroma
front and returns the detected photons::

    client = chroma.ChromaClient("tcp://127.0.0.1:5024")
    detected = client.simulate(photons, event_id=7)       # ChromaServerError, Unavailable

Units: positions mm, times ns, wavelengths nm; (px, py, pz) is the unit
direction and pmtid the channel id (-1 for none).
"""

from __future__ import annotations

import enum
import struct
import time as _time
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

# ROOT's tags and masks (io/io/src/TBufferFile.cxx, core/base/inc/MessageTypes.h).
NULL_TAG = 0
NEW_CLASS_TAG = 0xFFFFFFFF
CLASS_MASK = 0x80000000
BYTE_COUNT_MASK = 0x40000000
MAX_MAP_COUNT = 0x3FFFFFFE  # largest byte count ROOT writes
MAX_VERSION = 0x3FFF
STREAMED_MEMBER_WISE = 0x4000
MESS_OBJECT = 4
MESS_ZIP = 0x20000000
IS_REFERENCED = 0x10  # TObject::kIsReferenced

CLASS_NAME = "ChromaPhotonList"
CLASS_VERSION = 1
TOBJECT_VERSION = 1
# The version word before each vector: TStreamerInfo's class version (10 in
# ROOT 6.40, 9 in ROOT 5). Any value is read; a reply can echo the client's.
COLLECTION_VERSION = 10
DEFAULT_MAX_PHOTONS = 10_000_000

# The error reply: a TObjString (ClassDef(TObjString, 1)) holding
# "<status>: <message>", the text cut after MAX_ERROR_TEXT bytes.
ERROR_CLASS_NAME = "TObjString"
ERROR_CLASS_VERSION = 1
MAX_ERROR_TEXT = 1024
# Status names, as acheron::StatusCode's to_string spells them.
STATUS_CODES = ("ok", "cancelled", "unknown", "invalid_argument", "deadline_exceeded",
                "not_found", "already_exists", "permission_denied", "resource_exhausted",
                "failed_precondition", "aborted", "out_of_range", "unimplemented", "internal",
                "unavailable")

FLOAT_FIELDS = ("x", "y", "z", "px", "py", "pz", "polx", "poly", "polz", "t", "wavelength")
FIELDS = FLOAT_FIELDS + ("pmtid",)

_CLASS_NAME_BYTES = CLASS_NAME.encode() + b"\0"
_MAX_CLASS_NAME = 80  # TClass::Load reads at most 80 bytes, NUL included
_MESSAGE_HEADER = 8
_VECTOR_HEADER = 10  # byte count, version, length
_TOBJECT = 10  # version, fUniqueID, fBits
_BE_F4 = np.dtype(">f4")
_BE_I4 = np.dtype(">i4")


class CodecError(ValueError):
    """Bytes that are not a ChromaPhotonList this codec reads, or a list it
    cannot write. ``code`` names the status as the C++ codec does:
    ``invalid_argument``, ``resource_exhausted`` or ``unimplemented``."""

    def __init__(self, message: str, code: str = "invalid_argument"):
        super().__init__(message)
        self.code = code


class Framing(str, enum.Enum):
    BUFFER = "buffer"  # bare TBufferFile bytes (WriteObjectAny)
    MESSAGE = "message"  # TMessage: u32 length, u32 kMESS_OBJECT, object


def _empty_float() -> np.ndarray:
    return np.zeros(0, dtype=np.float32)


@dataclass(eq=False)
class PhotonList:
    """Photons as a structure of arrays (float32, pmtid int32), all one length."""

    x: np.ndarray = field(default_factory=_empty_float)
    y: np.ndarray = field(default_factory=_empty_float)
    z: np.ndarray = field(default_factory=_empty_float)
    px: np.ndarray = field(default_factory=_empty_float)
    py: np.ndarray = field(default_factory=_empty_float)
    pz: np.ndarray = field(default_factory=_empty_float)
    polx: np.ndarray = field(default_factory=_empty_float)
    poly: np.ndarray = field(default_factory=_empty_float)
    polz: np.ndarray = field(default_factory=_empty_float)
    t: np.ndarray = field(default_factory=_empty_float)
    wavelength: np.ndarray = field(default_factory=_empty_float)
    pmtid: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    def __post_init__(self):
        for name in FLOAT_FIELDS:
            values = np.ascontiguousarray(getattr(self, name), dtype=np.float32)
            setattr(self, name, values.reshape(-1))
        self.pmtid = np.ascontiguousarray(self.pmtid, dtype=np.int32).reshape(-1)

    def __len__(self) -> int:
        return len(self.x)

    def arrays(self) -> Dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in FIELDS}

    def bitwise_equal(self, other: "PhotonList") -> bool:
        """Same lengths and the same bits in every element (-0.0 != 0.0)."""
        return all(a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))
                   for a, b in zip(self.arrays().values(), other.arrays().values()))


@dataclass
class Header:
    """What a sender's ROOT wrote besides the arrays. Encoding a reply with
    the request's header answers in the client's framing and style."""

    framing: Framing = Framing.BUFFER
    collection_version: int = COLLECTION_VERSION  # of the first vector
    unique_id: int = 0  # TObject::fUniqueID
    bits: int = 0  # TObject::fBits, kIsReferenced cleared


def detect_framing(data) -> Framing:
    """The framing of a message from its first word: a TMessage length word
    (0 when never set, else size - 4) never has BYTE_COUNT_MASK; a bare
    buffer starts with a byte count or kNewClassTag."""
    data = memoryview(data).cast("B")
    if len(data) < _MESSAGE_HEADER:
        return Framing.BUFFER
    first = int.from_bytes(data[:4], "big")
    if first == NEW_CLASS_TAG or first & BYTE_COUNT_MASK:
        return Framing.BUFFER
    return Framing.MESSAGE


class _Reader:
    def __init__(self, data: memoryview):
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def need(self, n: int, what: str) -> None:
        if n > self.remaining:
            raise CodecError(f"truncated: {what} needs {n} bytes at offset {self.pos}, "
                             f"{self.remaining} remain")

    def peek_u32(self) -> int:
        return int.from_bytes(self.data[self.pos:self.pos + 4], "big")

    def u32(self) -> int:
        v = self.peek_u32()
        self.pos += 4
        return v

    def u16(self) -> int:
        v = int.from_bytes(self.data[self.pos:self.pos + 2], "big")
        self.pos += 2
        return v

    def version(self, what: str) -> Tuple[int, Optional[_Count]]:
        """A 16-bit version, behind an optional byte count (as ROOT's
        ReadVersion reads it): (version, the count or None)."""
        self.need(2, what)
        count = None
        if self.remaining >= 4 and self.peek_u32() & BYTE_COUNT_MASK:
            count = self.byte_count(what)
            self.need(2, what)
        return self.u16(), count

    def byte_count(self, what: str) -> "_Count":
        declared = self.u32() & ~BYTE_COUNT_MASK
        if declared > self.remaining:
            raise CodecError(f"truncated: {what} byte count {declared} at offset {self.pos - 4} "
                             f"exceeds the {self.remaining} bytes that remain")
        return _Count(declared, self.pos + declared)

    def check_count(self, what: str, count: Optional["_Count"]) -> None:
        if count is not None and self.pos != count.end:
            raise CodecError(f"byte count mismatch: {what} declares {count.declared} bytes, "
                             f"its content has {count.declared + self.pos - count.end}")


@dataclass
class _Count:
    declared: int  # bytes after the count word
    end: int  # offset where the counted part ends


def _printable(name: bytes) -> str:
    text = "".join(chr(c) if 0x20 <= c < 0x7F else "?" for c in name[:64])
    return text + ("..." if len(name) > 64 else "")


def _read_tobject(r) -> tuple:
    """The TObject part of an object: version (a leading byte count is
    skipped), fUniqueID, fBits (and the process id a referenced object
    carries). Returns (fUniqueID, fBits without kIsReferenced)."""
    r.need(2, "TObject version")
    tobject_version = r.u16()
    if tobject_version & STREAMED_MEMBER_WISE:
        r.need(4, "TObject version")
        r.pos += 2
        tobject_version = r.u16()
    if tobject_version != TOBJECT_VERSION:
        raise CodecError(f"unknown TObject version {tobject_version} (expected {TOBJECT_VERSION})")
    r.need(8, "TObject fUniqueID and fBits")
    unique_id = r.u32()
    bits = r.u32()
    if bits & IS_REFERENCED:
        r.need(2, "TObject process id")
        r.pos += 2
    return unique_id, bits & ~IS_REFERENCED


def decode(data, max_photons: int = DEFAULT_MAX_PHOTONS) -> Tuple[PhotonList, Header]:
    """Decodes one ChromaPhotonList (framing detected). Raises CodecError (a
    ValueError) for anything else; never allocates more than the input backs."""
    view = memoryview(data).cast("B")
    header = Header(framing=detect_framing(view))
    if len(view) == 0:
        raise CodecError("empty message")
    r = _Reader(view)
    if header.framing is Framing.MESSAGE:
        r.need(_MESSAGE_HEADER, "TMessage header")
        length, what = r.u32(), r.u32()
        if length not in (0, len(view) - 4):
            raise CodecError(f"TMessage length word {length} does not match the {len(view)} bytes "
                             f"received (expected {len(view) - 4} or 0)")
        if what & MESS_ZIP:
            raise CodecError("compressed TMessage (kMESS_ZIP) is not supported: send it "
                             "uncompressed", "unimplemented")
        if what != MESS_OBJECT:
            raise CodecError(f"TMessage what-word {what:#x} is not kMESS_OBJECT ({MESS_OBJECT})")

    # Class tag, optionally behind the object's byte count.
    r.need(4, "object tag")
    word = r.peek_u32()
    outer = None
    if word & BYTE_COUNT_MASK and word != NEW_CLASS_TAG:
        outer = r.byte_count("object")
        r.need(4, "class tag")
    word = r.u32()
    if word == NULL_TAG:
        raise CodecError("the message holds a null object")
    if word != NEW_CLASS_TAG:
        kind = "class" if word & CLASS_MASK else "object"
        raise CodecError(f"{kind} tag {word:#x} refers to a{'' if kind == 'class' else 'n'} {kind} "
                         "stored earlier in the buffer; send one ChromaPhotonList per message from "
                         "a fresh buffer", "unimplemented")
    window = bytes(view[r.pos:r.pos + _MAX_CLASS_NAME])
    nul = window.find(b"\0")
    if nul < 0:
        if len(window) < _MAX_CLASS_NAME:
            r.need(len(window) + 1, "class name")
        raise CodecError(f"class name at offset {r.pos} is not NUL-terminated within "
                         f"{_MAX_CLASS_NAME} bytes")
    if window[:nul] != _CLASS_NAME_BYTES[:-1]:
        raise CodecError(f"wrong class '{_printable(window[:nul])}' (expected {CLASS_NAME})")
    r.pos += nul + 1

    class_version, object_count = r.version(CLASS_NAME)
    if class_version != CLASS_VERSION:
        raise CodecError(f"unknown ChromaPhotonList class version {class_version} "
                         f"(this codec reads version {CLASS_VERSION})")

    header.unique_id, header.bits = _read_tobject(r)

    columns = {}
    n = 0
    for index, name in enumerate(FIELDS):
        version, count = r.version(name)
        if version & STREAMED_MEMBER_WISE:
            raise CodecError(f"member {name} is streamed member-wise (version {version:#x}); ROOT "
                             "streams vectors of numbers object-wise", "unimplemented")
        if version == 0 or version > MAX_VERSION:
            raise CodecError(f"unknown collection version {version} for member {name}")
        if index == 0:
            header.collection_version = version
        r.need(4, name)
        length = r.u32()
        if length >= 0x80000000:
            raise CodecError(f"member {name} has a negative length {length - (1 << 32)}")
        if index == 0:
            if length > max_photons:
                raise CodecError(f"{length} photons exceed the limit of {max_photons} per list",
                                 "resource_exhausted")
            n = length
        elif length != n:
            raise CodecError(f"mismatched vector lengths: x has {n} elements, {name} has {length}")
        r.need(4 * n, name)  # before anything is allocated
        wire = np.frombuffer(view, dtype=_BE_I4 if name == "pmtid" else _BE_F4, count=n,
                             offset=r.pos)
        r.pos += 4 * n
        if name == "pmtid":
            columns[name] = wire.astype(np.int32)
        else:
            values = wire.astype(np.float32)
            finite = np.isfinite(values)
            if not finite.all():
                i = int(np.flatnonzero(~finite)[0])
                raise CodecError(f"{name}[{i}] is {_float_text(values[i])} "
                                 "(every value must be finite)")
            columns[name] = values
        r.check_count(name, count)

    r.check_count(CLASS_NAME, object_count)
    r.check_count("object", outer)
    if r.remaining:
        raise CodecError(f"{r.remaining} bytes follow the object at offset {r.pos}")
    return PhotonList(**columns), header


def _float_text(v: np.float32) -> str:
    return "nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")


def _object_count(n: int) -> int:
    return 2 + _TOBJECT + len(FIELDS) * (_VECTOR_HEADER + 4 * n)


def _outer_count(n: int) -> int:
    return 4 + len(_CLASS_NAME_BYTES) + 4 + _object_count(n)


MAX_ENCODABLE = (MAX_MAP_COUNT - 1 - _outer_count(0)) // (4 * len(FIELDS))


def encoded_size(n: int, framing: Framing = Framing.BUFFER) -> int:
    """Bytes encode() writes for n photons."""
    return (_MESSAGE_HEADER if Framing(framing) is Framing.MESSAGE else 0) + 4 + _outer_count(n)


def encode(photons: PhotonList, header: Header | None = None) -> bytes:
    """The bytes ROOT 6 writes for the list: byte counts everywhere, a
    TMessage's length word set as TMessage::SetLength does. Raises
    CodecError for vectors of different lengths, NaN/inf, or a list too
    large for one ROOT byte count."""
    header = header or Header()
    framing = Framing(header.framing)
    columns = photons.arrays()
    n = len(columns["x"])
    for name, values in columns.items():
        if values.shape != (n,):
            raise CodecError(f"mismatched vector lengths: x has {n} elements, {name} has "
                             f"{values.size}")
        if name != "pmtid":
            finite = np.isfinite(values)
            if not finite.all():
                i = int(np.flatnonzero(~finite)[0])
                raise CodecError(f"{name}[{i}] is {_float_text(values[i])} "
                                 "(every value must be finite)")
    if not 0 < header.collection_version <= MAX_VERSION:
        raise CodecError(f"collection version {header.collection_version} is outside "
                         f"1..{MAX_VERSION}")
    if n > MAX_ENCODABLE:
        raise CodecError(f"{n} photons do not fit one ROOT object (at most {MAX_ENCODABLE})")

    out = bytearray(encoded_size(n, framing))
    pos = 0
    if framing is Framing.MESSAGE:
        struct.pack_into(">II", out, 0, len(out) - 4, MESS_OBJECT)
        pos = _MESSAGE_HEADER
    struct.pack_into(">II", out, pos, _outer_count(n) | BYTE_COUNT_MASK, NEW_CLASS_TAG)
    pos += 8
    out[pos:pos + len(_CLASS_NAME_BYTES)] = _CLASS_NAME_BYTES
    pos += len(_CLASS_NAME_BYTES)
    struct.pack_into(">IHHII", out, pos, _object_count(n) | BYTE_COUNT_MASK, CLASS_VERSION,
                     TOBJECT_VERSION, header.unique_id & 0xFFFFFFFF,
                     header.bits & ~IS_REFERENCED & 0xFFFFFFFF)
    pos += 4 + 2 + _TOBJECT
    vector_count = (2 + 4 + 4 * n) | BYTE_COUNT_MASK
    for name in FIELDS:
        struct.pack_into(">IHI", out, pos, vector_count, header.collection_version, n)
        pos += _VECTOR_HEADER
        wire_type = _BE_I4 if name == "pmtid" else _BE_F4
        target = np.frombuffer(out, dtype=wire_type, count=n, offset=pos)
        target[...] = columns[name]  # byte-swapped by NumPy in one pass
        pos += 4 * n
    return bytes(out)


# -- the error reply ---------------------------------------------------------

@dataclass
class ErrorReply:
    """A chroma front's refusal: the status name and the message."""

    code: str
    message: str


def _escaped(text: str, max_bytes: int) -> bytes:
    """Bytes outside printable ASCII (and the backslash) as \\xNN, cut after
    max_bytes input bytes with "...", as the C++ side writes them."""
    raw = text.encode("utf-8", "replace")
    out = bytearray()
    for c in raw[:max_bytes]:
        if 0x20 <= c < 0x7F and c != 0x5C:
            out.append(c)
        else:
            out += b"\\x%02x" % c
    if len(raw) > max_bytes:
        out += b"..."
    return bytes(out)


def encode_error(code: str, message: str, framing: Framing = Framing.BUFFER) -> bytes:
    """The bytes ROOT writes for a TObjString of "<code>: <message>"."""
    text = _escaped(f"{code}: {message}", MAX_ERROR_TEXT)
    prefix = struct.pack(">B", len(text)) if len(text) < 255 else struct.pack(">BI", 255, len(text))
    name = ERROR_CLASS_NAME.encode() + b"\0"
    obj = struct.pack(">HHII", ERROR_CLASS_VERSION, TOBJECT_VERSION, 0, 0) + prefix + text
    body = struct.pack(">I", NEW_CLASS_TAG) + name
    body += struct.pack(">I", len(obj) | BYTE_COUNT_MASK) + obj
    out = struct.pack(">I", len(body) | BYTE_COUNT_MASK) + body
    if Framing(framing) is Framing.MESSAGE:
        out = struct.pack(">II", len(out) + 4, MESS_OBJECT) + out
    return out


def decode_error(data) -> ErrorReply:
    """Reads an error reply (either framing). Raises CodecError for bytes
    that are not a TObjString as ROOT writes one."""
    view = memoryview(data).cast("B")
    if len(view) == 0:
        raise CodecError("empty message")
    r = _Reader(view)
    if detect_framing(view) is Framing.MESSAGE:
        r.need(_MESSAGE_HEADER, "TMessage header")
        length, what = r.u32(), r.u32()
        if length not in (0, len(view) - 4) or what != MESS_OBJECT:
            raise CodecError("not a TMessage(kMESS_OBJECT) of the received size")
    r.need(4, "object tag")
    outer = None
    if r.peek_u32() & BYTE_COUNT_MASK and r.peek_u32() != NEW_CLASS_TAG:
        outer = r.byte_count("object")
        r.need(4, "class tag")
    if r.u32() != NEW_CLASS_TAG:
        raise CodecError("no class tag")
    name = ERROR_CLASS_NAME.encode() + b"\0"
    r.need(len(name), "class name")
    if bytes(view[r.pos:r.pos + len(name)]) != name:
        raise CodecError(f"not a {ERROR_CLASS_NAME}")
    r.pos += len(name)
    version, count = r.version(ERROR_CLASS_NAME)
    if version != ERROR_CLASS_VERSION:
        raise CodecError(f"unknown {ERROR_CLASS_NAME} version {version}")
    _read_tobject(r)
    r.need(1, "TString length")
    length = view[r.pos]
    r.pos += 1
    if length == 255:
        r.need(4, "TString length")
        length = r.u32()
    r.need(length, "TString")
    text = bytes(view[r.pos:r.pos + length]).decode("utf-8", "replace")
    r.pos += length
    r.check_count(ERROR_CLASS_NAME, count)
    r.check_count("object", outer)
    if r.remaining:
        raise CodecError(f"{r.remaining} bytes follow the object at offset {r.pos}")
    code, sep, message = text.partition(": ")
    if sep and code in STATUS_CODES:
        return ErrorReply(code, message)
    return ErrorReply("unknown", text)


# -- client -----------------------------------------------------------------

class ChromaServerError(RuntimeError):
    """The server answered with the error reply; ``code`` is its status name
    (``invalid_argument``, ``resource_exhausted``, ``unavailable``, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Unavailable(TimeoutError):
    """No reply after every attempt."""


class ChromaClient:
    """A client of a chroma front (``acheron photon serve --chroma-bind``,
    ``acheron broker --chroma-bind``, or a chroma-server): one list per
    request on a REQ socket. Every attempt has a deadline; an unanswered one
    is sent again on a fresh socket (Lazy Pirate). The deadline must exceed
    the longest simulation: an attempt that times out is simulated again."""

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5024", timeout_ms: int = 30000,
                 attempts: int = 3, framing: Framing = Framing.BUFFER, context=None,
                 max_photons: int = DEFAULT_MAX_PHOTONS, unavailable_wait_s: float = 0.5):
        import zmq  # noqa: PLC0415 (the codec above needs only NumPy)

        if attempts < 1 or timeout_ms <= 0:
            raise ValueError("attempts must be >= 1 and timeout_ms > 0")
        self._zmq = zmq
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.attempts = attempts
        self.framing = Framing(framing)
        self.max_photons = max_photons
        self.unavailable_wait_s = unavailable_wait_s
        self._ctx = context or zmq.Context.instance()

    def request(self, data) -> bytes:
        """Sends bytes as they are (a list written elsewhere) and returns the
        reply's bytes; an "unavailable" error reply is retried after a pause."""
        zmq = self._zmq
        for attempt in range(1, self.attempts + 1):
            s = self._ctx.socket(zmq.REQ)
            s.setsockopt(zmq.LINGER, 0)
            try:
                s.connect(self.endpoint)
                s.send(data, copy=False)
                if not s.poll(self.timeout_ms, zmq.POLLIN):
                    continue
                reply = s.recv_multipart()[0]
            finally:
                s.close()
            if attempt < self.attempts:
                try:
                    if decode_error(reply).code == "unavailable":
                        _time.sleep(self.unavailable_wait_s)
                        continue
                except CodecError:
                    pass
            return reply
        raise Unavailable(f"no reply from the chroma server at {self.endpoint} after "
                          f"{self.attempts} attempts of {self.timeout_ms} ms")

    def simulate(self, photons: PhotonList, event_id: int = 0) -> PhotonList:
        """The detected photons (pmtid = channel id). event_id goes out as the
        list's fUniqueID, which keys the server's random streams. Raises
        ChromaServerError for the error reply, Unavailable without a reply,
        CodecError for a list that cannot be written or a reply that cannot be
        read."""
        reply = self.request(encode(photons, Header(framing=self.framing, unique_id=event_id)))
        try:
            detected, _ = decode(reply, self.max_photons)
            return detected
        except CodecError as e:
            try:
                error = decode_error(reply)
            except CodecError:
                raise CodecError(f"unreadable reply from the chroma server at {self.endpoint}: "
                                 f"{e}") from None
            raise ChromaServerError(error.code, error.message) from None
