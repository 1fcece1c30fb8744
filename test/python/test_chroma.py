"""acheron.chroma: ChromaPhotonList bytes in NumPy, against the bytes real
ROOT wrote (test/data/chroma, scripts/make-chroma-golden.py), every decode
error, and property-based tests (hypothesis)."""

import hashlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from acheron import chroma
from acheron.chroma import CodecError, Framing, Header, PhotonList

from chroma_layout import GOLDEN, build, golden_script, photons_of


def golden(name: str) -> bytes:
    return (GOLDEN / name).read_bytes()


# ----------------------------------------------------------------- golden bytes

GOLDEN_CASES = list(golden_script.golden_cases())


@pytest.mark.parametrize("name,arrays,framing,options", GOLDEN_CASES,
                         ids=[c[0] for c in GOLDEN_CASES])
def test_root_bytes_decode_bit_exactly(name, arrays, framing, options):
    data = golden(name)
    assert chroma.detect_framing(data) is Framing(framing)
    photons, header = chroma.decode(data)
    assert photons.bitwise_equal(photons_of(arrays))
    assert header.framing is Framing(framing)
    assert header.collection_version == chroma.COLLECTION_VERSION
    assert header.unique_id == options.get("unique_id", 0)
    assert header.bits == options.get("bits", 0) & ~chroma.IS_REFERENCED
    # encode writes ROOT's bytes; the two golden files ROOT wrote differently
    # (no SetLength, a referenced object) come back in the canonical form.
    canonical = {"message_nolength_1.bin": "message_1.bin",
                 "buffer_referenced_1.bin": "buffer_1.bin"}.get(name, name)
    assert chroma.encode(photons, header) == golden(canonical)


def test_hundred_thousand_photons_match_roots_digest():
    digests = dict(reversed(line.split()) for line in
                   (GOLDEN / "large.sha256").read_text().splitlines())
    photons = photons_of(golden_script.field_values(100_000))
    for framing in Framing:
        data = chroma.encode(photons, Header(framing=framing))
        assert len(data) == chroma.encoded_size(100_000, framing)
        assert hashlib.sha256(data).hexdigest() == digests[f"{framing.value}_100000"]
        back, header = chroma.decode(data)
        assert back.bitwise_equal(photons) and header.framing is framing


def test_edge_values_keep_every_bit():
    photons, _ = chroma.decode(golden("buffer_edge.bin"))
    assert np.signbit(photons.x[0]) and photons.x[0] == 0
    assert photons.x.view(np.uint32)[1] == 1  # smallest subnormal
    assert photons.pmtid[0] == np.iinfo(np.int32).min
    assert photons.x.dtype == np.float32 and photons.x.dtype.isnative


# ------------------------------------------------------------------ round trips

def random_photons(n: int, seed: int) -> PhotonList:
    rng = np.random.default_rng(seed)
    arrays = {}
    for name in chroma.FLOAT_FIELDS:
        bits = rng.integers(0, 2**32, n, dtype=np.uint32)
        bits[(bits & 0x7F800000) == 0x7F800000] &= 0xBFFFFFFF  # clear one exponent bit: finite
        arrays[name] = bits.view(np.float32)
    arrays["pmtid"] = rng.integers(-2**31, 2**31, n, dtype=np.int64).astype(np.int32)
    return photons_of(arrays)


@pytest.mark.parametrize("n", [0, 1, 17, 10_007])
@pytest.mark.parametrize("framing", list(Framing))
def test_round_trip(n, framing):
    photons = random_photons(n, n)
    header = Header(framing=framing, collection_version=9, unique_id=77, bits=0x03000000)
    data = chroma.encode(photons, header)
    assert len(data) == chroma.encoded_size(n, framing)
    back, back_header = chroma.decode(data)
    assert back.bitwise_equal(photons)
    assert back_header == header


# ------------------------------------------------------- the layout, by hand

def field_photons(n: int) -> PhotonList:
    return photons_of(golden_script.field_values(n))


def test_builder_agrees_with_encode():
    p = random_photons(33, 5)
    assert build(p) == chroma.encode(p)
    assert build(p, framing="message") == chroma.encode(p, Header(framing=Framing.MESSAGE))


@pytest.mark.parametrize("form", [
    dict(outer_count=False), dict(object_count=False), dict(vector_counts=False),
    dict(tobject_count=True), dict(framing="message", length_word=0),
    dict(outer_count=False, object_count=False, vector_counts=False),
])
def test_reads_the_forms_root_reads(form):
    p = field_photons(5)
    back, _ = chroma.decode(build(p, **form))
    assert back.bitwise_equal(p)


# ----------------------------------------------------------------------- errors

