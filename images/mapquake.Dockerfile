# mapquake for clusters with a registry: one image for the controller (CronJob), the Locust master
# and workers, and the chaos agent (DaemonSet). Prometheus on such a cluster uses the official
# prom/prometheus image instead.
#
# Installs the same things as `python -m cluster.images build --only mapquake` (cluster/rootfs.py,
# used on the test cluster, which has no registry): Debian bookworm with nftables, iproute2,
# util-linux (nsenter) and ca-certificates; a venv at /opt/mapquake holding mapquake (a wheel of
# this repository, not editable) and its dependencies, with the test suites that wheels bundle
# removed; PATH starting with /opt/mapquake/bin; WORKDIR /. Differences: the Python here is the
# base image's (3.11.x in /usr/local), and Debian's prometheus is not installed (the test-cluster
# image carries it because that cluster cannot pull prom/prometheus). Change one, change the other.
#
# Build from the repository root:
#   docker build -f images/mapquake.Dockerfile -t REGISTRY/mapquake/mapquake:TAG .
# (mapquake.Dockerfile.dockerignore keeps the context to the Python sources.)

FROM python:3.11-slim-bookworm AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY orchestrator/ orchestrator/
COPY chaos/ chaos/
COPY workloads/ workloads/
RUN pip wheel --no-cache-dir --no-deps -w /wheels .

FROM python:3.11-slim-bookworm
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates nftables python3-nftables iproute2 util-linux \
    && rm -rf /var/lib/apt/lists/*
COPY --from=wheel /wheels/ /tmp/wheels/
RUN python -m venv /opt/mapquake \
    && /opt/mapquake/bin/pip install --no-cache-dir /tmp/wheels/mapquake-*.whl \
    && find /opt/mapquake/lib/python3.11/site-packages -mindepth 2 -type d -name tests -prune -exec rm -rf {} + \
    && rm -rf /tmp/wheels \
    && /opt/mapquake/bin/python -c "import orchestrator, chaos, workloads" \
    && /opt/mapquake/bin/python -m locust --version
ENV PATH=/opt/mapquake/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1
WORKDIR /
CMD ["mapquake", "--help"]
