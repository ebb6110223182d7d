"""The console provider, for development: prints each payload as one JSON line."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ..core.push import DELIVERED, Device, PushJob, SendResult, console_text
from ..core.webpush import webpush_payload


class ConsoleProvider:
    name = "console"

    def __init__(self, out: TextIO | None = None):
        self._out = out

    async def send(self, device: Device, job: PushJob) -> SendResult:
        payload = webpush_payload(job) if device.platform == "webpush" else None
        print(console_text(job, device, time.time(), payload), file=self._out or sys.stdout,
              flush=True)
        return DELIVERED

    async def close(self) -> None:
        return None
