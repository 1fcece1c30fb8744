"""The server of remote objects: exports Python callables and streams with
the same protocol as the C++ RemoteServer. This module holds the sockets,
the I/O loop, call dispatch (call threads, per-client turns, queue bound, deadlines,
cancellation), the built-in calls and the write lock; streams are in
streams.py, relays in relay.py."""

from __future__ import annotations

import collections
import inspect
import logging
import os
import random
import threading
import time
import traceback as _traceback
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import zmq

from .calls import CallContext, _Call, _current, _describe
from .client import RemoteClient
from .codec import (CANCEL, FINAL, PING, PONG, PROTOCOL, REQUEST, _CMD, _HEAD, _MAX_FRAMES, _check_name, _error_frames,
                    _framing, _value_frames, decode_request)
from .errors import CallCancelled, ProtocolError, RemoteException
from .fairqueue import FairQueue
from .monitor import RemoteMonitor, ServerStats
from .relay import _Relays
from .sockets import _DONTWAIT, _recv, _send
from .streams import _Stream, _Streams

# Server defaults (docs/remote.md, "Limits").
DEFAULT_MAX_MESSAGE_SIZE = 256 << 20  # bytes per frame a client may send (ZMQ_MAXMSGSIZE)
DEFAULT_MAX_QUEUED = 256  # calls waiting for a call thread
# Requests whose header is larger are decoded by a call thread in their
# client's turn, not by the I/O thread (decoding costs about 0.1 us a byte).
_INLINE_HEADER_BYTES = 64 << 10
_MAX_BACKED_UP = 4096  # clients remembered as not reading their replies


def _command_of(msg: List[Any], compact: bool) -> int:
    """The command byte of a call message in either framing (0: unreadable)."""
    if compact:
        return msg[0][6]
    return msg[1][0] if len(msg) > 1 and len(msg[1]) == 1 else 0
_log = logging.getLogger("acheron.remote")


