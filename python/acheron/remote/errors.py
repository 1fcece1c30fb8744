"""The exceptions of remote calls and of the protocol's decoders."""

from __future__ import annotations


class RemoteException(Exception):
    """The remote side raised: ``type`` is its exception type, ``code`` the
    status name (``not_found``, ``invalid_argument``, ``unknown``…)."""

    def __init__(self, code: str, type: str, message: str, traceback: str = ""):
        super().__init__(f"{type or code}: {message}")
        self.code = code
        self.type = type
        self.remote_message = message
        self.traceback = traceback


class CallTimeout(TimeoutError):
    """No reply within the call's deadline (the request was sent)."""


class Disconnected(ConnectionError):
    """The request could not be sent: no connection to the server."""


class CallCancelled(Exception):
    """The caller cancelled the call (its progress callback returned False,
    or ProgressCall.cancel())."""


class ProtocolError(ValueError):
    """A message that does not follow the protocol: the only error the
    decoders (decode_request, decode_reply, stream messages) raise."""


# --- values ------------------------------------------------------------------
