"""Customers for fault and load runs: real WebSocket clients that behave like the widget.

Each customer speaks docs/protocol.md the way `static/widget/supportdesk-widget.js` does: it
keeps what it has not seen stored in an outbox, says hello with the highest `seq` it has,
resends the outbox after every welcome (message frames are idempotent on `client_id`),
reconnects with back-off when the socket closes, and waits `retry_after` when the server
answers `unavailable` or `rate_limited`. Unlike the widget it does not hide duplicates: it
counts every stored event that arrives twice, so a run can assert there were none.
"""

import asyncio
import json
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException
from websockets.typing import Origin

# Statuses after which a ticket waits for a person (or the customer): routing is over.
SETTLED = frozenset({"queued", "assigned", "awaiting_customer", "in_review"})
# The widget's WELCOME_TIMEOUT_MS: a hello unanswered this long is a failed attempt.
WELCOME_TIMEOUT_SECONDS = 10.0


def http_json(
    method: str, url: str, body: dict | None = None, *, auth: str | None = None, timeout=10
) -> tuple[int, dict]:
    """One JSON request; the status and the decoded body (errors included)."""
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = auth
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, {"raw": raw[:200].decode("latin-1")}


async def conversation_open(base_url: str, *, deadline: float) -> dict:
    """POST conversations/, retried while the service answers 5xx or cannot be reached."""
    while True:
        try:
            status, body = await asyncio.to_thread(
                http_json, "POST", f"{base_url}/api/v1/conversations/", {}
            )
        except OSError:
            status, body = 0, {}
        if status == 201:
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"no conversation could be opened: {status} {body}")
        await asyncio.sleep(0.2 + random.random() * 0.3)


