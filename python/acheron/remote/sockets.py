"""Multipart messages on pyzmq sockets for the remote objects: large frames
without a copy, small ones copied (cheaper than pyzmq's zero-copy
bookkeeping). Public pyzmq API only."""

from __future__ import annotations

from typing import Any, List, Sequence

import zmq

from ..arrays import MAX_ARRAYS
from .codec import _REF_MARK, _reply_head

# Frames at least this large are received without a copy (pyzmq copies smaller ones anyway).
_ZERO_COPY_MIN = zmq.COPY_THRESHOLD
_RCVMORE = int(zmq.RCVMORE)
_SNDMORE = int(zmq.SNDMORE)
_DONTWAIT = int(zmq.DONTWAIT)
_RCVTIMEO = int(zmq.RCVTIMEO)


def _recv(socket: zmq.Socket, flags: int = 0, small: int = 5, limit: int = 0) -> List[Any]:
    """Receives a multipart message. The first ``small`` frames (protocol,
    command, ids, header) come as bytes; the array frames after them as
    zero-copy zmq.Frame objects when large (pyzmq copies small ones anyway,
    and a Frame object costs more than copying a few bytes). With a
    ``limit``, frames after the first limit + 1 are read and dropped: the
    message is invalid anyway and its decoder says so."""
    frames = [socket.recv(flags)]
    while socket.getsockopt(_RCVMORE):
        if limit and len(frames) > limit:
            socket.recv(copy=False)
        elif len(frames) < small:
            frames.append(socket.recv())
        else:
            f = socket.recv(copy=False)
            frames.append(f if len(f) >= _ZERO_COPY_MIN else f.bytes)
    return frames


def _send(socket: zmq.Socket, frames: Sequence[Any], flags: int = 0) -> None:
    """Sends a multipart message: large buffers without a copy, small ones
    copied (cheaper than pyzmq's zero-copy bookkeeping)."""
    last = len(frames) - 1
    for i, f in enumerate(frames):
        big = not isinstance(f, bytes) and memoryview(f).nbytes >= _ZERO_COPY_MIN
        socket.send(f, flags | (_SNDMORE if i < last else 0), copy=not big)


def _recv_reply(socket: zmq.Socket):
    """Receives one reply in the compact form on the client's DEALER:
    returns (command, request id, header map, frames) or None for a message
    that is not one; frames is None when the value needs no array frames.
    The array frames the header lists are read without asking ZeroMQ
    whether more follow (that question costs more than a small frame); a
    server that breaks the layout desynchronises the socket until its
    frames are skipped. Raises zmq.Again at the receive timeout."""
    first = socket.recv(0)
    head = _reply_head(first)
    if head is None:
        return None
    h = head[2]
    frames = None
    descs = h.get("arrays")
    if descs:
        frames = [first]
        for _ in range(len(descs) if isinstance(descs, list) and len(descs) <= MAX_ARRAYS else 0):
            f = socket.recv(0, copy=False)
            frames.append(f if len(f) >= _ZERO_COPY_MIN else f.bytes)
    elif _REF_MARK in first:
        frames = [first]  # array references without arrays: refused when the value is read
    return head[0], head[1], h, frames
