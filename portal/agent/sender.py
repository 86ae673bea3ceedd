"""The agent's outbox: a bounded buffer of samples and the batches that carry them to the portal.

A portal outage fills the buffer; when it is full the oldest samples go first, a whole round at a time, and are
counted (``dropped``, also reported to the portal with every batch). A batch ends at the end of a round (the
samples of one instant) unless a single round is larger than a batch: the portal derives a MIG GPU's busy and
allocated state from its slices of the same instant in the same batch (portal/gpu/ingest.py). Samples leave the buffer only once the
portal has answered for them, so nothing is lost to a failed send, and a sample the portal stored is never
sent again. A batch whose answer was lost is sent again with the same id and samples: the portal stores
each sample once (its key is node, device and instant) and reports the rest as duplicates.

The credential is read for every request: a token file (the pod's projected ServiceAccount token, which
the kubelet replaces before it expires) is read again each time, so a rotated token is used at once. A
file that cannot be read is one more reason to keep the samples and try again.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

log = logging.getLogger("portal.agent")
SAMPLES_PATH = "/api/gpu/samples"


class SampleBuffer:
    def __init__(self, max_samples: int) -> None:
        if max_samples < 1:
            raise ValueError("the buffer must hold at least one sample")
        self.max_samples = max_samples
        self._samples: deque[dict] = deque()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, samples: list[dict]) -> None:
        for sample in samples:
            if len(self._samples) >= self.max_samples:
                gone = self._samples.popleft()
                self.dropped += 1
                while self._samples and self._samples[0]["at"] == gone["at"] != sample["at"]:  # the rest of its round
                    self._samples.popleft()
                    self.dropped += 1
            self._samples.append(sample)

    def oldest(self, count: int) -> list[dict]:
        """Up to ``count`` of the oldest samples, ending with a whole round where one fits."""
        taken = min(count, len(self._samples))
        if taken < len(self._samples):
            at = self._samples[taken]["at"]  # the first sample left out: its round is cut
            whole = taken
            while whole > 0 and self._samples[whole - 1]["at"] == at:
                whole -= 1
            taken = whole or taken  # a round larger than a batch goes in pieces
        return [self._samples[i] for i in range(taken)]

    def remove_oldest(self, count: int) -> None:
        for _ in range(min(count, len(self._samples))):
            self._samples.popleft()


class TokenUnreadable(Exception):
    """The token file cannot be read now (or is empty)."""


def token_file(path: Path | str) -> Callable[[], str]:
    """A credential read from ``path`` each time it is asked for."""
    path = Path(path)

    def read() -> str:
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise TokenUnreadable(f"cannot read the token file {str(path)!r}: {exc.strerror}") from None
        if not token:
            raise TokenUnreadable(f"the token file {str(path)!r} is empty")
        return token

    return read


def batch_id(node: str, samples: list[dict]) -> str:
    """The same samples make the same id, so a resent batch is recognisably the same batch."""
    digest = hashlib.sha256(node.encode())
    for sample in samples:
        digest.update(f"\0{sample['uuid']}\0{sample['at']}".encode())
    return digest.hexdigest()[:32]


@dataclass
class Sender:
    portal_url: str
    token: str | Callable[[], str]  # the token, or a reader (token_file) asked before every request
    node: str
    buffer: SampleBuffer
    max_batch: int = 2000
    timeout: float = 10.0
    transport: httpx.BaseTransport | None = None
    sent_batches: int = 0
    rejected: int = 0  # samples the portal refused as invalid (422); they would never be accepted
    duplicates: int = 0
    _client: httpx.Client | None = field(default=None, repr=False)
    _failing: bool = field(default=False, repr=False)

    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.portal_url, timeout=self.timeout, transport=self.transport)
        return self._client

    def _credential(self) -> str:
        return self.token() if callable(self.token) else self.token

    def flush(self) -> bool:
        """Send what the buffer holds, oldest first; False when the portal could not take it all now."""
        while len(self.buffer):
            samples = self.buffer.oldest(self.max_batch)
            body = {"node": self.node, "batch_id": batch_id(self.node, samples), "dropped_samples": self.buffer.dropped,
                    "samples": samples}
            try:
                headers = {"Authorization": f"Bearer {self._credential()}"}
            except TokenUnreadable as exc:
                self._trouble(f"{exc}; keeping {len(self.buffer)} samples")
                return False
            try:
                reply = self.client().post(SAMPLES_PATH, json=body, headers=headers)
            except httpx.HTTPError as exc:
                self._trouble(f"cannot reach the portal ({type(exc).__name__}); keeping {len(self.buffer)} samples")
                return False
            if reply.status_code == 422:  # never acceptable as sent: drop them rather than block the rest
                self.rejected += len(samples)
                log.error("the portal refused a batch of %d samples: %s", len(samples), reply.text[:300])
                self.buffer.remove_oldest(len(samples))
                continue
            if reply.status_code != 200:
                self._trouble(f"the portal answered {reply.status_code}; keeping {len(self.buffer)} samples")
                return False
            self.duplicates += int(reply.json().get("duplicates", 0))
            self.buffer.remove_oldest(len(samples))
            self.sent_batches += 1
            if self._failing:
                log.info("the portal takes samples again")
                self._failing = False
        return True

    def _trouble(self, message: str) -> None:
        if not self._failing:  # one line per outage, not one per interval
            log.warning(message)
        self._failing = True

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
