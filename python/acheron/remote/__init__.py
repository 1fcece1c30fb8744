"""Remote objects and streams (docs/remote.md): serve Python callables and
objects, call C++ or Python servers, subscribe to their streams.

Wire format: the native envelope (docs/protocol.md) for calls over
DEALER/ROUTER, and ``[name NUL][msgpack header][array frames…]`` for streams
over PUB/SUB. Values are MessagePack; NumPy arrays travel as raw frames
referenced from the value by the extension type 1 (a u32 index). Nothing is
pickled, in either direction.

Client::

    from acheron.remote import RemoteClient
    c = RemoteClient("tcp://127.0.0.1:5555")
    c.call("add", 1, 2)            # or c.api.add(1, 2)
    s = c.subscribe("camera", mode="queue", capacity=100)
    v = s.next(timeout=1.0)        # StreamValue(value, seq, wall_ns, mono_ns, ...)

Server::

    from acheron.remote import RemoteServer
    srv = RemoteServer("tcp://*:5555", "tcp://*:5556")
    srv.expose(motor, prefix="motor")              # motor.move, motor.position, ...
    srv.add_stream("position", 10.0, motor.position)
    srv.start()

The package, one module per job: codec (wire format, no sockets), sockets
(multipart I/O), client (calls), subscriptions (streams, client side),
server (I/O loop, call dispatch, write lock), calls (call registry and
context), streams (server streams), relay (relayed calls and streams),
errors.
"""

# Re-exported: the public names below, and the protocol constants and
# _request that tests and tools use.
from .client import ProgressCall, RemoteClient  # noqa: F401
from .codec import (ARRAY_EXT, CANCEL, COMPACT, ERROR, FINAL, HEARTBEAT_STREAM, PARTIAL,  # noqa: F401
                    PING, PONG, PROTOCOL, REQUEST, CallRequest, _request, decode_reply, decode_request)
from .calls import CallContext, current_call  # noqa: F401
from .errors import CallCancelled, CallTimeout, Disconnected, ProtocolError, RemoteException  # noqa: F401
from .server import DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_QUEUED, RemoteServer  # noqa: F401
from .streams import StreamWriter  # noqa: F401
from .subscriptions import StreamValue, Subscription, resolve_stream_endpoint  # noqa: F401


__all__ = [
    "RemoteClient",
    "RemoteServer",
    "RemoteException",
    "CallTimeout",
    "Disconnected",
    "CallCancelled",
    "CallContext",
    "ProgressCall",
    "current_call",
    "StreamValue",
    "Subscription",
    "StreamWriter",
    "ProtocolError",
    "CallRequest",
    "decode_request",
    "decode_reply",
]
