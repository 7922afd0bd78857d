#!/usr/bin/env bash
# Builds the test cluster's binaries from the Go module proxy and caches them keyed by versions:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and helm.
#
# Why a wrapper module: `go install k8s.io/kubernetes/cmd/...@v1.34.x` and `go install
# go.etcd.io/etcd/server/v3@...` are refused (their go.mod files carry replace directives).
# A throwaway module that requires them and maps every staging module k8s.io/X (required at
# v0.0.0) to its published tag v0.34.N builds them as ordinary dependencies.
#
# Cold build ~15-20 min on 2 cores; afterwards the cache answers in milliseconds. Prints the
# binaries' directory on stdout (everything else goes to stderr).
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.34.12}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
COREDNS_VERSION=${COREDNS_VERSION:-v1.13.1}
GO_VERSION=$(go env GOVERSION)
CACHE_ROOT=${MAPQUAKE_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mapquake/cluster-bin}
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}_coredns-${COREDNS_VERSION}_${GO_VERSION}"
OUT="$CACHE_ROOT/$KEY"
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet helm coredns)

complete() {
	for b in "${BINARIES[@]}"; do [[ -x "$OUT/$b" ]] || return 1; done
}

if complete; then
	echo "$OUT"
	exit 0
fi

mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local
log() { echo "build-binaries: $*" >&2; }

if [[ ! -x "$OUT/etcd" ]]; then
	log "etcd $ETCD_VERSION"
	mkdir -p "$WORK/etcd" && cd "$WORK/etcd"
	go mod init mapquake.local/etcdbin >/dev/null 2>&1
	go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
	go build -trimpath -ldflags "-s -w" -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3
	mv "$OUT/etcd.tmp" "$OUT/etcd"
fi

if [[ ! -x "$OUT/helm" ]]; then
	log "helm $HELM_VERSION"
	minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
	# helm v3 takes its default KubeVersion from ldflags (v1.20 without them).
	GOBIN="$WORK/helmbin" go install -trimpath -ldflags "-s -w \
		-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor \
		-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
		"helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
	mv "$WORK/helmbin/helm" "$OUT/helm"
fi

if [[ ! -x "$OUT/coredns" ]]; then
	# Cluster DNS, so headless Services give StatefulSet replicas their stable peer names.
	log "coredns $COREDNS_VERSION"
	GOBIN="$WORK/corednsbin" go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION" >&2
	mv "$WORK/corednsbin/coredns" "$OUT/coredns"
fi

K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
need_k8s=0
for b in "${K8S_BINS[@]}"; do [[ -x "$OUT/$b" ]] || need_k8s=1; done
if [[ $need_k8s == 1 ]]; then
	log "kubernetes $K8S_VERSION (cold: ~15 min)"
	staging=v0.${K8S_VERSION#v1.}
	mkdir -p "$WORK/k8s" && cd "$WORK/k8s"
	gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
	cat >go.mod <<MOD
module mapquake.local/k8sbin

go 1.25.0

godebug default=go1.24

require k8s.io/kubernetes $K8S_VERSION
MOD
	# Every module k8s.io/kubernetes requires at v0.0.0 is a staging module: use its tag.
	go mod edit -json "$gomod" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["Require"]:
    if r["Version"] == "v0.0.0":
        print(r["Path"])
' | while read -r mod; do go mod edit -replace="$mod=$mod@$staging"; done
	cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
	go mod tidy -e >&2 || true
	# Pinned: a bare `go get PKG` means @upgrade and would move k8s.io/kubernetes to the newest
	# release, whose packages the v0.34 staging modules do not have.
	go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
		"k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION" "k8s.io/kubernetes/cmd/kubelet@$K8S_VERSION" >&2
	minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
		-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
		-X k8s.io/component-base/version.gitTreeState=clean"
	for b in "${K8S_BINS[@]}"; do
		[[ -x "$OUT/$b" ]] && continue
		log "  $b"
		go build -trimpath -ldflags "$ldflags" -o "$OUT/$b.tmp" "k8s.io/kubernetes/cmd/$b"
		mv "$OUT/$b.tmp" "$OUT/$b"
	done
fi

complete || { log "incomplete build in $OUT"; exit 1; }
echo "$OUT"