class RemoteServer(_Streams, _Relays):
    """Exports calls and streams; the same protocol as the C++ RemoteServer.

    One I/O thread owns the sockets; calls run on ``threads`` call threads
    (a slow call never blocks others or stream control), taken from each
    client's waiting calls in turn; each periodic stream has its own
    thread scheduled against absolute deadlines. A malformed or hostile
    request gets an ERROR reply and the server serves on (docs/remote.md,
    "Limits").
    """

    def __init__(self, rpc_bind: str = "tcp://127.0.0.1:5555",
                 stream_bind: str = "tcp://127.0.0.1:5556", *,
                 name: str = "remote", threads: int = 2, context: Optional[zmq.Context] = None,
                 curve: Optional[Tuple[bytes, bytes]] = None, heartbeat: float = 1.0,
                 write_lock: str = "advisory", lock_lease: float = 10.0, send_hwm: int = 1000,
                 slow_subscribers: str = "hold", max_queued: int = DEFAULT_MAX_QUEUED,
                 max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE,
                 http: Optional[str] = None):
        """``curve``: (public key, secret key) of the server, Z85.
        ``write_lock``: "advisory" or "required" for mutating calls and the
        stream management calls; ``lock_lease``: seconds without a request
        from the lock's holder after which the lock lapses.
        ``slow_subscribers``: "hold" (XPUB_NODROP: messages wait while a
        subscriber's queue of ``send_hwm`` is full, then the oldest are
        dropped and counted) or "drop" (ZeroMQ's default: only the slow
        subscriber misses messages). ``max_queued``: calls that may wait for
        one of the ``threads`` call threads; more get a "server busy" ERROR
        (resource_exhausted), refused to the client with the most waiting
        calls (a waiting call of its may make way for another client's).
        ``max_message_size``: the largest frame, in
        bytes, a client or subscriber may send (ZMQ_MAXMSGSIZE; ZeroMQ
        disconnects a peer that sends a larger one); None: no limit.
        ``http``: HOST:PORT (e.g. "127.0.0.1:0" for any free port) to serve
        the live status page and Prometheus /metrics on (docs/dashboard.md);
        None: none. Keep it on loopback: the page has no authentication.
        ``http_url`` is then the page's address."""
        if slow_subscribers not in ("hold", "drop"):
            raise ValueError(f"slow_subscribers must be 'hold' or 'drop', not {slow_subscribers!r}")
        if isinstance(max_queued, bool) or not isinstance(max_queued, int) or max_queued < 0:
            raise ValueError(f"max_queued must be a non-negative integer, not {max_queued!r}")
        if max_message_size is not None and (isinstance(max_message_size, bool)
                                             or not isinstance(max_message_size, int) or max_message_size < 1):
            raise ValueError(f"max_message_size must be a positive number of bytes or None, not {max_message_size!r}")
        self.name = name
        self._ctx = context or zmq.Context.instance()
        self._router = self._ctx.socket(zmq.ROUTER)
        self._xpub = self._ctx.socket(zmq.XPUB)
        for s in (self._router, self._xpub):
            s.linger = 0
            if max_message_size is not None:
                s.setsockopt(zmq.MAXMSGSIZE, max_message_size)
            if curve:
                s.curve_server = True
                s.curve_publickey, s.curve_secretkey = curve
        # Unroutable replies and full subscriber queues are reported, not lost silently.
        self._router.router_mandatory = 1
        self._xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self._xpub.sndhwm = send_hwm
        if slow_subscribers == "hold":
            self._xpub.setsockopt(zmq.XPUB_NODROP, 1)
        self._send_hwm = max(1, send_hwm)
        self._held: collections.deque = collections.deque()
        self._next_drop_warning = 0.0
        self._router.bind(rpc_bind)
        self._xpub.bind(stream_bind)
        self.rpc_endpoint = self._router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.stream_endpoint = self._xpub.getsockopt_string(zmq.LAST_ENDPOINT)
        self.server_id = random.getrandbits(63) or 1
        self._hb_interval = heartbeat
        self._write_lock = write_lock
        self._lock_holder = 0
        self._lock_expiry = 0.0
        self._lock_lease = float(lock_lease)
        self._running: Dict[Tuple[bytes, bytes], CallContext] = {}
        self._calls: Dict[str, _Call] = {}
        self._streams: Dict[str, _Stream] = {}
        self._meta_lock = threading.Lock()
        self._outbox: collections.deque = collections.deque()
        self._commands: collections.deque = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        # Calls accepted and not finished: at most `threads` run and
        # max_queued wait, in one queue per client served in turn.
        self._threads = max(1, threads)
        self._max_queued = max_queued
        self._waiting = FairQueue(max_queued)
        self._calls_running = 0
        self._calls_cond = threading.Condition()
        self._call_threads: List[threading.Thread] = []
        # Clients whose queue of replies was full at the last reply (I/O thread only).
        self._backed_up: Dict[bytes, bool] = {}
        self._relays: List[Tuple[_Stream, zmq.Socket]] = []
        self._upstreams: List[RemoteClient] = []
        self._io: Optional[threading.Thread] = None
        self._stopping = False
        self._hb_seq = 0
        self._stats = ServerStats()
        # The status snapshot and metrics (for http=, or a front of one's own).
        self.monitor = RemoteMonitor(self)
        self.http_url: Optional[str] = None
        self._http = None
        if http is not None:
            from ..http_status import HttpFront
            try:
                self._http = HttpFront(http, [self.monitor])
            except BaseException:
                self._router.close(0)
                self._xpub.close(0)
                os.close(self._wake_r)
                os.close(self._wake_w)
                raise
            self.http_url = self._http.url

    # -- registration --

    def add_call(self, name: str, fn: Callable, doc: Optional[str] = None, mutating: bool = False) -> None:
        """Registers a callable under name; its signature and docstring are
        published by list_calls()."""
        _check_name("call", name)
        params, returns, variadic = _describe(fn)
        with self._meta_lock:
            if name in self._calls:
                raise ValueError(f"a call named {name!r} exists")
            self._calls[name] = _Call(fn, doc if doc is not None else (inspect.getdoc(fn) or ""),
                                      params, returns, variadic, mutating)

    def expose(self, obj: Any, prefix: Optional[str] = None, methods: Optional[Sequence[str]] = None,
               mutating: Sequence[str] = ()) -> List[str]:
        """Exports obj's public methods (or the listed ones) as
        ``prefix.method`` (just ``method`` if prefix is empty). Only these
        names are reachable: nothing else of obj or the server is."""
        names = methods if methods is not None else [
            n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None))]
        out = []
        for n in names:
            full = f"{prefix}.{n}" if prefix else n
            self.add_call(full, getattr(obj, n), mutating=n in mutating)
            out.append(full)
        return out

    def remove_call(self, name: str) -> bool:
        with self._meta_lock:
            return self._calls.pop(name, None) is not None

    def calls(self) -> List[dict]:
        with self._meta_lock:
            items = sorted(self._calls.items())
        return [{"name": n, "doc": c.doc, "params": c.params, "returns": c.returns, "mutating": c.mutating,
                 "variadic": c.variadic} for n, c in items]

    # -- lifecycle --

    def start(self) -> "RemoteServer":
        if self._io is None:
            self._io = threading.Thread(target=self._run_io, daemon=True, name="acheron-remote-io")
            self._io.start()
            for i in range(self._threads):
                t = threading.Thread(target=self._call_loop, daemon=True, name=f"acheron-call-{i}")
                t.start()
                self._call_threads.append(t)
            with self._meta_lock:
                periodic = [s for s in self._streams.values() if s.kind == "periodic"]
            for st in periodic:
                self._start_periodic(st)
            if self._http is not None:
                self._http.start()
                _log.info("status page on %s", self.http_url)
        return self

    def serve_forever(self) -> None:
        self.start()
        try:
            while self._io.is_alive():
                self._io.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        if self._http is not None:
            self._http.stop()
        with self._meta_lock:
            all_streams = list(self._streams.values())
        for st in all_streams:
            with st.cond:
                st.cond.notify_all()
        self._wake()
        if self._io is not None:
            self._io.join(5)
        for st in all_streams:
            if st.thread is not None:
                st.thread.join(5)
        with self._calls_cond:
            self._waiting.drain()  # no reply could leave any more
            self._calls_cond.notify_all()
        for t in self._call_threads:
            t.join(5)
        for u in self._upstreams:
            u.close()
        for _, s in self._relays:
            s.close(0)
        self._router.close(0)
        self._xpub.close(0)
        os.close(self._wake_r)
        os.close(self._wake_w)

    close = stop

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- internals --

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _command(self, fn: Callable[[], Any]) -> None:
        self._commands.append(fn)
        self._wake()

    def _reply(self, route: List[bytes], frames: List[Any]) -> None:
        try:
            _send(self._router, route + frames, _DONTWAIT)
        except zmq.Again:
            # The client's queue is full: it does not read its replies.
            # Its next requests are refused unread until a reply gets through.
            if len(self._backed_up) >= _MAX_BACKED_UP:
                self._backed_up.pop(next(iter(self._backed_up)))
            self._backed_up[route[0]] = True
            return
        except zmq.ZMQError:
            return  # the client is gone
        if self._backed_up:
            self._backed_up.pop(route[0], None)

    def _post_reply(self, route: List[bytes], frames: List[Any]) -> None:
        self._outbox.append((route, frames, None))
        self._wake()

    def _check_write(self, token: int, mutating: bool) -> None:
        with self._meta_lock:
            now = time.monotonic()
            if self._lock_holder and now >= self._lock_expiry:
                self._lock_holder = 0  # the lease lapsed
            if token and token == self._lock_holder:
                self._lock_expiry = now + self._lock_lease  # every request of the holder renews it
            if not mutating:
                return
            if self._lock_holder and self._lock_holder != token:
                raise PermissionError("another client holds the write lock (mutating call refused); wait for "
                                      "it to unlock or its lease to expire, or take it with lock(force=True)")
            if not self._lock_holder and self._write_lock == "required":
                raise PermissionError("this server requires the write lock for mutating calls and stream "
                                      "management; call lock() first")

    def _lock_status(self, token: int) -> dict:
        with self._meta_lock:
            now = time.monotonic()
            if self._lock_holder and now >= self._lock_expiry:
                self._lock_holder = 0
            held = bool(self._lock_holder)
            return {"held": held, "mine": held and self._lock_holder == token,
                    "lease_ms": int(self._lock_lease * 1000),
                    "remaining_ms": int((self._lock_expiry - now) * 1000) if held else 0}

    def _builtin(self, method: str, args: list, kwargs: dict, token: int) -> Any:
        def name_arg():
            if args:
                return args[0]
            if "name" in kwargs:
                return kwargs["name"]
            raise TypeError(f"{method}() missing required argument 'name'")

        self._check_write(token, False)  # renews the caller's lease
        if method == "$calls":
            return self.calls()
        if method == "$streams":
            return self.streams()
        if method == "$info":
            from .. import __version__
            return {"name": self.name, "version": __version__, "server_id": self.server_id,
                    "stream_endpoint": self.stream_endpoint, "protocol": 1,
                    "write_lock": self._lock_status(token)}
        if method in ("$enable", "$disable", "$remove"):
            # Stream management changes the server for every client: it
            # obeys the write lock as mutating calls do.
            self._check_write(token, True)
            if method == "$enable":
                return self.enable_stream(name_arg()) or True
            if method == "$disable":
                return self.disable_stream(name_arg()) or True
            return self.remove_stream(name_arg()) or True
        if method in ("$lock", "$unlock"):
            if not token:
                raise TypeError("the write lock needs a client token")
            with self._meta_lock:
                if method == "$unlock":
                    if self._lock_holder == token:
                        self._lock_holder = 0
                    return True
                force = bool(args[0]) if args else bool(kwargs.get("force", False))
                now = time.monotonic()
                if self._lock_holder and self._lock_holder != token and now < self._lock_expiry and not force:
                    return False
                self._lock_holder = token
                self._lock_expiry = now + self._lock_lease
                return True
        raise LookupError(f"no built-in call named {method!r}")

    _CODES = {TypeError: "invalid_argument", KeyError: "not_found", LookupError: "not_found",
              PermissionError: "permission_denied", TimeoutError: "deadline_exceeded",
              CallCancelled: "cancelled",
              NotImplementedError: "unimplemented"}

    @classmethod
    def _code(cls, e: BaseException) -> str:
        for t in type(e).__mro__:
            if t in cls._CODES:
                return cls._CODES[t]
        return "unknown"

    def _handle(self, frames: List[Any]) -> None:
        start = 2 if len(frames) > 1 and len(frames[1]) == 0 else 1
        route, msg = [bytes(f) for f in frames[:start]], frames[start:]
        self._stats.request(route[0])
        compact, rid, head = _framing(msg)
        if self._backed_up and route[0] in self._backed_up:
            # Running its calls would only make replies nobody reads (a
            # client flooding calls would take its turn of the call threads
            # and the interpreter for nothing). Cancels and pings are cheap.
            if _command_of(msg, compact) not in (CANCEL, PING):
                self._stats.refused("busy")
                self._reply(route, _error_frames(
                    rid, "resource_exhausted", "ServerBusy",
                    "server busy: this client does not read its replies (its queue is full); its calls "
                    "are refused until it reads them", compact=compact))
                return
        header = head if compact else (msg[4] if len(msg) > 4 and msg[1] == _CMD[REQUEST] else b"")
        if len(header) > _INLINE_HEADER_BYTES:
            # Decoding costs CPU in proportion to the header (up to 1 MiB):
            # a call thread does it in this client's turn, and this thread
            # reads the other clients' requests meanwhile.
            self._admit(route, rid, compact, ("decode", route, msg))
            return
        self._dispatch(route, msg, self._reply, True)

    def _dispatch(self, route: List[bytes], msg: List[Any], reply: Callable, io_thread: bool) -> bool:
        """Decodes and answers one request, or starts its call: queued in
        its client's turn (io_thread) or run here (a call thread that
        decoded it in that turn; returns True when it ran a call).
        ``reply`` sends an answer."""
        try:
            req = decode_request(msg)
        except Exception as e:  # ProtocolError; anything else is a gap in its checks, answered the same way
            compact, rid, _ = _framing(msg)
            if not isinstance(e, ProtocolError):
                _log.warning("remote server: a request could not be decoded (%s: %s)", type(e).__name__, e)
                e = ProtocolError(f"malformed request ({type(e).__name__}: {e})")
            self._stats.refused("malformed")
            reply(route, _error_frames(rid, "invalid_argument", "ProtocolError", str(e), compact=compact))
            return False
        rid, compact, method = req.rid, req.compact, req.method
        if req.command == PING:
            reply(route, [_HEAD[PONG] + rid] if compact else [PROTOCOL, _CMD[PONG], req.service])
            return False
        if req.command == CANCEL:
            self._cancel_running(route, rid)
            return False
        if method.startswith("$"):
            try:
                reply(route, _value_frames(
                    rid, FINAL, method, self._builtin(method, req.args, req.kwargs, req.token), compact))
            except Exception as e:
                reply(route, _error_frames(rid, self._code(e), type(e).__name__, str(e), compact=compact))
            return False
        with self._meta_lock:
            call = self._calls.get(method)
        if call is None:
            self._stats.refused("not_found")
            reply(route, _error_frames(rid, "not_found", "NotFound", f"no call named {method!r}", compact=compact))
            return False
        deadline = time.monotonic() + req.timeout_ms / 1000 if req.timeout_ms else None
        context = CallContext(self, route, rid, method, compact, deadline)
        job = ("call", context, call, req.args, req.kwargs, req.token)
        if io_thread:
            self._admit(route, rid, compact, job)
        else:
            self._running[(route[0], rid)] = context
            self._run_call(*job[1:])
            return True
        return False

    def _admit(self, route: List[bytes], rid: bytes, compact: bool, job: tuple) -> None:
        """Queues a call (or a request to decode) in its client's turn, or
        refuses it (I/O thread)."""
        with self._calls_cond:
            # Room for threads + max_queued calls in all; when it is full,
            # the client with the most waiting calls gives way.
            accepted, evicted = self._waiting.push(route[0], (route, rid, compact, job),
                                                   self._threads + self._max_queued - self._calls_running)
            if accepted:
                if job[0] == "call":
                    self._running[(route[0], rid)] = job[1]
                self._calls_cond.notify()
        for r_route, r_rid, r_compact, r_job in ([evicted] if evicted else []) + ([] if accepted else [
                (route, rid, compact, job)]):
            if accepted and r_job[0] == "call":
                self._running.pop((r_route[0], r_rid), None)
            self._stats.refused("busy")
            self._reply(r_route, _error_frames(
                r_rid, "resource_exhausted", "ServerBusy",
                f"server busy: {self._threads} calls are running and {self._max_queued} waiting (max_queued), "
                "the most of them this client's; retry later", compact=r_compact))

    def _call_loop(self) -> None:
        """A call thread: runs the waiting calls, each client's in turn."""
        while True:
            with self._calls_cond:
                while not self._stopping and not len(self._waiting):
                    self._calls_cond.wait()
                if self._stopping:
                    return
                _, _, _, job = self._waiting.pop()
                self._calls_running += 1
            if job[0] == "call":
                self._run_call(*job[1:])
                continue
            ran = False
            try:  # a large request, decoded in its client's turn
                ran = self._dispatch(job[1], job[2], self._post_reply, False)
            except Exception:
                _log.exception("remote server: a request could not be handled; serving on")
            if not ran:  # answered without a call
                with self._calls_cond:
                    self._calls_running -= 1

    def _cancel_running(self, route: List[bytes], rid: bytes) -> None:
        context = self._running.get((route[0], rid))
        if context is not None:
            context.cancel_requested = True

    def _run_call(self, context: CallContext, call: _Call, args, kwargs, token) -> None:
        rid, compact = context._rid, context._compact
        _current.context = context
        started = time.perf_counter()
        failed = True
        try:
            if context.deadline is not None and time.monotonic() > context.deadline:
                out = _error_frames(rid, "deadline_exceeded", "TimeoutError",
                                  "the call's deadline passed before it could start", compact=compact)
            else:
                self._check_write(token, call.mutating)
                value = call.fn(*args, **kwargs)
                if inspect.isgenerator(value):
                    value = self._drive(context, value)
                out = _value_frames(rid, FINAL, context.method, value, compact)
                failed = False
        except RemoteException as e:  # a relayed call: keep the upstream's code and type
            out = _error_frames(rid, e.code, e.type, e.remote_message, e.traceback, compact=compact)
        except Exception as e:
            out = _error_frames(rid, self._code(e), type(e).__name__, str(e), _traceback.format_exc(),
                              compact=compact)
        finally:
            _current.context = None
            self._stats.call_finished(call, time.perf_counter() - started, failed)
            self._running.pop((context._route[0], rid), None)
            with self._calls_cond:  # before the reply: the caller may call again at once
                self._calls_running -= 1
        if not context.cancel_requested:  # a cancelled call gets no reply
            self._post_reply(context._route, out)

    @staticmethod
    def _drive(context: CallContext, gen) -> Any:
        """Runs a generator call: each yielded value is a progress reply, the
        returned value the result; a cancel closes the generator."""
        while True:
            try:
                v = next(gen)
            except StopIteration as stop:
                return stop.value
            if context.cancelled:
                gen.close()
                context.check_cancelled()
            context.progress(v)

    def _run_io(self) -> None:
        next_hb = time.monotonic()
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._xpub, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        registered: List[zmq.Socket] = []
        while not self._stopping:
            self._sync_relay_sockets(poller, registered)
            now = time.monotonic()
            if now >= next_hb:
                self._heartbeat()
                next_hb = now + self._hb_interval
            self._flush_held()
            # XPUB never reports room for more: held messages are retried every millisecond.
            events = dict(poller.poll(1 if self._held else int((next_hb - now) * 1000) + 1))
            if self._wake_r in events:
                os.read(self._wake_r, 65536)
            while self._commands:
                self._commands.popleft()()
            while self._outbox:
                route, frames, st = self._outbox.popleft()
                if route is None:
                    self._send_stream(st, frames)
                else:
                    self._reply(route, frames)
            # What peers send is handled message by message; no message can
            # end this loop (each handler answers or drops what it cannot use).
            if self._router in events:
                for _ in range(64):
                    try:
                        frames = _recv(self._router, _DONTWAIT, small=7, limit=_MAX_FRAMES)
                    except zmq.Again:
                        break
                    try:
                        self._handle(frames)
                    except Exception:
                        _log.exception("remote server: a request could not be handled; serving on")
            if self._xpub in events:
                for _ in range(64):
                    try:
                        msg = self._xpub.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    try:
                        self._subscription(msg)
                    except Exception:
                        _log.exception("remote server: a subscription could not be handled; serving on")
            self._read_relays(events)
