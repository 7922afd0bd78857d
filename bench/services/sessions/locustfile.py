"""Visitors of the sessions service (bench/services/sessions): an ordinary Locust file.

Every request goes to the first replica (Locust's --host; mapquake lists all replicas in
MAPQUAKE_TARGETS): the second replica is idle, as a standby behind a load balancer is, and its
map stays empty. Keys are strings from a bounded space of KEYS session ids; each user logs in
(PUT) nine times for every look-up (GET) at a constant RATE per user, so the load the scenario
designs does not depend on how fast the machine is.

Bodies carry a user name of varying length, a 32-character token and a few hundred bytes of
attributes the service checks but does not keep.
"""

from __future__ import annotations

import random
import string

from locust import FastHttpUser, constant_throughput, task

KEYS = 200_000
RATE = 40.0  # requests per second per user
_ALPHABET = string.ascii_lowercase + string.digits


def _body(rng: random.Random) -> str:
    user = "".join(rng.choices(_ALPHABET, k=rng.randrange(6, 41)))
    token = "".join(rng.choices(_ALPHABET, k=32))
    attrs = "".join(rng.choices(_ALPHABET, k=rng.randrange(300, 701)))
    return f"user={user}\ntoken={token}\nattrs={attrs}\n"


class Visitor(FastHttpUser):
    wait_time = constant_throughput(RATE)

    def on_start(self) -> None:
        self.rng = random.Random()

    @task(9)
    def login(self) -> None:
        key = f"sess-{self.rng.randrange(KEYS)}"
        self.client.put(f"/sessions/{key}", data=_body(self.rng), name="/sessions/{key} PUT")

    @task(1)
    def look(self) -> None:
        key = f"sess-{self.rng.randrange(KEYS)}"
        with self.client.get(f"/sessions/{key}", name="/sessions/{key} GET", catch_response=True) as r:
            if r.status_code == 404:
                r.success()  # expired or never written: a normal answer
