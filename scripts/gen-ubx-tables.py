#!/usr/bin/python3
"""Write UbxTables.cc, the UBX lookup tables of the wire library, from a TOML file.

    gen-ubx-tables.py INPUT.toml OUTPUT.cc

INPUT (src/acheron/wire/ubx_tables.toml) holds three arrays:

    cfg_keys = [ { name = "CFG_TP_FREQ_TP1", id = 0x40050024, type = "U4" }, ... ]
    messages = [ { class = 0x0D, id = 0x01, name = "TIM-TP" }, ... ]
    classes  = [ { class = 0x0D, name = "TIM" }, ... ]

The generator checks every entry, sorts each table the way the lookups in
Ubx.cc and UbxConfig.cc expect it (keys by name, messages by (class, id),
classes by class) and writes the C++ definitions declared in UbxTables.hh.
The build runs it (see src/acheron/wire/CMakeLists.txt); Debian's python3
(3.11, with tomllib) is all it needs. On bad input it prints what is wrong and
exits with status 1, writing nothing.
"""

import os
import re
import sys
import tempfile
import tomllib

# Value types of configuration keys (KeyType in UbxTables.hh) and their size in
# bytes; L is a one-byte boolean.
KEY_TYPES = {
    "L": 1, "U1": 1, "U2": 2, "U4": 4, "U8": 8, "I1": 1, "I2": 2, "I4": 4, "I8": 8,
    "E1": 1, "E2": 2, "E4": 4, "X1": 1, "X2": 2, "X4": 4, "X8": 8, "R4": 4, "R8": 8,
}

# Bits 28-30 of a key id give the size of its value: 1 one bit (stored in a
# byte, type L), 2 one byte, 3 two bytes, 4 four bytes, 5 eight bytes.
SIZE_BITS = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8}

CFG_NAME = re.compile(r"CFG_[A-Z0-9_]+")
# Message and class names go into C++ string literals: a safe alphabet keeps
# escaping out of the picture.
UBX_NAME = re.compile(r"[A-Za-z0-9_-]+")

TABLES = {
    "cfg_keys": {"name": str, "id": int, "type": str},
    "messages": {"class": int, "id": int, "name": str},
    "classes": {"class": int, "name": str},
}


class InputError(Exception):
    pass


def _where(table, index, entry):
    name = entry.get("name") if isinstance(entry, dict) else None
    label = f" ({name})" if isinstance(name, str) else ""
    return f"{table}[{index}]{label}"


def _check_fields(table, index, entry):
    fields = TABLES[table]
    where = _where(table, index, entry)
    if not isinstance(entry, dict):
        raise InputError(f"{where} is not a table (each entry is {{ {', '.join(fields)} }}); "
                         "write it as an inline table")
    missing = [f for f in fields if f not in entry]
    if missing:
        raise InputError(f"{where} has no {', '.join(missing)} (each entry needs "
                         f"{', '.join(fields)}); add the missing field")
    extra = sorted(set(entry) - set(fields))
    if extra:
        raise InputError(f"{where} has unknown field {', '.join(extra)} (an entry has only "
                         f"{', '.join(fields)}); remove it or fix its spelling")
    for field, kind in fields.items():
        value = entry[field]
        # bool is an int in Python; TOML true/false is never a valid id.
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InputError(f"{where}: {field} = {value!r} is not "
                             f"{'a string' if kind is str else 'an integer'}; "
                             f"write it as {'a quoted string' if kind is str else 'a number'}")


def _check_byte(where, field, value):
    if not 0 <= value <= 0xFF:
        raise InputError(f"{where}: {field} = {value:#x} does not fit in a byte (UBX class "
                         "and message ids are 0x00-0xFF); fix the number")


def _check_unique(table, entries, key, describe):
    seen = {}
    for index, entry in enumerate(entries):
        k = key(entry)
        if k in seen:
            raise InputError(f"{_where(table, index, entry)} repeats {describe(entry)} of "
                             f"{_where(table, seen[k], entries[seen[k]])} (each may appear "
                             "once); remove one of them")
        seen[k] = index


