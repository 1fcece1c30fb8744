"""ChromaPhotonList test helpers shared by test_chroma.py and
test_chroma_root.py: the golden-file script as a module (its field formulas
and the list of golden files) and an independent writer of the byte layout
with knobs for every variant ROOT reads and every corruption (mirroring the
C++ test's writer)."""

import importlib.util
import pathlib
import struct

from acheron import chroma
from acheron.chroma import PhotonList

REPO = pathlib.Path(__file__).resolve().parents[2]
GOLDEN = REPO / "test" / "data" / "chroma"


def _load_golden_script():
    spec = importlib.util.spec_from_file_location("make_chroma_golden",
                                                  REPO / "scripts" / "make-chroma-golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


golden_script = _load_golden_script()


def photons_of(arrays) -> PhotonList:
    return PhotonList(**{k: arrays[k] for k in chroma.FIELDS})


def build(photons: PhotonList, *, framing="buffer", length_word=None, what=chroma.MESS_OBJECT,
          outer_count=True, outer_delta=0, tag=chroma.NEW_CLASS_TAG, class_name=b"ChromaPhotonList",
          class_nul=True, object_count=True, object_delta=0, class_version=1, tobject_count=False,
          tobject_version=1, unique_id=0, bits=0, vector_counts=True, delta_member=0,
          vector_delta=0, collection_version=10, declared_length=None, length_member=0,
          trailing=b"") -> bytes:
    """The layout of docs/chroma.md written piece by piece; each keyword
    changes one thing from what encode() writes."""
    out = bytearray()
    if framing == "message":
        out += struct.pack(">II", 0, what)

    def reserve():
        out.extend(b"\0\0\0\0")
        return len(out)

    def patch(end_of_word, delta):
        out[end_of_word - 4:end_of_word] = struct.pack(
            ">I", (len(out) - end_of_word + delta) | chroma.BYTE_COUNT_MASK)

    outer = reserve() if outer_count else None
    out += struct.pack(">I", tag) + class_name + (b"\0" if class_nul else b"")
    obj = reserve() if object_count else None
    out += struct.pack(">H", class_version)
    if tobject_count:
        out += struct.pack(">I", chroma.BYTE_COUNT_MASK | 10)
    out += struct.pack(">HII", tobject_version, unique_id, bits)
    if bits & chroma.IS_REFERENCED:
        out += b"\0\0"
    for index, (name, values) in enumerate(photons.arrays().items()):
        count = reserve() if vector_counts else None
        length = declared_length if declared_length is not None and index == length_member \
            else len(values)
        out += struct.pack(">Hi", collection_version, length)
        out += values.astype(">i4" if name == "pmtid" else ">f4").tobytes()
        if count:
            patch(count, vector_delta if index == delta_member else 0)
    if obj:
        patch(obj, object_delta)
    if outer:
        patch(outer, outer_delta)
    out += trailing
    if framing == "message":
        out[0:4] = struct.pack(">I", len(out) - 4 if length_word is None else length_word)
    return bytes(out)
