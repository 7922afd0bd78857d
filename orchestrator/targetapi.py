"""Talk to a running maptarget over its HTTP admin API: heap after GC, and /metrics.

Only loopback and mapquake's own namespace addresses are ever dialled; the
callers get those addresses from processes they started.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from orchestrator.errors import InfrastructureError

HTTP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class HeapSample:
    """What POST /admin/gc answers: the heap right after runtime.GC(), so live bytes are exact."""

    live_bytes: int
    heap_objects: int
    goroutines: int
    entries: int
    high_water: int
    total_alloc_bytes: int
    go_version: str
    store: str
    go_type: str


def _request(url: str, *, method: str = "GET") -> bytes:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            return bytes(resp.read())
    except (urllib.error.URLError, OSError) as err:
        raise InfrastructureError(f"{method} {url} failed: {err}") from err


def collect_garbage(http_addr: str) -> HeapSample:
    """Run runtime.GC() in the target and return its exact live heap."""
    raw = _request(f"http://{http_addr}/admin/gc", method="POST")
    try:
        data = json.loads(raw)
        return HeapSample(
            live_bytes=int(data["live_bytes"]),
            heap_objects=int(data["heap_objects"]),
            goroutines=int(data["goroutines"]),
            entries=int(data["entries"]),
            high_water=int(data.get("high_water", data["entries"])),
            total_alloc_bytes=int(data.get("total_alloc_bytes", 0)),
            go_version=str(data.get("go_version", "")),
            store=str(data.get("store", "")),
            go_type=str(data.get("go_type", "")),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise InfrastructureError(f"POST http://{http_addr}/admin/gc answered unexpected JSON: {raw[:200]!r}") from err


def scrape(http_addr: str) -> dict[str, float]:
    """Fetch /metrics and return {series: value}, series written as name{label="v",...}."""
    text = _request(f"http://{http_addr}/metrics").decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples
