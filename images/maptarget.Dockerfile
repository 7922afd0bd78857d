# maptarget for clusters with a registry: the static Go target, nothing else in the image.
#
# Installs the same thing as `python -m cluster.images build --only maptarget` (cluster/images.py,
# used on the test cluster, which has no registry): a static binary from
# `CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" ./cmd/maptarget`, entrypoint /maptarget and
# an empty /tmp (mode 1777). Change one, change the other.
#
# Build from the repository root (go_targets builds mapprobe from ../mapprobe):
#   docker build -f images/maptarget.Dockerfile -t REGISTRY/mapquake/maptarget:TAG .
# (maptarget.Dockerfile.dockerignore keeps the context to the Go sources.)

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go_targets/go.mod go_targets/go.sum go_targets/
COPY mapprobe/go.mod mapprobe/go.sum mapprobe/
RUN cd go_targets && go mod download
COPY go_targets/ go_targets/
COPY mapprobe/ mapprobe/
RUN cd go_targets \
    && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/maptarget ./cmd/maptarget \
    && mkdir -m 1777 /out/tmp

# Static binary: no libc, no shell, no /etc/passwd needed.
FROM scratch
COPY --from=build /out/ /
ENTRYPOINT ["/maptarget"]
