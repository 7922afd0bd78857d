#!/usr/bin/env bash
# Builds a user's monitoring stack from the Go module proxy and caches it keyed by versions: upstream
# Prometheus (Debian's server is built without Kubernetes service discovery), the Prometheus Operator
# and its config reloader, and the operator's CRDs from the same module. The Kubernetes tests use them
# to check `prometheus.existing`: a shared server finding pods by annotations, and ServiceMonitors
# through the real operator.
#
# Prometheus's UI assets are not built (no npm): the HTTP API, all mapquake uses, is complete.
#
# Why a wrapper module for the operator: the operator's go.mod replaces its own API and client submodules with local
# directories, so `go install .../cmd/operator@vX` is refused. A throwaway module requiring all three
# at the same tag builds the commands as ordinary dependencies.
#
# Cold build ~6-8 min on 2 cores. Prints the output directory on stdout (logs go to stderr):
#   prometheus, operator, prometheus-config-reloader, crds/monitoring.coreos.com_*.yaml
set -euo pipefail

OPERATOR_VERSION=${OPERATOR_VERSION:-v0.85.0}
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-3.5.0}
GO_VERSION=$(go env GOVERSION)
CACHE_ROOT=${MAPQUAKE_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mapquake/cluster-bin}
OUT="$CACHE_ROOT/monitoring_prometheus-${PROMETHEUS_VERSION}_operator-${OPERATOR_VERSION}_${GO_VERSION}"
MODULE=github.com/prometheus-operator/prometheus-operator

complete() {
	[[ -x "$OUT/prometheus" && -x "$OUT/operator" && -x "$OUT/prometheus-config-reloader" &&
		-s "$OUT/crds/monitoring.coreos.com_servicemonitors.yaml" ]]
}

if complete; then
	echo "$OUT"
	exit 0
fi

mkdir -p "$OUT/crds"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local
if [[ ! -x "$OUT/prometheus" ]]; then
	# Prometheus 3.x is published as module version v0.3xx.y (3.5.0 -> v0.305.0).
	minor=${PROMETHEUS_VERSION#3.}; minor=${minor%%.*}; patch=${PROMETHEUS_VERSION##*.}
	version="v0.$((300 + minor)).$patch"
	echo "build-monitoring: prometheus $PROMETHEUS_VERSION ($version)" >&2
	# Its go.mod has a replace directive (go install refuses it): a wrapper module that copies it.
	mkdir -p "$WORK/prometheus" && cd "$WORK/prometheus"
	go mod init mapquake.local/prometheusbin >/dev/null 2>&1
	printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/prometheus/prometheus/cmd/prometheus"\n' >tools.go
	gomod=$(go mod download -json "github.com/prometheus/prometheus@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
	go mod edit -json "$gomod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    old, new = r["Old"], r["New"]
    print(old["Path"] + ("@" + old["Version"] if old.get("Version") else "") + "=" + new["Path"] + "@" + new["Version"])
' | while read -r rule; do go mod edit -replace="$rule"; done
	go get "github.com/prometheus/prometheus@$version" >&2
	go mod tidy -e >&2 || true
	go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION" \
		-o "$OUT/prometheus.tmp" github.com/prometheus/prometheus/cmd/prometheus
	mv "$OUT/prometheus.tmp" "$OUT/prometheus"
fi

echo "build-monitoring: prometheus-operator $OPERATOR_VERSION" >&2
mkdir -p "$WORK/operator" && cd "$WORK/operator"
go mod init mapquake.local/operatorbin >/dev/null 2>&1
cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "github.com/prometheus-operator/prometheus-operator/cmd/operator"
	_ "github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader"
)
GO
go get "$MODULE@$OPERATOR_VERSION" "$MODULE/pkg/apis/monitoring@$OPERATOR_VERSION" \
	"$MODULE/pkg/client@$OPERATOR_VERSION" >&2
go mod tidy -e >&2 || true
for cmd in operator prometheus-config-reloader; do
	[[ -x "$OUT/$cmd" ]] && continue
	go build -trimpath -ldflags "-s -w" -o "$OUT/$cmd.tmp" "$MODULE/cmd/$cmd"
	mv "$OUT/$cmd.tmp" "$OUT/$cmd"
done
src=$(go mod download -json "$MODULE@$OPERATOR_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
cp "$src"/example/prometheus-operator-crd/monitoring.coreos.com_*.yaml "$OUT/crds/"
chmod -R u+w "$OUT/crds"

complete || { echo "build-monitoring: incomplete build in $OUT" >&2; exit 1; }
echo "$OUT"