@dataclass
class Customer:
    """One customer of a run, with everything they sent and saw."""

    base_url: str  # http://127.0.0.1:PORT
    conversation: dict
    events: dict[int, dict] = field(default_factory=dict)  # seq → frame
    duplicates: int = 0  # stored events received again (the server must never resend one)
    outbox: dict[str, str] = field(default_factory=dict)  # client_id → text, until stored
    sent: dict[str, str] = field(default_factory=dict)  # every client_id → text
    connections: int = 0
    closes: list[int | None] = field(default_factory=list)  # close codes seen
    errors: list[dict] = field(default_factory=list)  # error frames
    drops: int = 0  # sessions that ended by an error (a close, a refused connection)
    caught_up_to: int | None = None  # the latest seq a final hello reported (catch_up)
    # For load runs: when each message was first sent and each stored event first arrived
    # (time.monotonic()), so a latency is measured from the send, whatever came in between.
    sent_at: dict[str, float] = field(default_factory=dict)  # client_id → first send
    seen_at: dict[int, float] = field(default_factory=dict)  # seq → arrival
    live: Any = field(default=None, repr=False)  # the welcomed socket while a session lasts
    _waiters: dict[str, asyncio.Future[None]] = field(default_factory=dict, repr=False)

    @property
    def last_seq(self) -> int:
        return max(self.events, default=0)

    @property
    def statuses(self) -> list[dict]:
        return [
            self.events[seq] for seq in sorted(self.events) if self.events[seq]["type"] == "status"
        ]

    def stored_client_ids(self) -> set[str]:
        return {
            frame["client_id"]
            for frame in self.events.values()
            if frame["type"] == "message" and frame.get("client_id")
        }

    def say(self, text: str) -> str:
        client_id = str(uuid.uuid4())
        self.outbox[client_id] = text
        self.sent[client_id] = text
        return client_id

    async def send(self, text: str) -> str:
        """Say `text` as the open widget does: at once on a welcomed socket, else it waits in
        the outbox for the next welcome. Returns its client_id."""
        client_id = self.say(text)
        if self.live is not None:
            # A socket closing now: the message stays in the outbox for the next welcome.
            with suppress(OSError, WebSocketException):
                await self._send(self.live, client_id, text)
        return client_id

    async def stored(self, client_id: str, *, deadline: float) -> None:
        """Return once the message `client_id` came back as a stored event (TimeoutError at
        the deadline): a paced customer's cue for its next message."""
        if client_id not in self.outbox:
            return
        waiter = self._waiters.setdefault(client_id, asyncio.get_running_loop().create_future())
        await asyncio.wait_for(waiter, max(0.0, deadline - time.monotonic()))

    async def run(self, until: Callable[["Customer"], bool], *, deadline: float) -> None:
        """Stay connected (reconnecting as the widget does) until `until(self)` holds and the
        outbox is empty, or the deadline passes (then raise TimeoutError)."""
        attempt = 0
        while not (until(self) and not self.outbox):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"conversation {self.conversation['id']}: last_seq {self.last_seq}, "
                    f"outbox {len(self.outbox)}, closes {self.closes[-5:]}"
                )
            try:
                await self._session(until, deadline=deadline)
                attempt = 0
            except (TimeoutError, OSError, WebSocketException):
                self.drops += 1
            if until(self) and not self.outbox:
                return
            # The widget's back-off (500 ms doubling, capped), shortened for test runs.
            await asyncio.sleep(min(2.0, 0.1 * 2**attempt) * (0.8 + random.random() * 0.4))
            attempt += 1

    async def _session(self, until: Callable[["Customer"], bool], *, deadline: float) -> None:
        url = self.base_url.replace("http://", "ws://") + "/ws/chat/"
        async with connect(
            url, origin=Origin(self.base_url), open_timeout=10, max_queue=None
        ) as ws:
            self.connections += 1
            await ws.send(
                json.dumps(
                    {
                        "type": "hello",
                        "conversation": self.conversation["id"],
                        "token": self.conversation["token"],
                        "last_seq": self.last_seq,
                    }
                )
            )
            welcomed = False
            opened = time.monotonic()
            try:
                while not (until(self) and not self.outbox):
                    if time.monotonic() > deadline:
                        return
                    if not welcomed and time.monotonic() - opened > WELCOME_TIMEOUT_SECONDS:
                        # As the widget: a socket that never says welcome (its hello met the
                        # database down, say) counts as a failed attempt: connect again.
                        raise TimeoutError("no welcome")
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 1.0)
                    except TimeoutError:
                        continue
                    frame = json.loads(raw)
                    if frame["type"] == "welcome":
                        welcomed = True
                        # Live before the outbox is read: whatever `send` says from now on
                        # goes out on this socket, and nothing said before is left behind.
                        self.live = ws
                        for client_id, text in list(self.outbox.items()):
                            await self._send(ws, client_id, text)
                    elif "seq" in frame:
                        self._store(frame)
                    elif frame["type"] == "error":
                        await self._on_error(ws, frame)
                    elif not welcomed:
                        continue
            finally:
                self.live = None
                self.closes.append(ws.close_code)

    async def catch_up(self, *, attempts: int = 8) -> int:
        """Say hello once more and read up to the conversation's latest event (what an open
        widget would have shown by now): `caught_up_to` is that latest seq, or None when no
        attempt got through. Returns how many events that added."""
        before = len(self.events)
        for attempt in range(attempts):
            try:
                self.caught_up_to = await self._catch_up()
                break
            except (OSError, WebSocketException):  # closed for a resync, or slow: again
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
        return len(self.events) - before

    async def _catch_up(self) -> int:
        url = self.base_url.replace("http://", "ws://") + "/ws/chat/"
        async with connect(url, origin=Origin(self.base_url), open_timeout=30) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "hello",
                        "conversation": self.conversation["id"],
                        "token": self.conversation["token"],
                        "last_seq": self.last_seq,
                    }
                )
            )
            latest = None
            while latest is None or self.last_seq < latest:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if frame["type"] == "welcome":
                    latest = frame["seq"]
                elif "seq" in frame:
                    self._store(frame)
            return latest

    def _store(self, frame: dict) -> None:
        seq = frame["seq"]
        if seq in self.events:
            self.duplicates += 1
            return
        self.events[seq] = frame
        self.seen_at[seq] = time.monotonic()
        if frame["type"] == "message":
            client_id = frame.get("client_id") or ""
            self.outbox.pop(client_id, None)
            waiter = self._waiters.pop(client_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def _send(self, ws: Any, client_id: str, text: str) -> None:
        self.sent_at.setdefault(client_id, time.monotonic())
        await ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))

    async def _on_error(self, ws: Any, frame: dict) -> None:
        self.errors.append(frame)
        client_id = frame.get("client_id")
        if frame["code"] in ("unavailable", "rate_limited") and client_id in self.outbox:
            # As the widget: hold the message and send it again after retry_after (capped
            # here so a test run stays short).
            await asyncio.sleep(min(float(frame.get("retry_after", 1)), 1.0))
            await self._send(ws, client_id, self.outbox[client_id])


async def wait_until(predicate: Callable[[], bool], *, interval: float = 0.05) -> None:
    """Poll `predicate` until it holds: for state that other tasks change (what customers
    have seen), which no event announces."""
    while not predicate():  # noqa: ASYNC110 (no event to wait on: see above)
        await asyncio.sleep(interval)


def settled(customer: Customer) -> bool:
    """The customer's ticket has left routing (its latest status is a settled one)."""
    statuses = customer.statuses
    return bool(statuses) and statuses[-1]["status"] in SETTLED
