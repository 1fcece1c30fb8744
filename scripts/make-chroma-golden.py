#!/usr/bin/env python3
"""Writes the golden ChromaPhotonList bytes in test/data/chroma/ with real ROOT.

Run it with a Python that has ROOT (PyPI's `ROOT` wheel works):

    /usr/bin/python3 -m venv --system-site-packages /tmp/venv-root
    /tmp/venv-root/bin/pip install ROOT
    /tmp/venv-root/bin/python scripts/make-chroma-golden.py

The class is the one chroma-server clients stream (eleven std::vector<float>
and one std::vector<int> on a TObject, ClassDef version 1). By default it is
compiled with ACLiC, so ROOT streams it through a rootcling dictionary as a
Geant4 client's library would; `--dictionary declare` declares it in the
interpreter instead (ClassDefInline: the same streamer, no compiler needed).

Files (docs/chroma.md describes the bytes):
  buffer_N.bin        TBufferFile::WriteObjectAny, N = 0, 1, 3 photons of field_values(N)
  message_N.bin       TMessage(kMESS_OBJECT) + WriteObject + SetLength (as TSocket sends)
  message_nolength_1.bin  the same without SetLength (length word 0), as clients that
                      hand TMessage::Buffer() to ZeroMQ send it
  buffer_edge.bin     edge_values(): signed zero, subnormal, extreme floats and ints
  buffer_flags_1.bin  fUniqueID 0x1234 and kMustCleanup set
  buffer_referenced_1.bin  kIsReferenced set (ROOT appends a process-id word)
  large.sha256        SHA-256 of the buffer and message bytes of field_values(100000),
                      too large to keep (4.8 MB each)
  error_buffer.bin, error_message.bin, error_long_buffer.bin
                      the chroma front's error reply: a TObjString of ERROR_TEXT
                      (LONG_ERROR_TEXT, over 254 bytes, for the long TString form)

This module is also imported by test/python/test_chroma_root.py.
"""

from __future__ import annotations

import argparse
import hashlib
import pathlib
import sys
import tempfile
import warnings

import numpy as np

FLOAT_FIELDS = ("x", "y", "z", "px", "py", "pz", "polx", "poly", "polz", "t", "wavelength")
FIELDS = FLOAT_FIELDS + ("pmtid",)
SMALL_SIZES = (0, 1, 3)
LARGE_SIZE = 100_000
OUT_DIR = pathlib.Path(__file__).resolve().parents[1] / "test" / "data" / "chroma"

_MEMBERS = "\n".join(f"  std::vector<float> {name};" for name in FLOAT_FIELDS)
CLASS_SOURCE = r"""
#include <TObject.h>
#include <vector>

class ChromaPhotonList : public TObject {
 public:
  ChromaPhotonList() : TObject() {}
%s
  std::vector<int> pmtid;
  %s(ChromaPhotonList, 1);
};
"""

# Helpers that move arrays in and out of ROOT without per-element Python
# calls, and a TMessage whose protected read constructor and SetLength are
# reachable (TSocket's role), as ZeroMQ clients of ROOT do.
HELPERS = r"""
#include <TBufferFile.h>
#include <TMessage.h>
#include <cstring>
#include <vector>

namespace acheron_golden {
void assign_floats(std::vector<float>& v, const float* data, std::size_t n) {
  v.assign(data, data + n);
}
void assign_ints(std::vector<int>& v, const int* data, std::size_t n) { v.assign(data, data + n); }
void copy_floats(const std::vector<float>& v, float* out) {
  if (!v.empty()) std::memcpy(out, v.data(), 4 * v.size());
}
void copy_ints(const std::vector<int>& v, int* out) {
  if (!v.empty()) std::memcpy(out, v.data(), 4 * v.size());
}
void copy_out(const TBuffer& b, unsigned char* out) { std::memcpy(out, b.Buffer(), b.Length()); }

class Message : public TMessage {
 public:
  explicit Message(UInt_t what) : TMessage(what) {}
  Message(void* buf, Int_t size) : TMessage(buf, size, kFALSE) {}
  void set_length() const { SetLength(); }
};

ChromaPhotonList* read_buffer(unsigned char* data, int size) {
  TBufferFile b(TBuffer::kRead, size, data, kFALSE);
  return static_cast<ChromaPhotonList*>(b.ReadObjectAny(ChromaPhotonList::Class()));
}
ChromaPhotonList* read_message(unsigned char* data, int size) {
  Message m(data, size);
  if (m.What() != kMESS_OBJECT || m.GetClass() != ChromaPhotonList::Class()) return nullptr;
  return static_cast<ChromaPhotonList*>(m.ReadObjectAny(ChromaPhotonList::Class()));
}
// Any object, as a client that does not name the class reads it.
TObject* read_any_buffer(unsigned char* data, int size) {
  TBufferFile b(TBuffer::kRead, size, data, kFALSE);
  return b.ReadObject(TObject::Class());
}
TObject* read_any_message(unsigned char* data, int size) {
  Message m(data, size);
  if (m.What() != kMESS_OBJECT || !m.GetClass()) return nullptr;
  return static_cast<TObject*>(m.ReadObject(m.GetClass()));
}
}
"""