def expect_error(data: bytes, text: str, code: str = "invalid_argument", **kw):
    with pytest.raises(CodecError) as info:
        chroma.decode(data, **kw)
    assert text in str(info.value)
    assert info.value.code == code
    assert isinstance(info.value, ValueError)


def test_truncated_at_every_length():
    for name in ("buffer_3.bin", "message_3.bin", "buffer_referenced_1.bin"):
        data = golden(name)
        for cut in range(len(data)):
            with pytest.raises(ValueError):
                chroma.decode(data[:cut])
    expect_error(b"", "empty")
    expect_error(golden("buffer_3.bin")[:-2], "truncated")
    expect_error(golden("message_3.bin")[:-1], "length word")
    bare = build(field_photons(3), outer_count=False, object_count=False, vector_counts=False)
    expect_error(bare[:-5], "truncated")


def test_wrong_class_name():
    p = field_photons(1)
    expect_error(build(p, class_name=b"ChromaPhotonLisT"), "wrong class 'ChromaPhotonLisT'")
    expect_error(build(p, class_name=b"TH1F"), "wrong class 'TH1F'")
    expect_error(build(p, class_name=b"A" * 100), "not NUL-terminated")
    with pytest.raises(ValueError):
        chroma.decode(build(p, class_name=b"Chroma", class_nul=False))


def test_unknown_versions():
    p = field_photons(1)
    expect_error(build(p, class_version=2), "class version 2")
    expect_error(build(p, tobject_version=3), "TObject version 3")
    expect_error(build(p, collection_version=0), "collection version 0")
    expect_error(build(p, collection_version=0x4000 | 10), "member-wise", "unimplemented")


def test_mismatched_vector_lengths():
    p = field_photons(3)
    p.polz = np.append(p.polz, np.float32(1))
    expect_error(build(p), "mismatched vector lengths: x has 3 elements, polz has 4")
    p = field_photons(3)
    p.pmtid = p.pmtid[:2]
    expect_error(build(p), "pmtid has 2")


def test_non_finite_values():
    p = field_photons(40)
    p.y[37] = np.nan
    expect_error(build(p), "y[37] is nan")
    p = field_photons(40)
    p.wavelength[3] = -np.inf
    expect_error(build(p), "wavelength[3] is -inf")


def test_photon_limit():
    data = golden("buffer_3.bin")
    chroma.decode(data, max_photons=3)
    expect_error(data, "3 photons exceed the limit of 2", "resource_exhausted", max_photons=2)
    p = field_photons(1)
    expect_error(build(p, vector_counts=False, declared_length=20_000_000),
                 "20000000 photons exceed the limit of 10000000", "resource_exhausted")
    expect_error(build(p, vector_counts=False, declared_length=9_000_000), "truncated")
    expect_error(build(p, vector_counts=False, declared_length=-1), "negative length -1")


@pytest.mark.parametrize("delta", [-1, 1, -4, 8])
@pytest.mark.parametrize("where", ["vector_delta", "object_delta", "outer_delta"])
def test_byte_counts_that_do_not_match(delta, where):
    expect_error(build(field_photons(3), delta_member=4, **{where: delta}), "byte count")


def test_byte_count_messages():
    p = field_photons(3)
    expect_error(build(p, delta_member=11, vector_delta=-2),
                 "byte count mismatch: pmtid declares 16 bytes, its content has 18")
    expect_error(build(p, outer_delta=1000), "object byte count")


def test_tags_other_than_a_new_class():
    expect_error(b"\0\0\0\0", "null object")
    p = field_photons(1)
    expect_error(build(p, tag=chroma.NULL_TAG), "null object")
    expect_error(build(p, tag=chroma.CLASS_MASK | 2), "class tag 0x80000002", "unimplemented")
    expect_error(build(p, tag=6), "object tag 0x6", "unimplemented")


def test_message_header_errors():
    p = field_photons(1)
    expect_error(build(p, framing="message", what=3), "not kMESS_OBJECT")
    expect_error(build(p, framing="message", what=chroma.MESS_OBJECT | chroma.MESS_ZIP),
                 "compressed", "unimplemented")
    expect_error(build(p, framing="message", length_word=12),
                 "length word 12 does not match the 217 bytes")


def test_trailing_bytes():
    p = field_photons(1)
    expect_error(build(p, outer_count=False, trailing=b"xyz"), "3 bytes follow the object")
    expect_error(build(p, trailing=b"xyz"), "follow the object")


