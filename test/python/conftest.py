import json
import os
import pathlib
import re
import shutil
import site
import subprocess
import sys
import time
from typing import Optional

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def build_dir() -> pathlib.Path:
    """The build tree whose `acheron` program the tests start."""
    return pathlib.Path(os.environ.get("ACHERON_BUILD_DIR", ROOT / "build" / "default"))


def installed_package_problem(module_file: str) -> Optional[str]:
    """Why the `acheron` package at module_file is not an installed one (None
    when it is): the tests run against the package `pip install .` installed
    into site-packages, never against python/ or a build tree."""
    where = pathlib.Path(module_file).resolve().parent
    sites = [pathlib.Path(p).resolve() for p in site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        sites.append(pathlib.Path(site.getusersitepackages()).resolve())
    if any(where.parent == s for s in sites):
        return None
    return (f"acheron was imported from {where}, not from an installed package "
            f"(site-packages: {', '.join(map(str, sites))}): install it (`make python-install`, "
            f"or `pip install .`) and run pytest without python/ on PYTHONPATH "
            f"(`make test-python` does both)")


def pytest_configure(config):
    try:
        import acheron
    except ImportError as e:
        raise pytest.UsageError(
            f"the acheron package is not importable ({e}): install it with `make "
            f"python-install` (or `pip install .`); `make test-python` does that") from e
    problem = installed_package_problem(acheron.__file__)
    if problem:
        raise pytest.UsageError(problem)


def acheron_binary() -> pathlib.Path:
    path = build_dir() / "apps" / "acheron" / "acheron"
    if not path.exists():
        pytest.fail(f"{path} is missing: build first (make build) or set ACHERON_BUILD_DIR")
    return path


class Ready:
    """A server's ready line read back (docs/cli.md, "Ready line"): the
    service, the version and the endpoints by name, in order."""

    def __init__(self, service: str, version: str, endpoints: dict):
        self.service = service
        self.version = version
        self.endpoints = endpoints

    def __getitem__(self, name: str) -> str:
        return self.endpoints[name]

    def __repr__(self):
        return f"Ready({self.service!r}, {self.version!r}, {self.endpoints!r})"


_READY_TEXT = re.compile(r"^acheron (\S+) (.+?) ready: (.+)$")


def parse_ready(line: str) -> Optional[Ready]:
    """The ready line in either --log-format: `acheron VERSION SERVICE ready:
    NAME ENDPOINT[, NAME ENDPOINT]...` or one JSON object {"ready": true,
    "service", "version", "endpoints"}; None for any other line."""
    line = line.rstrip("\r\n")
    if line.startswith("{"):
        try:
            j = json.loads(line)
        except ValueError:
            return None
        if not isinstance(j, dict) or j.get("ready") is not True:
            return None
        return Ready(j["service"], j["version"], dict(j["endpoints"]))
    m = _READY_TEXT.match(line)
    if not m:
        return None
    endpoints = {}
    for item in m.group(3).split(", "):
        name, _, where = item.partition(" ")
        if not name or not where or " " in where:
            return None
        endpoints[name] = where
    return Ready(m.group(2), m.group(1), endpoints)


READY = "ready line"  # Process(ready_pattern=READY): wait for the ready line


class Process:
    """A real `acheron` process on loopback that prints its ready line on
    stdout; always stopped (SIGTERM, then SIGKILL) when the test ends. By
    default it waits for the ready line (parsed into .ready; .endpoint is its
    first endpoint); a regex ready_pattern waits for a matching line instead
    (.match, .endpoint its first group); None waits for nothing."""

    def __init__(self, args, ready_pattern=READY, timeout=30.0):
        self.args = [str(acheron_binary())] + [str(a) for a in args]
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines = []
        deadline = time.monotonic() + timeout
        self.match = None
        self.ready = None
        if ready_pattern is None:
            return  # nothing to wait for
        pattern = None if ready_pattern is READY else re.compile(ready_pattern)
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.args} exited: {self.proc.stderr.read()}")
                continue
            self.lines.append(line)
            self.ready = self.ready or parse_ready(line)
            if pattern is None and self.ready:
                break
            m = pattern.search(line) if pattern else None
            if m:
                self.match = m
                break
        if self.match is None and (pattern is not None or self.ready is None):
            self.stop()
            raise RuntimeError(f"{self.args} did not start within {timeout} s")

    @property
    def endpoint(self) -> str:
        if self.match is not None:
            return self.match.group(1)
        return next(iter(self.ready.endpoints.values()))

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        return self.proc.returncode

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


@pytest.fixture
def acheron_process():
    started = []

    def start(*args, **kw):
        p = Process(list(args), **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def make_pki(d: pathlib.Path) -> pathlib.Path:
    """A throwaway PKI made with the openssl command: ca.pem, a server
    certificate for localhost and 127.0.0.1 (server.pem/.key) and a client
    certificate (client.pem/.key) signed by it, and an unrelated other_ca.pem."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not available")
    d.mkdir(parents=True, exist_ok=True)
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        ["req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=acheron-test-ca"],
        ["req", "-x509", *key, "-keyout", "other.key", "-out", "other_ca.pem", "-days", "2",
         "-subj", "/CN=acheron-other-ca"],
        ["req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem"],
        ["req", *key, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=acheron-client"],
        ["x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-out", "client.pem"],
    ]
    for step in steps:
        subprocess.run(["openssl", *step], cwd=d, check=True, capture_output=True, timeout=30)
    return d
