#!/usr/bin/env bash
# Runs PANOSETI's own DaqData test suite (panoseti_grpc tests/daq_data,
# unchanged) against `acheron daq serve`.
#
#   scripts/run-daq-upstream-tests.sh /path/to/panoseti_grpc [pytest args, e.g. -q -k NAME]
#
# The upstream checkout is copied into a temporary directory (the tests and
# the simulator write there); nothing of it enters this repository. What is
# swapped, by a pytest plugin generated below, is only what cannot run
# unchanged on Debian or what starts the server:
#   - daq_data.server.serve (the fixtures' in-process Python server) becomes a
#     coroutine that runs `acheron daq serve --config <the test's config>
#     --bind <its unix socket>` (no TCP) as a process and stops it with SIGTERM when the fixture's
#     shutdown event is set;
#   - the gRPC stubs are regenerated from upstream's .proto with Debian's
#     grpc_tools (the shipped ones need protobuf >= 6.31);
#   - json_format.MessageToDict accepts protobuf >= 5.26's
#     always_print_fields_with_no_presence (3.21 calls it
#     including_default_value_fields);
#   - stand-ins for modules Debian does not package and the client does not
#     need on these paths: grpc_reflection, watchfiles, redis.
# Needs: python3-pytest, python3-pytest-asyncio, python3-grpcio,
# python3-grpc-tools, python3-numpy, python3-pandas, python3-rich,
# python3-psutil, python3-netifaces (scripts/install-deps.sh).
# Environment: ACHERON (default build/default/apps/acheron/acheron).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
upstream="${1:?usage: $0 /path/to/panoseti_grpc [pytest args...]}"
shift
acheron="$(realpath "${ACHERON:-$here/build/default/apps/acheron/acheron}")"
[[ -x "$acheron" ]] || { echo "no acheron binary at $acheron (build it or set ACHERON)" >&2; exit 2; }
[[ -d "$upstream/tests/daq_data" && -d "$upstream/daq_data" ]] ||
  { echo "$upstream does not look like a panoseti_grpc checkout (no tests/daq_data)" >&2; exit 2; }

work="$(mktemp -d /tmp/acheron_daq_upstream.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cp -a "$upstream"/. "$work"/
cd "$work"
/usr/bin/python3 -m grpc_tools.protoc -Iprotos --python_out=daq_data --grpc_python_out=daq_data \
  protos/daq_data.proto
sed -i 's/^import daq_data_pb2 as/from . import daq_data_pb2 as/' daq_data/daq_data_pb2_grpc.py

mkdir -p _acheron_shim/grpc_reflection/v1alpha _acheron_shim/watchfiles _acheron_shim/redis
touch _acheron_shim/grpc_reflection/__init__.py _acheron_shim/grpc_reflection/v1alpha/__init__.py
cat > _acheron_shim/grpc_reflection/v1alpha/proto_reflection_descriptor_database.py <<'PY'
class ProtoReflectionDescriptorDatabase:
    """Stand-in: Debian has no grpc_reflection; reflect_services() is not available."""
    def __init__(self, channel):
        self.channel = channel
    def get_services(self):
        raise RuntimeError("grpc_reflection is not installed")
PY
cat > _acheron_shim/grpc_reflection/v1alpha/reflection.py <<'PY'
SERVICE_NAME = "grpc.reflection.v1alpha.ServerReflection"
def enable_server_reflection(service_names, server):
    pass
PY
cat > _acheron_shim/watchfiles/__init__.py <<'PY'
async def awatch(*args, **kwargs):
    raise RuntimeError("watchfiles is not installed")
    yield
PY
cat > _acheron_shim/redis/__init__.py <<'PY'
class Redis:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("redis is not installed")
PY
cat > _acheron_shim/acheron_upstream_shim.py <<PY
"""pytest plugin: upstream's fixtures start acheron's DaqData server."""
import asyncio, json, os, signal, tempfile

from google.protobuf import json_format as _jf

_message_to_dict = _jf.MessageToDict
def _m2d(message, *args, always_print_fields_with_no_presence=False, **kwargs):
    if always_print_fields_with_no_presence:
        kwargs.setdefault("including_default_value_fields", True)
    return _message_to_dict(message, *args, **kwargs)
_jf.MessageToDict = _m2d

ACHERON = "$acheron"

async def serve(server_cfg, shutdown_event=None, in_main_thread=True):
    fd, path = tempfile.mkstemp(prefix="daq_server_cfg_", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(server_cfg, f)
    proc = await asyncio.create_subprocess_exec(ACHERON, "daq", "serve", "--config", path,
                                                "--bind", server_cfg.get("unix_domain_socket", "unix:///tmp/daq_data.sock"))
    try:
        waits = {asyncio.ensure_future(proc.wait())}
        if shutdown_event is not None:
            waits.add(asyncio.ensure_future(shutdown_event.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                proc.kill()
                await proc.wait()
        os.unlink(path)

import daq_data.server as _server  # noqa: E402
_server.serve = serve
PY
export PYTHONPATH="$work/_acheron_shim:$work"
rc=0
/usr/bin/python3 -m pytest -p acheron_upstream_shim tests/daq_data "$@" || rc=$?
exit $rc
