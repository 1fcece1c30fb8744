"""The client of remote objects: calls (with deadlines, progress and
cancellation) to a RemoteServer, C++ or Python. Its subscriptions to the
server's streams are in subscriptions.py."""

from __future__ import annotations

import itertools
import random
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import msgpack
import zmq

from .codec import (CANCEL, ERROR, FINAL, PARTIAL, PING, PONG, _HEAD, _HEAD_REQUEST, _U64, _remote_error,
                    _request, _value_of)
from .errors import CallCancelled, CallTimeout, Disconnected
from .sockets import _DONTWAIT, _RCVTIMEO, _recv, _recv_reply, _send
from .subscriptions import _Subscriber


class _Api:
    """Attribute access to calls: ``client.api.motor.move(1.0)`` calls "motor.move"."""

    def __init__(self, client: "RemoteClient", path: str = ""):
        self._client = client
        self._path = path

    def __getattr__(self, name: str) -> "_Api":
        if name.startswith("__"):
            raise AttributeError(name)
        return _Api(self._client, f"{self._path}.{name}" if self._path else name)

    def __call__(self, *args, **kwargs):
        if not self._path:
            raise TypeError("name a call: client.api.<call>(...)")
        return self._client.call_with(self._path, args, kwargs)

    def __dir__(self):
        return [c["name"] for c in self._client.list_calls()]


