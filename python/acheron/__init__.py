"""Acheron: scientific resources on the network.

Python clients for Acheron services. Runs on Debian's python3 with
python3-zmq, python3-msgpack and python3-numpy.
"""

from .envelope import (
    CLIENT_PROTOCOL,
    Command,
    DecodeError,
    Envelope,
    RemoteError,
    decode,
    encode,
)

from . import photon
from .photon import PhotonClient

from . import remote
from .remote import RemoteClient, RemoteServer

__version__ = "0.1.0"

__all__ = [
    "CLIENT_PROTOCOL",
    "Command",
    "DecodeError",
    "Envelope",
    "RemoteError",
    "decode",
    "encode",
    "PhotonClient",
    "photon",
    "remote",
    "RemoteClient",
    "RemoteServer",
    "__version__",
]
