"""Shoppers for the inventory example: an ordinary Locust file, nothing of mapquake in it.

mapquake runs it on its own master and workers, shapes the users per phase and measures every
request through Locust's request event. It finds the replicas the usual way: --host is the first
one, and MAPQUAKE_TARGETS lists all of them (http://host:port, comma-separated); each shopper
sticks to one replica, spreading shoppers over all of them.

Writes dominate and land on a fixed catalogue of SKUS products, named "sku-000000" to
"sku-009999", so once it is full every write overwrites an item: the healthy service's map stays the
same size, and a service that keeps old versions (the --leak build) grows.
"""

from __future__ import annotations

import itertools
import os
import random

from locust import FastHttpUser, constant, task

SKUS = 10_000


def sku(n: int) -> str:
    return f"sku-{n:06d}"


_replicas = itertools.cycle([t for t in os.environ.get("MAPQUAKE_TARGETS", "").split(",") if t] or [None])


class Shopper(FastHttpUser):
    wait_time = constant(0.002)

    def on_start(self) -> None:
        replica = next(_replicas)
        if replica is not None:
            self.host = replica
            self.client.base_url = replica

    @task(9)
    def restock(self) -> None:
        n = random.randrange(SKUS)
        item = {"name": f"widget-{n}", "qty": random.randrange(1000), "price_cents": 100 + n % 9000}
        self.client.put(f"/items/{sku(n)}", json=item, name="/items/{sku} PUT")

    @task(1)
    def look(self) -> None:
        path = f"/items/{sku(random.randrange(SKUS))}"
        with self.client.get(path, name="/items/{sku} GET", catch_response=True) as r:
            if r.status_code == 404:
                r.success()  # not stocked yet: a normal answer
