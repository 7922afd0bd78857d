"""`python -m cluster up|down|status|load-image`: the single-node test cluster (issue #13).

up          start (or reuse) the cluster and load the pause image; prints JSON: kubeconfig, node name,
            node IP, pod CIDR ...
down        stop and remove everything it created (idempotent; works after a crash)
status      JSON: which processes run, whether the node is Ready
load-image  import docker-save tarballs into the node's containerd (namespace k8s.io)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cluster import lifecycle, node, teardown
from cluster.handle import ClusterHandle, has_image_builder
from cluster.layout import DEFAULT_STATE_DIR, PAUSE_IMAGE, Paths
from orchestrator.core.errors import EXIT_INFRASTRUCTURE, MapquakeError


def main(argv: list[str] | None = None) -> int:
    # --state-dir is accepted before or after the subcommand (`up --state-dir D` and `--state-dir D up`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help=f"where the cluster keeps its files (default {DEFAULT_STATE_DIR})",
    )
    parser = argparse.ArgumentParser(
        prog="python -m cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", parents=[common], help="start the cluster, or reuse it when already up")
    sub.add_parser("down", parents=[common], help="stop and remove the cluster")
    sub.add_parser("status", parents=[common], help="report on the cluster")
    load = sub.add_parser("load-image", parents=[common], help="import docker-save tarballs into the node")
    load.add_argument("tarballs", nargs="+", type=Path, metavar="TAR")
    args = parser.parse_args(argv)
    state_dir: Path = getattr(args, "state_dir", DEFAULT_STATE_DIR)
    paths = Paths(state_dir.absolute())
    try:
        if args.command == "up":
            print(json.dumps(ClusterHandle(paths.root).up(replace_broken=False).as_json(), indent=2))
            if not has_image_builder():
                print(
                    f"note: cluster.images is missing; load {PAUSE_IMAGE} (load-image TAR) before any pod",
                    file=sys.stderr,
                )
        elif args.command == "down":
            start = time.monotonic()
            removed = teardown.down(paths)
            print(json.dumps({"removed": removed, "seconds": round(time.monotonic() - start, 2)}, indent=2))
        elif args.command == "status":
            print(json.dumps(lifecycle.status(paths), indent=2))
        else:
            node.load_images(paths, list(args.tarballs))
    except MapquakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a path we cannot write or read: name it, no traceback
        print(f"error: {exc}\n  hint: check --state-dir ({paths.root}) and run as root", file=sys.stderr)
        return EXIT_INFRASTRUCTURE
    return 0


if __name__ == "__main__":
    sys.exit(main())