def field_values(n: int) -> dict:
    """Deterministic photons, every value exact in float32 (integers times a
    power of two), so C++, NumPy and ROOT compute the same bits. Directions
    are the six axis unit vectors, polarisations perpendicular to them."""
    i = np.arange(n, dtype=np.int64)
    axis = i % 6
    unit = np.zeros((n, 3))
    unit[np.arange(n), axis // 2] = np.where(axis % 2 == 0, 1.0, -1.0)
    pol = np.zeros((n, 3))
    pol[np.arange(n), (axis // 2 + 1) % 3] = 1.0
    f = {
        "x": ((i * 7919) % 20001 - 10000) * 0.125,  # mm
        "y": ((i * 104729) % 16001 - 8000) * 0.25,
        "z": ((i * 1299709) % 12001 - 6000) * 0.5,
        "px": unit[:, 0], "py": unit[:, 1], "pz": unit[:, 2],
        "polx": pol[:, 0], "poly": pol[:, 1], "polz": pol[:, 2],
        "t": (i % 8192) * 0.0078125,  # ns
        "wavelength": 200.0 + (i % 501) + 0.5 * (i % 2),  # nm
    }
    out = {k: np.asarray(v, dtype=np.float32) for k, v in f.items()}
    out["pmtid"] = ((i * 37) % 20000 - 1).astype(np.int32)
    return out


def edge_values() -> dict:
    """Four photons whose values test bit-exactness: -0.0, the smallest
    subnormal, FLT_MAX, -FLT_MIN, and the int32 extremes."""
    specials = np.array([0x80000000, 0x00000001, 0x7F7FFFFF, 0x80800000], dtype=np.uint32)
    out = {}
    for k, name in enumerate(FLOAT_FIELDS):
        out[name] = np.roll(specials, k).view(np.float32).copy()
    out["pmtid"] = np.array([-(2**31), 2**31 - 1, -1, 0], dtype=np.int32)
    return out


def load_root(dictionary: str = "aclic"):
    """Imports ROOT and makes ChromaPhotonList known to it."""
    warnings.filterwarnings("ignore", category=UserWarning, module="ROOT")  # "alpha stage" wheel
    import ROOT  # noqa: PLC0415 (optional dependency)

    ROOT.gROOT.SetBatch(True)
    if not hasattr(ROOT, "ChromaPhotonList"):
        if dictionary == "aclic":
            build = pathlib.Path(tempfile.mkdtemp(prefix="chroma-golden-"))
            header = build / "ChromaPhotonList.h"
            header.write_text(CLASS_SOURCE % (_MEMBERS, "ClassDef"))
            ROOT.gSystem.SetBuildDir(str(build), True)
            if ROOT.gSystem.CompileMacro(str(header), "k") != 1:
                raise RuntimeError("ACLiC could not compile ChromaPhotonList.h (is g++ installed?)")
        else:
            ROOT.gInterpreter.Declare(CLASS_SOURCE % (_MEMBERS, "ClassDefInline"))
    if not hasattr(ROOT, "acheron_golden"):
        ROOT.gInterpreter.Declare(HELPERS)
    return ROOT


def to_root(ROOT, arrays: dict, unique_id: int = 0, bits: int = 0):
    obj = ROOT.ChromaPhotonList()
    n = len(arrays["x"])
    if n == 0:
        return obj
    helpers = ROOT.acheron_golden
    for name in FLOAT_FIELDS:
        helpers.assign_floats(getattr(obj, name), np.ascontiguousarray(arrays[name], np.float32), n)
    helpers.assign_ints(obj.pmtid, np.ascontiguousarray(arrays["pmtid"], np.int32), n)
    if unique_id:
        obj.SetUniqueID(unique_id)
    if bits:
        obj.SetBit(bits)
    return obj


def from_root(ROOT, obj) -> dict:
    out = {}
    for name in FIELDS:
        v = getattr(obj, name)
        out[name] = np.empty(v.size(), dtype=np.int32 if name == "pmtid" else np.float32)
        if v.size():
            helpers = ROOT.acheron_golden
            (helpers.copy_ints if name == "pmtid" else helpers.copy_floats)(v, out[name])
    return out


def _bytes_of(ROOT, buf) -> bytes:
    out = np.empty(buf.Length(), dtype=np.uint8)
    ROOT.acheron_golden.copy_out(buf, out)
    return out.tobytes()


def root_write(ROOT, obj, framing: str = "buffer", set_length: bool = True) -> bytes:
    """The bytes ROOT writes for obj: a bare TBufferFile (WriteObjectAny) or a
    TMessage(kMESS_OBJECT) (WriteObject; SetLength as TSocket::Send does)."""
    if framing == "buffer":
        buf = ROOT.TBufferFile(ROOT.TBuffer.kWrite)
        if buf.WriteObjectAny(obj, ROOT.ChromaPhotonList.Class()) != 1:
            raise RuntimeError("TBufferFile::WriteObjectAny failed")
        return _bytes_of(ROOT, buf)
    msg = ROOT.acheron_golden.Message(ROOT.kMESS_OBJECT)
    msg.WriteObject(obj)
    if set_length:
        msg.set_length()
    return _bytes_of(ROOT, msg)


def root_read(ROOT, data: bytes, framing: str = "buffer"):
    """ROOT's reading of data (ReadObjectAny, through a TMessage for the
    message framing): a dict of arrays, or None if ROOT returned no object."""
    raw = np.frombuffer(bytearray(data), dtype=np.uint8)
    helpers = ROOT.acheron_golden
    obj = (helpers.read_buffer if framing == "buffer" else helpers.read_message)(raw, len(data))
    if not obj:
        return None
    ROOT.SetOwnership(obj, True)  # ReadObjectAny allocated it; Python deletes it
    arrays = from_root(ROOT, obj)
    arrays["unique_id"] = int(obj.GetUniqueID())
    arrays["bits"] = int(obj.TestBits(0x00FFFFFF))  # the bits a sender controls
    return arrays


ERROR_TEXT = "invalid_argument: wrong class 'TH1F' (expected ChromaPhotonList)"
LONG_ERROR_TEXT = "resource_exhausted: " + "0123456789" * 30


def root_write_error(ROOT, text: str, framing: str = "buffer") -> bytes:
    """The bytes ROOT writes for a TObjString holding text (the error reply)."""
    obj = ROOT.TObjString(text)
    if framing == "buffer":
        buf = ROOT.TBufferFile(ROOT.TBuffer.kWrite)
        if buf.WriteObjectAny(obj, ROOT.TObjString.Class()) != 1:
            raise RuntimeError("TBufferFile::WriteObjectAny failed")
        return _bytes_of(ROOT, buf)
    msg = ROOT.acheron_golden.Message(ROOT.kMESS_OBJECT)
    msg.WriteObject(obj)
    msg.set_length()
    return _bytes_of(ROOT, msg)


def error_cases():
    """(file name, text, framing) of every stored error reply."""
    yield "error_buffer.bin", ERROR_TEXT, "buffer"
    yield "error_message.bin", ERROR_TEXT, "message"
    yield "error_long_buffer.bin", LONG_ERROR_TEXT, "buffer"


def golden_cases():
    """(file name, arrays, framing, write options) of every stored file."""
    for n in SMALL_SIZES:
        yield f"buffer_{n}.bin", field_values(n), "buffer", {}
        yield f"message_{n}.bin", field_values(n), "message", {}
    yield "message_nolength_1.bin", field_values(1), "message", {"set_length": False}
    yield "buffer_edge.bin", edge_values(), "buffer", {}
    yield "buffer_flags_1.bin", field_values(1), "buffer", {"unique_id": 0x1234, "bits": 0x8}
    yield "buffer_referenced_1.bin", field_values(1), "buffer", {"bits": 0x10}


def write_case(ROOT, arrays, framing, options) -> bytes:
    obj = to_root(ROOT, arrays, options.get("unique_id", 0), options.get("bits", 0))
    return root_write(ROOT, obj, framing, options.get("set_length", True))


def large_digests(ROOT) -> dict:
    arrays = field_values(LARGE_SIZE)
    return {f"{framing}_{LARGE_SIZE}":
            hashlib.sha256(write_case(ROOT, arrays, framing, {})).hexdigest()
            for framing in ("buffer", "message")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=OUT_DIR)
    parser.add_argument("--dictionary", choices=("aclic", "declare"), default="aclic")
    args = parser.parse_args(argv)
    ROOT = load_root(args.dictionary)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"ROOT {ROOT.gROOT.GetVersion()}, dictionary: {args.dictionary}")
    for name, arrays, framing, options in golden_cases():
        data = write_case(ROOT, arrays, framing, options)
        (args.out / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")
    for name, text, framing in error_cases():
        data = root_write_error(ROOT, text, framing)
        (args.out / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")
    lines = [f"{digest}  {name}" for name, digest in large_digests(ROOT).items()]
    (args.out / "large.sha256").write_text("\n".join(lines) + "\n")
    print("large.sha256:", *lines, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