class RemoteClient(_Subscriber):
    """Calls a RemoteServer (C++ or Python) and subscribes to its streams.

    Every call has a deadline (``timeout`` seconds, default 3). On a timeout
    the socket is replaced, so the next call reconnects by itself; late
    replies are discarded by request id. Thread-safe (calls are serialised).
    """

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5555", *, stream_endpoint: Optional[str] = None,
                 timeout: float = 3.0, context: Optional[zmq.Context] = None,
                 curve: Optional[Tuple[bytes, bytes, bytes]] = None):
        """``curve``: (own public key, own secret key, server public key), Z85."""
        self.endpoint = endpoint
        self.timeout = timeout
        self._ctx = context or zmq.Context.instance()
        self._curve = curve
        self._lock = threading.Lock()
        self._sock: Optional[zmq.Socket] = None
        self._rcvtimeo = -1
        self._poller = zmq.Poller()
        self._ids = itertools.count(1)
        self._pack = msgpack.Packer(use_bin_type=True).pack  # used under self._lock
        self._token = random.getrandbits(63) or 1
        self._token_used = False
        self.reconnects = 0
        self._init_subscriptions(stream_endpoint)
        self.api = _Api(self)

    # -- calls --

    def _secure(self, s: zmq.Socket) -> None:
        if self._curve:
            pub, sec, server = self._curve
            s.curve_publickey, s.curve_secretkey, s.curve_serverkey = pub, sec, server

    def _new_socket(self) -> zmq.Socket:
        s = self._ctx.socket(zmq.DEALER)
        s.linger = 0
        s.immediate = 1
        s.setsockopt(zmq.HEARTBEAT_IVL, 1000)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
        self._secure(s)
        s.connect(self.endpoint)
        return s

    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            s = self._new_socket()
            self._sock = s
            self._rcvtimeo = -1
            self._poller = zmq.Poller()
            self._poller.register(s, zmq.POLLIN)
        return self._sock

    def _reset(self, linger: int = 0) -> None:
        if self._sock is not None:
            self._sock.close(linger)
            self._sock = None
        self.reconnects += 1

    def _send(self, frames: Sequence[Any], deadline: float, timeout: float) -> None:
        s = self._socket()
        while True:
            try:
                _send(s, frames, _DONTWAIT)
                return
            except zmq.Again:
                left = deadline - time.monotonic()
                if left <= 0 or not s.poll(int(left * 1000) + 1, zmq.POLLOUT):
                    self._reset()
                    raise Disconnected(f"no connection to {self.endpoint} within {timeout:g} s "
                                       "(is the server running?)") from None

    def call(self, name: str, *args, **kwargs) -> Any:
        """Calls ``name`` with positional and keyword arguments. (A remote
        keyword argument that clashes with this signature can be passed
        through call_with.)"""
        return self.call_with(name, args, kwargs)

    def call_with(self, name: str, args: Sequence[Any] = (), kwargs: Optional[Dict[str, Any]] = None,
                  timeout: Optional[float] = None, on_progress: Optional[Callable[[Any], Any]] = None) -> Any:
        """Calls ``name``; raises RemoteException, CallTimeout or Disconnected.
        ``on_progress(value)`` receives the call's progress values (PARTIAL
        replies) in this thread; returning False cancels the call
        (CallCancelled is raised)."""
        timeout = self.timeout if timeout is None else timeout
        timeout_ms = int(timeout * 1000) or 1
        with self._lock:
            rid = next(self._ids)
            # The common case inline (plain values, no lock token): one
            # header map, one pack, one frame.
            frames = None
            if not self._token_used and not kwargs:
                try:
                    frames = [_HEAD_REQUEST + _U64.pack(rid) + self._pack(
                        {"meta": {"args": args} if args else {}, "method": name, "timeout_ms": timeout_ms})]
                except TypeError:
                    pass  # arrays, NumPy scalars, sets: _request handles them
            if frames is None:
                frames = _request(rid, name, args, kwargs, self._token if self._token_used else 0, timeout_ms,
                                  self._pack)
            deadline = time.monotonic() + timeout
            s = self._sock or self._socket()
            # The first wait is the call's whole timeout (the same value as
            # the last call's, so the option is rarely set), set before
            # sending so that nothing but the receive follows the send.
            wait_ms = timeout_ms + 1
            if wait_ms != self._rcvtimeo:
                s.setsockopt(_RCVTIMEO, wait_ms)
                self._rcvtimeo = wait_ms
            if len(frames) == 1:
                try:
                    s.send(frames[0], _DONTWAIT)
                except zmq.Again:
                    self._send(frames, deadline, timeout)
            else:
                self._send(frames, deadline, timeout)
            try:
                reply = _recv_reply(s)
            except zmq.Again:
                reply = None
                left = 0.0
            else:
                left = 1.0
            while True:
                if reply is not None and reply[1] == rid:
                    cmd, _, h, arrays = reply
                    if cmd == FINAL:
                        return _value_of(h, arrays)
                    if cmd == ERROR:
                        raise _remote_error(h)
                    if cmd == PARTIAL and on_progress is not None and on_progress(_value_of(h, arrays)) is False:
                        self._cancel(rid)
                        raise CallCancelled(f"call {name!r} was cancelled by its progress callback")
                # Not ours (a late reply to an earlier call) or progress: wait
                # for what is left of the deadline.
                if left > 0:
                    left = deadline - time.monotonic()
                if left > 0:
                    wait_ms = int(left * 1000) + 1
                    if wait_ms != self._rcvtimeo:
                        s.setsockopt(_RCVTIMEO, wait_ms)
                        self._rcvtimeo = wait_ms
                    try:
                        reply = _recv_reply(s)
                        continue
                    except zmq.Again:
                        left = 0
                self._cancel(rid)
                self._reset(100)  # lets the CANCEL leave
                raise CallTimeout(f"no reply to {name!r} from {self.endpoint} within {timeout:g} s")

    def _cancel(self, rid: int) -> None:
        if self._sock is not None:
            try:
                self._sock.send(_HEAD[CANCEL] + _U64.pack(rid), _DONTWAIT)
            except zmq.ZMQError:
                pass

    def progress_call(self, name: str, *args, **kwargs) -> "ProgressCall":
        """Starts ``name`` and returns a ProgressCall: iterate over it for
        the call's progress values, then read ``result``; ``cancel()`` (or
        leaving a ``with`` block early) stops the call on the server. It
        uses a socket of its own, so this client stays usable meanwhile."""
        return ProgressCall(self, name, args, kwargs, self.timeout)

    def ping(self, timeout: Optional[float] = None) -> bool:
        timeout = self.timeout if timeout is None else timeout
        with self._lock:
            deadline = time.monotonic() + timeout
            rid = next(self._ids)
            try:
                self._send([_HEAD[PING] + _U64.pack(rid)], deadline, timeout)
            except Disconnected:
                return False
            sock = self._sock
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not self._poller.poll(int(left * 1000) + 1):
                    self._reset()
                    return False
                reply = _recv(sock, _DONTWAIT)
                if len(reply) == 1 and reply[0][:7] == _HEAD[PONG] and _U64.unpack_from(reply[0], 7)[0] == rid:
                    return True

    def list_calls(self) -> List[dict]:
        return self.call_with("$calls")

    def list_streams(self) -> List[dict]:
        return self.call_with("$streams")

    def info(self) -> dict:
        return self.call_with("$info")

    def enable_stream(self, name: str) -> None:
        self.call_with("$enable", [name])

    def disable_stream(self, name: str) -> None:
        self.call_with("$disable", [name])

    def remove_stream(self, name: str) -> None:
        self.call_with("$remove", [name])

    def lock(self, force: bool = False) -> bool:
        """Takes the single-writer lock; False if another client holds it.
        Calling it again renews the lease; every call of the holder renews it
        too, and after a whole lease without a request from the holder the
        lock lapses (so a client that died cannot lock everyone out)."""
        self._token_used = True
        return bool(self.call_with("$lock", [force]))

    def unlock(self) -> None:
        self.call_with("$unlock")

    def lock_status(self) -> dict:
        """{"held", "mine", "lease_ms", "remaining_ms"} of the server's write lock."""
        self._token_used = True
        return self.info().get("write_lock", {})

    def close(self) -> None:
        self._close_subscriptions()
        with self._lock:
            if self._sock is not None:
                self._sock.close(0)
                self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ProgressCall:
    """A call in progress (RemoteClient.progress_call): iterating yields its
    progress values (PARTIAL replies) until the result arrives, which
    ``result`` then holds (it raises the call's error, if any). ``cancel()``
    sends CANCEL; leaving a ``with`` block before the end cancels too."""

    def __init__(self, client: RemoteClient, name: str, args, kwargs, timeout: float):
        self.name = name
        self._endpoint = client.endpoint
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._done = False
        self._result: Any = None
        self._error: Optional[BaseException] = None
        self._sock = client._new_socket()
        frames = _request(1, name, args, kwargs, client._token if client._token_used else 0,
                          max(1, int(timeout * 1000)))
        while True:
            try:
                _send(self._sock, frames, _DONTWAIT)
                break
            except zmq.Again:
                left = self._deadline - time.monotonic()
                if left <= 0 or not self._sock.poll(int(left * 1000) + 1, zmq.POLLOUT):
                    self._close()
                    raise Disconnected(f"no connection to {self._endpoint} within {timeout:g} s "
                                       "(is the server running?)") from None

    def _close(self) -> None:
        self._done = True
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    def __iter__(self):
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        while True:
            left = self._deadline - time.monotonic()
            if left <= 0 or not self._sock.poll(int(left * 1000) + 1, zmq.POLLIN):
                self.cancel()
                self._error = CallTimeout(f"no reply to {self.name!r} from {self._endpoint} "
                                          f"within {self._timeout:g} s")
                raise self._error
            reply = _recv_reply(self._sock)
            if reply is None or reply[1] != 1:
                continue
            cmd, _, h, arrays = reply
            if cmd == PARTIAL:
                return _value_of(h, arrays)
            if cmd == FINAL:
                self._result = _value_of(h, arrays)
                self._close()
                raise StopIteration
            if cmd == ERROR:
                self._error = _remote_error(h)
                self._close()
                raise self._error

    @property
    def done(self) -> bool:
        return self._done

    @property
    def result(self) -> Any:
        """The call's value; waits for it (skipping progress values not read yet)."""
        for _ in self:
            pass
        if self._error is not None:
            raise self._error
        return self._result

    def cancel(self) -> None:
        """Stops the call on the server (no reply follows); idempotent."""
        if self._done:
            return
        try:
            self._sock.send(_HEAD[CANCEL] + _U64.pack(1), _DONTWAIT)
        except zmq.ZMQError:
            pass
        # The CANCEL must leave before the socket goes: give it a moment.
        self._sock.linger = 200
        self._close()
        self._error = CallCancelled(f"call {self.name!r} was cancelled")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cancel()

    def __del__(self):
        try:
            self.cancel()
        except Exception:
            pass
