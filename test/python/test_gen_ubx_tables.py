"""scripts/gen-ubx-tables.py: the UBX lookup tables of the wire library come
from src/acheron/wire/ubx_tables.toml. The generated C++ is checked by the C++
tests (test/wire/test_ubx.cc, test/gnss); these tests check the generator's
own promises: order of the input does not matter, and bad input is refused
with a message naming the entry, without writing the output."""

import random
import re
import subprocess
import sys
import tomllib

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "gen-ubx-tables.py"
DATA = ROOT / "src" / "acheron" / "wire" / "ubx_tables.toml"


def run(tmp_path, text=None, source=None):
    """Runs the generator on `text` (or on the file `source`); returns
    (process, output path)."""
    if source is None:
        source = tmp_path / "in.toml"
        source.write_text(text)
    out = tmp_path / "UbxTables.cc"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(source), str(out)],
                          capture_output=True, text=True, timeout=60)
    return proc, out


def toml_of(cfg_keys, messages, classes):
    def entry(d):
        parts = []
        for k, v in d.items():
            parts.append(f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v:#x}")
        return "  { " + ", ".join(parts) + " },"

    lines = []
    for name, entries in (("cfg_keys", cfg_keys), ("messages", messages),
                          ("classes", classes)):
        lines.append(f"{name} = [")
        lines += [entry(e) for e in entries]
        lines.append("]")
    return "\n".join(lines) + "\n"


KEY = {"name": "CFG_TP_FREQ_TP1", "id": 0x40050024, "type": "U4"}
MSG = {"class": 0x0D, "id": 0x01, "name": "TIM-TP"}
CLS = {"class": 0x0D, "name": "TIM"}


def test_repository_tables_generate_sorted_and_complete(tmp_path):
    proc, out = run(tmp_path, source=DATA)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    data = tomllib.loads(DATA.read_text())
    keys = re.findall(r'\{"(CFG_\w+)", 0x([0-9A-F]{8}), KeyType::(\w+)\}', text)
    assert len(keys) == len(data["cfg_keys"]) > 1000
    names = [k[0] for k in keys]
    assert names == sorted(names)  # Ubx.cc binary-searches by name
    messages = re.findall(r'\{0x([0-9A-F]{2}), 0x([0-9A-F]{2}), "([^"]+)"\}', text)
    assert len(messages) == len(data["messages"]) > 200
    ids = [(int(c, 16), int(i, 16)) for c, i, _ in messages]
    assert ids == sorted(ids)  # and by (class, id)
    assert ("0D", "01", "TIM-TP") in messages
    assert ("CFG_TP_FREQ_TP1", "40050024", "U4") in keys


def test_input_order_does_not_change_the_output(tmp_path):
    data = tomllib.loads(DATA.read_text())
    rng = random.Random(7)
    for table in data.values():
        rng.shuffle(table)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shuffled, out_a = run(tmp_path / "a", toml_of(**data))
    original, out_b = run(tmp_path / "b", source=DATA)
    assert shuffled.returncode == 0 and original.returncode == 0
    assert out_a.read_bytes() == out_b.read_bytes()


def test_keys_sharing_an_id_keep_name_order(tmp_path):
    # Two names for one id: find_key(id) returns the first in name order.
    keys = [{"name": "CFG_B_ALIAS", "id": 0x10340014, "type": "L"},
            {"name": "CFG_A_ALIAS", "id": 0x10340014, "type": "L"}]
    proc, out = run(tmp_path, toml_of(keys, [MSG], [CLS]))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.index("CFG_A_ALIAS") < text.index("CFG_B_ALIAS")


@pytest.mark.parametrize("cfg_keys, messages, classes, message", [
    ([KEY, dict(KEY, id=0x40050025)], [MSG], [CLS],
     r"cfg_keys\[1\] \(CFG_TP_FREQ_TP1\) repeats name CFG_TP_FREQ_TP1 of cfg_keys\[0\]"),
    ([dict(KEY, type="U2")], [MSG], [CLS],
     r"cfg_keys\[0\] \(CFG_TP_FREQ_TP1\): type U2 does not match id 0x40050024"),
    ([dict(KEY, type="L")], [MSG], [CLS], r"type L does not match id"),
    ([dict(KEY, type="Q4")], [MSG], [CLS], r"type 'Q4' is unknown"),
    ([dict(KEY, id=0x70050024)], [MSG], [CLS], r"has size bits 7 \(bits 28-30 must be 1-5\)"),
    ([dict(KEY, id=0x140050024)], [MSG], [CLS], r"does not fit in 32 bits"),
    ([dict(KEY, name="CFG-TP-FREQ")], [MSG], [CLS], r"name 'CFG-TP-FREQ' is not CFG_"),
    ([KEY], [MSG, dict(MSG, name="TIM-TP2")], [CLS],
     r"messages\[1\] \(TIM-TP2\) repeats class 0x0d id 0x01 of messages\[0\] \(TIM-TP\)"),
    ([KEY], [dict(MSG, id=0x100)], [CLS], r"messages\[0\] \(TIM-TP\): id = 0x100 does not fit"),
    ([KEY], [dict(MSG, name="TIM TP")], [CLS], r"has characters other than"),
    ([KEY], [MSG], [CLS, dict(CLS, name="TIM2")], r"classes\[1\] \(TIM2\) repeats class 0x0d"),
    ([KEY], [MSG], [dict(CLS, **{"class": 0x1FF})], r"class = 0x1ff does not fit in a byte"),
])
def test_bad_entries_are_refused(tmp_path, cfg_keys, messages, classes, message):
    proc, out = run(tmp_path, toml_of(cfg_keys, messages, classes))
    assert proc.returncode == 1
    assert re.search(message, proc.stderr), proc.stderr
    assert proc.stderr.startswith("gen-ubx-tables: ")
    assert not out.exists()


@pytest.mark.parametrize("text, message", [
    ('cfg_keys = [ { name = "CFG_A", id = 0x10000001 } ]\nmessages = []\nclasses = []\n',
     r"cfg_keys\[0\] \(CFG_A\) has no type"),
    ('cfg_keys = [ { name = "CFG_A", id = 0x10000001, type = "L", size = 1 } ]\n',
     r"has unknown field size"),
    ('cfg_keys = [ { name = "CFG_A", id = "0x10000001", type = "L" } ]\n',
     r"id = '0x10000001' is not an integer"),
    ('cfg_keys = [ { name = "CFG_A", id = 0x10000001, type = "L" } ]\n', r"no messages array"),
    ('cfg_keys = []\nmessages = []\nclasses = []\n', r"cfg_keys is not a non-empty array"),
    ('cfg_keys = [ { name = "CFG_A", id = 0x10000001, type = "L" } ]\nmesages = []\n',
     r"unknown table mesages"),
    ('cfg_keys = [ { name = "CFG_A", id = 0x10000001, type = "L" }\n', r"is not valid TOML"),
])
def test_malformed_files_are_refused(tmp_path, text, message):
    proc, out = run(tmp_path, text)
    assert proc.returncode == 1
    assert re.search(message, proc.stderr), proc.stderr
    assert not out.exists()


def test_missing_input_and_wrong_arguments(tmp_path):
    proc, out = run(tmp_path, source=tmp_path / "absent.toml")
    assert proc.returncode == 1
    assert "cannot read" in proc.stderr and "absent.toml" in proc.stderr
    assert not out.exists()
    usage = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                           timeout=60)
    assert usage.returncode == 2 and "usage:" in usage.stderr