def test_encode_errors():
    p = field_photons(2)
    p.polx = p.polx[:1]
    with pytest.raises(CodecError, match="polx has 1"):
        chroma.encode(p)
    p = field_photons(20)
    p.z[19] = np.nan
    with pytest.raises(CodecError, match=r"z\[19\] is nan"):
        chroma.encode(p)
    for version in (0, 0x4000):
        with pytest.raises(CodecError):
            chroma.encode(field_photons(1), Header(collection_version=version))


def test_encode_clears_the_referenced_bit():
    data = chroma.encode(field_photons(1), Header(bits=chroma.IS_REFERENCED | 0x8))
    assert chroma.decode(data)[1].bits == 0x8


def test_photon_list_coerces_dtypes():
    p = PhotonList(x=[1, 2], y=[0, 0], z=[0, 0], px=[1, 1], py=[0, 0], pz=[0, 0], polx=[0, 0],
                   poly=[1, 1], polz=[0, 0], t=[0.5, 1], wavelength=[400, 410], pmtid=[3, -1])
    assert p.x.dtype == np.float32 and p.pmtid.dtype == np.int32 and len(p) == 2
    back, _ = chroma.decode(chroma.encode(p))
    assert back.bitwise_equal(p)


# ------------------------------------------------------------- property-based

# database=None: no example directory in the work tree; failures print their input.
PROPERTY = settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
SEEDS = [golden(name) for name, *_ in GOLDEN_CASES]


def decode_or_value_error(data: bytes):
    """decode either succeeds or raises ValueError; a success re-encodes to
    bytes that decode to the same photons and header."""
    try:
        photons, header = chroma.decode(data, max_photons=1 << 20)
    except ValueError:
        return
    again, header2 = chroma.decode(chroma.encode(photons, header))
    assert again.bitwise_equal(photons) and header2 == header


@PROPERTY
@given(st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_value_error(data):
    decode_or_value_error(data)


@PROPERTY
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_root_bytes_raise_only_value_error(seed, data):
    buf = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["set", "cut", "insert"]))
        i = data.draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "set" and buf:
            buf[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del buf[i:i + data.draw(st.integers(1, 8))]
        else:
            buf[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    decode_or_value_error(bytes(buf))


finite_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def photon_lists(draw):
    n = draw(st.integers(0, 40))
    arrays = {name: draw(hnp.arrays(np.float32, n, elements=finite_f32))
              for name in chroma.FLOAT_FIELDS}
    arrays["pmtid"] = draw(hnp.arrays(np.int32, n))
    return photons_of(arrays)


@PROPERTY
@given(photon_lists(), st.sampled_from(list(Framing)), st.integers(1, chroma.MAX_VERSION),
       st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_valid_lists_round_trip(photons, framing, version, unique_id, bits):
    header = Header(framing=framing, collection_version=version, unique_id=unique_id, bits=bits)
    data = chroma.encode(photons, header)
    assert len(data) == chroma.encoded_size(len(photons), framing)
    back, back_header = chroma.decode(data)
    assert back.bitwise_equal(photons)
    assert back_header == Header(framing=framing, collection_version=version,
                                 unique_id=unique_id, bits=bits & ~chroma.IS_REFERENCED)


# ------------------------------------------------------------------ error reply

ERROR_CASES = list(golden_script.error_cases())


@pytest.mark.parametrize("name,text,framing", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_error_reply_is_roots_tobjstring(name, text, framing):
    code, _, message = text.partition(": ")
    assert chroma.encode_error(code, message, Framing(framing)) == golden(name)
    error = chroma.decode_error(golden(name))
    assert (error.code, error.message) == (code, message)
    with pytest.raises(CodecError, match="wrong class 'TObjString'"):
        chroma.decode(golden(name))
    for cut in range(len(golden(name))):
        with pytest.raises(CodecError):
            chroma.decode_error(golden(name)[:cut])


def test_a_list_is_never_an_error_reply():
    for name in ("buffer_0.bin", "buffer_1.bin", "message_0.bin"):
        with pytest.raises(CodecError, match="not a TObjString"):
            chroma.decode_error(golden(name))


def test_error_text_is_escaped_cut_and_read_back():
    error = chroma.decode_error(chroma.encode_error("aborted", "line\nbreak\0nul\\"))
    assert (error.code, error.message) == ("aborted", "line\\x0abreak\\x00nul\\x5c")
    error = chroma.decode_error(chroma.encode_error("internal", "a" * 5000, Framing.MESSAGE))
    assert error.message == "a" * (chroma.MAX_ERROR_TEXT - len("internal: ")) + "..."
    # A TObjString whose text names no status.
    data = chroma.encode_error("ok", "")
    assert data.endswith(b"ok: ")
    assert chroma.decode_error(data[:-4] + b"abcd") == chroma.ErrorReply("unknown", "abcd")