def check(data):
    """Validates the parsed TOML; returns (cfg_keys, messages, classes) sorted."""
    unknown = sorted(set(data) - set(TABLES))
    if unknown:
        raise InputError(f"unknown table {', '.join(unknown)} (the file holds "
                         f"{', '.join(TABLES)}); remove it or fix its spelling")
    tables = {}
    for table in TABLES:
        entries = data.get(table)
        if entries is None:
            raise InputError(f"no {table} array (the file needs {', '.join(TABLES)}); "
                             f"add `{table} = [ ... ]`")
        if not isinstance(entries, list) or not entries:
            raise InputError(f"{table} is not a non-empty array of inline tables (the C++ "
                             "tables may not be empty); list at least one entry")
        for index, entry in enumerate(entries):
            _check_fields(table, index, entry)
        tables[table] = entries

    keys = tables["cfg_keys"]
    for index, key in enumerate(keys):
        where = _where("cfg_keys", index, key)
        if not CFG_NAME.fullmatch(key["name"]):
            raise InputError(f"{where}: name {key['name']!r} is not CFG_ followed by upper-case "
                             "letters, digits and `_` (lookups normalise names to that "
                             "form); write it like CFG_TP_FREQ_TP1")
        if not 0 <= key["id"] <= 0xFFFFFFFF:
            raise InputError(f"{where}: id {key['id']:#x} does not fit in 32 bits (key ids are "
                             "four bytes); fix the number")
        if key["type"] not in KEY_TYPES:
            raise InputError(f"{where}: type {key['type']!r} is unknown (types are "
                             f"{' '.join(KEY_TYPES)}); use one of them")
        bits = (key["id"] >> 28) & 0x7
        size = SIZE_BITS.get(bits)
        if size is None:
            raise InputError(f"{where}: id {key['id']:#010x} has size bits {bits} (bits 28-30 "
                             "must be 1-5); fix the key id")
        if (bits == 1) != (key["type"] == "L") or size != KEY_TYPES[key["type"]]:
            raise InputError(f"{where}: type {key['type']} does not match id "
                             f"{key['id']:#010x}, whose size bits say "
                             f"{'one bit (type L)' if bits == 1 else f'{size} byte(s)'}; "
                             "fix the type or the id")
    _check_unique("cfg_keys", keys, lambda k: k["name"], lambda k: f"name {k['name']}")

    messages = tables["messages"]
    for index, msg in enumerate(messages):
        where = _where("messages", index, msg)
        _check_byte(where, "class", msg["class"])
        _check_byte(where, "id", msg["id"])
        if not UBX_NAME.fullmatch(msg["name"]):
            raise InputError(f"{where}: name {msg['name']!r} has characters other than "
                             "letters, digits, `_` and `-`; write it like TIM-TP")
    _check_unique("messages", messages, lambda m: (m["class"], m["id"]),
                  lambda m: f"class {m['class']:#04x} id {m['id']:#04x}")

    classes = tables["classes"]
    for index, cls in enumerate(classes):
        where = _where("classes", index, cls)
        _check_byte(where, "class", cls["class"])
        if not UBX_NAME.fullmatch(cls["name"]):
            raise InputError(f"{where}: name {cls['name']!r} has characters other than "
                             "letters, digits, `_` and `-`; write it like TIM")
    _check_unique("classes", classes, lambda c: c["class"], lambda c: f"class {c['class']:#04x}")

    # The order Ubx.cc and UbxConfig.cc rely on: binary search by name and by (class, id).
    # Names compare as bytes in C++; these are ASCII, so str order is the same.
    return (sorted(keys, key=lambda k: k["name"]),
            sorted(messages, key=lambda m: (m["class"], m["id"])),
            sorted(classes, key=lambda c: c["class"]))


def render(keys, messages, classes, source_name):
    lines = [
        f"// Generated by scripts/gen-ubx-tables.py from {source_name}: edit that",
        "// file, not this one. Configuration keys of u-blox generation 9+ receivers",
        "// (name, key id, value type) and UBX message identities (class, id, name).",
        "// Names and numbers from the u-blox interface descriptions as spelled by",
        "// pyubx2 1.3.0 (ubxtypes_configdb.py, ubxtypes_core.py). Names use `_` where",
        "// u-blox writes `-`.",
        '#include "acheron/wire/UbxTables.hh"',
        "",
        "namespace acheron::wire::ubx::detail {",
        "",
        "// Sorted by name.",
        "const CfgKey kCfgKeys[] = {",
    ]
    lines += [f'    {{"{k["name"]}", 0x{k["id"]:08X}, KeyType::{k["type"]}}},' for k in keys]
    lines += [
        "};",
        "const std::size_t kCfgKeyCount = sizeof(kCfgKeys) / sizeof(kCfgKeys[0]);",
        "",
        "// Sorted by (class, id).",
        "const MessageName kMessageNames[] = {",
    ]
    lines += [f'    {{0x{m["class"]:02X}, 0x{m["id"]:02X}, "{m["name"]}"}},' for m in messages]
    lines += [
        "};",
        "const std::size_t kMessageNameCount = sizeof(kMessageNames) / sizeof(kMessageNames[0]);",
        "",
        "const ClassName kClassNames[] = {",
    ]
    lines += [f'    {{0x{c["class"]:02X}, "{c["name"]}"}},' for c in classes]
    lines += [
        "};",
        "const std::size_t kClassNameCount = sizeof(kClassNames) / sizeof(kClassNames[0]);",
        "",
        "}  // namespace acheron::wire::ubx::detail",
    ]
    return "\n".join(lines) + "\n"


def generate(input_path, output_path):
    try:
        with open(input_path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise InputError(f"cannot read {input_path} ({e.strerror}); give the path of "
                         "ubx_tables.toml") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{input_path} is not valid TOML ({e}); fix the syntax") from None
    try:
        text = render(*check(data), source_name="src/acheron/wire/ubx_tables.toml")
    except InputError as e:
        raise InputError(f"{input_path}: {e}") from None
    # Write beside the target and rename, so an interrupted run never leaves
    # a half-written source for the compiler.
    directory = os.path.dirname(os.path.abspath(output_path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".UbxTables.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
        os.replace(tmp, output_path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv):
    if len(argv) != 3:
        print(f"usage: {os.path.basename(argv[0])} INPUT.toml OUTPUT.cc", file=sys.stderr)
        return 2
    try:
        generate(argv[1], argv[2])
    except InputError as e:
        print(f"gen-ubx-tables: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
