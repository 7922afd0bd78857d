"""Running a command inside one network namespace, through a replaceable runner.

A ``NetnsHandle`` says how to enter a namespace: ``nsenter --net=/run/netns/<name>``
for a named local namespace, ``nsenter --net=/proc/<pid>/ns/net`` for a Kubernetes
pod's. Engines build argv lists and hand them to a ``Runner``; tests pass a fake
runner that records them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from orchestrator.core.errors import InfrastructureError

COMMAND_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str], "str | None"], CommandResult]
"""(argv, stdin text or None) → result. Must not raise for a non-zero exit."""


@dataclass(frozen=True)
class NetnsHandle:
    """A network namespace and the argv prefix that runs a program inside it.

    ``alive`` (pods): whether the process the prefix enters through is still the one it was (same
    start time). When it is not, the namespace went with its pod, and with it every rule in it;
    entering ``/proc/<pid>/ns/net`` then could reach another process's namespace (a reused pid).
    """

    name: str
    prefix: tuple[str, ...]
    alive: Callable[[], bool] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def local(cls, netns: str) -> NetnsHandle:
        """A named namespace (``ip netns add``), entered with nsenter: no mount namespace or /sys remount
        as ``ip netns exec`` does, so a command starts several times faster."""
        return cls(name=netns, prefix=("nsenter", f"--net=/run/netns/{netns}"))

    @classmethod
    def of_pid(cls, name: str, pid: int, alive: Callable[[], bool] | None = None) -> NetnsHandle:
        """The namespace of process ``pid`` (a pod's container), entered with nsenter; ``alive`` checks the pid."""
        return cls(name=name, prefix=("nsenter", f"--net=/proc/{pid}/ns/net"), alive=alive)

    def gone(self) -> bool:
        """True when the process this handle enters through is no longer the one it was (see ``alive``)."""
        return self.alive is not None and not self.alive()

    @property
    def path(self) -> str:
        """The namespace's file (what ``--net=`` names): compared with ``/proc/<pid>/ns/net`` to place a pid."""
        for part in self.prefix:
            if part.startswith("--net="):
                return part[len("--net=") :]
        raise ValueError(f"namespace handle {self.name} names no --net= file")

    def argv(self, *args: str) -> list[str]:
        return [*self.prefix, *args]


def subprocess_runner(argv: Sequence[str], stdin: str | None = None) -> CommandResult:
    """Run ``argv`` (bounded by COMMAND_TIMEOUT_S) and return its result; raises only if it cannot start."""
    try:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except FileNotFoundError as err:
        raise InfrastructureError(f"`{argv[0]}` is not installed: {err}", hint="run `make setup`") from None
    except subprocess.TimeoutExpired:
        return CommandResult(124, "", f"timed out after {COMMAND_TIMEOUT_S}s")
    return CommandResult(done.returncode, done.stdout, done.stderr)


def check(result: CommandResult, what: str) -> CommandResult:
    """Raise InfrastructureError naming ``what`` if ``result`` failed."""
    if result.returncode != 0:
        raise InfrastructureError(f"{what} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result
