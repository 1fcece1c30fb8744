"""Calls waiting for a call thread, one queue per client, served in turn
(policy only: no threads or sockets). A client that sends calls faster
than the server runs them fills only its own queue: the next call to run
is taken from each waiting client in turn, and when the waiting room is
full a call of the client with the most waiting calls is the one refused,
so a flood from one client neither delays nor refuses the calls of
others beyond their turn."""

from __future__ import annotations

import collections
from typing import Any, Deque, Dict, Hashable, Optional, Tuple


class FairQueue:
    """Waiting calls keyed by client; at most ``capacity`` in all."""

    def __init__(self, capacity: int):
        self.capacity = max(0, capacity)
        self._queues: Dict[Hashable, Deque[Any]] = {}
        self._turns: Deque[Hashable] = collections.deque()  # clients with waiting calls, in turn order
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def waiting(self, client: Hashable) -> int:
        q = self._queues.get(client)
        return len(q) if q else 0

    def push(self, client: Hashable, item: Any, room: Optional[int] = None) -> Tuple[bool, Optional[Any]]:
        """Queues item for client. Returns (accepted, evicted): when the
        ``room`` (default: capacity) is full, the newest call of the client
        with the most waiting calls makes way (evicted, to be refused by
        the caller), unless no other client has more waiting calls than
        this one would; then item is refused (accepted False)."""
        evicted = None
        if self._size >= (self.capacity if room is None else room):
            mine = self.waiting(client)
            longest = max(self._queues, key=lambda c: len(self._queues[c]), default=None)
            if longest is None or longest == client or len(self._queues[longest]) <= mine + 1:
                return False, None
            evicted = self._queues[longest].pop()
            self._size -= 1
            if not self._queues[longest]:
                del self._queues[longest]
                self._turns.remove(longest)
        q = self._queues.get(client)
        if q is None:
            q = self._queues[client] = collections.deque()
            self._turns.append(client)
        q.append(item)
        self._size += 1
        return True, evicted

    def pop(self) -> Optional[Any]:
        """The next call to run: the oldest of the client whose turn it is."""
        if not self._turns:
            return None
        client = self._turns.popleft()
        q = self._queues[client]
        item = q.popleft()
        self._size -= 1
        if q:
            self._turns.append(client)
        else:
            del self._queues[client]
        return item

    def drain(self):
        """Removes and returns every waiting call (the server is stopping)."""
        items = [i for q in self._queues.values() for i in q]
        self._queues.clear()
        self._turns.clear()
        self._size = 0
        return items
