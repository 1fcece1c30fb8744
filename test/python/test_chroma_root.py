"""ChromaPhotonList conformance with real ROOT, both directions, live.

Skipped where ROOT is not importable (Debian's python3 has none); run it in a
virtual environment with PyPI's ROOT wheel::

    /usr/bin/python3 -m venv --system-site-packages /tmp/venv-root
    /tmp/venv-root/bin/pip install ROOT .
    /tmp/venv-root/bin/python -m pytest -q test/python/test_chroma_root.py

(`make conformance` does this in build/venv.)

ROOT -> Acheron: bytes ROOT writes now (TBufferFile::WriteObjectAny, TMessage)
decode bit-exactly in acheron.chroma and equal the stored golden files (which
an ACLiC-compiled class wrote; here the class is declared in the
interpreter, so the two dictionaries are compared too).

Acheron -> ROOT: bytes acheron.chroma writes, in both framings and in the
older ROOT style (collection version 9, fBits with kIsOnHeap|kNotDeleted),
and every lenient form the decoder accepts, are read by ROOT's
ReadObjectAny (through a TMessage for that framing) into the same object.
The C++ encoder writes exactly the golden files (test_wire_chroma), which
ROOT reads here as well.
"""

import numpy as np
import pytest

ROOT = pytest.importorskip("ROOT")

from acheron import chroma  # noqa: E402
from acheron.chroma import Framing, Header  # noqa: E402

from chroma_layout import GOLDEN, build, golden_script, photons_of  # noqa: E402

SIZES = (0, 1, 3, golden_script.LARGE_SIZE)


@pytest.fixture(scope="module")
def root():
    return golden_script.load_root("declare")


def same_bits(arrays, photons) -> bool:
    return all(np.array_equal(np.asarray(arrays[k]).view(np.uint32),
                              getattr(photons, k).view(np.uint32)) for k in chroma.FIELDS)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("framing", ["buffer", "message"])
def test_root_writes_acheron_reads(root, n, framing):
    arrays = golden_script.field_values(n)
    data = golden_script.write_case(root, arrays, framing, {})
    photons, header = chroma.decode(data)
    assert same_bits(arrays, photons)
    assert header.framing is Framing(framing)
    assert chroma.encode(photons, header) == data  # and the encoder writes ROOT's bytes
    if n != golden_script.LARGE_SIZE:
        assert data == (GOLDEN / f"{framing}_{n}.bin").read_bytes()


@pytest.mark.parametrize("name,arrays,framing,options", list(golden_script.golden_cases()),
                         ids=[c[0] for c in golden_script.golden_cases()])
def test_root_writes_the_golden_files_again(root, name, arrays, framing, options):
    assert golden_script.write_case(root, arrays, framing, options) == (GOLDEN / name).read_bytes()


@pytest.mark.parametrize("name,arrays,framing,options", list(golden_script.golden_cases()),
                         ids=[c[0] for c in golden_script.golden_cases()])
def test_root_reads_the_golden_files(root, name, arrays, framing, options):
    back = golden_script.root_read(root, (GOLDEN / name).read_bytes(), framing)
    assert back is not None
    assert same_bits(back, photons_of(arrays))


def random_photons(n, seed):
    rng = np.random.default_rng(seed)
    arrays = {}
    for name in chroma.FLOAT_FIELDS:
        bits = rng.integers(0, 2**32, n, dtype=np.uint32)
        bits[(bits & 0x7F800000) == 0x7F800000] &= 0xBFFFFFFF
        arrays[name] = bits.view(np.float32)
    arrays["pmtid"] = rng.integers(-2**31, 2**31, n, dtype=np.int64).astype(np.int32)
    return photons_of(arrays)


@pytest.mark.parametrize("n", [0, 1, 1000, golden_script.LARGE_SIZE])
@pytest.mark.parametrize("framing", list(Framing))
@pytest.mark.parametrize("style", ["root6", "root5"])
def test_acheron_writes_root_reads(root, n, framing, style):
    photons = random_photons(n, n + 7)
    header = Header(framing=framing, unique_id=0x00ABCDEF)
    if style == "root5":
        header.collection_version, header.bits = 9, 0x03000000
    back = golden_script.root_read(root, chroma.encode(photons, header), framing.value)
    assert back is not None, "ROOT returned no object"
    assert same_bits(back, photons)
    assert back["unique_id"] == 0x00ABCDEF


@pytest.mark.parametrize("form", [
    dict(outer_count=False), dict(object_count=False), dict(vector_counts=False),
    dict(tobject_count=True), dict(framing="message", length_word=0),
    dict(outer_count=False, object_count=False, vector_counts=False),
    dict(bits=chroma.IS_REFERENCED),
], ids=["no-outer-count", "no-object-count", "no-vector-counts", "tobject-count",
        "message-length-0", "no-counts", "referenced"])
def test_root_reads_the_lenient_forms_acheron_accepts(root, form):
    photons = random_photons(5, 3)
    data = build(photons, **form)
    ours, _ = chroma.decode(data)
    assert ours.bitwise_equal(photons)
    back = golden_script.root_read(root, data, form.get("framing", "buffer"))
    assert back is not None
    assert same_bits(back, photons)


@pytest.mark.parametrize("name,text,framing", list(golden_script.error_cases()),
                         ids=[c[0] for c in golden_script.error_cases()])
def test_root_writes_the_error_replies_again(root, name, text, framing):
    assert golden_script.root_write_error(root, text, framing) == (GOLDEN / name).read_bytes()


@pytest.mark.parametrize("framing", list(Framing))
def test_root_tells_the_error_reply_from_a_list(root, framing):
    """What a Geant4 client sees: asking ROOT for a ChromaPhotonList gives
    no object; reading any object gives a TObjString with the text."""
    data = chroma.encode_error("resource_exhausted", "12000000 photons exceed the limit", framing)
    assert golden_script.root_read(root, data, framing.value) is None
    raw = np.frombuffer(bytearray(data), dtype=np.uint8)
    helpers = root.acheron_golden
    reader = helpers.read_any_buffer if framing is Framing.BUFFER else helpers.read_any_message
    obj = reader(raw, len(data))
    assert obj and obj.ClassName() == "TObjString"
    root.SetOwnership(obj, True)
    assert str(obj.GetString()) == "resource_exhausted: 12000000 photons exceed the limit"
    # And an empty list, by contrast, is a list.
    empty = chroma.encode(chroma.PhotonList(), Header(framing=framing))
    assert golden_script.root_read(root, empty, framing.value) is not None
