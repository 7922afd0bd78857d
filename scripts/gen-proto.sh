#!/usr/bin/env bash
# Regenerate the Go and Python code for every .proto in the repository.
#   scripts/gen-proto.sh            write the generated files in place
#   scripts/gen-proto.sh --check    regenerate into a scratch copy and fail if the committed files differ
# Needs the venv's grpcio-tools (bundles protoc) and the pinned Go plugins (`make tools`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
GOBIN=${GOBIN:-$PWD/.venv/gobin}

generate() { # $1: output root
  local out=$1
  mkdir -p "$out/go_targets/proto" "$out/workloads/pb"
  "$PY" -m grpc_tools.protoc -Igo_targets/proto \
    --plugin=protoc-gen-go="$GOBIN/protoc-gen-go" --plugin=protoc-gen-go-grpc="$GOBIN/protoc-gen-go-grpc" \
    --go_out="$out/go_targets/proto" --go_opt=paths=source_relative \
    --go-grpc_out="$out/go_targets/proto" --go-grpc_opt=paths=source_relative \
    mapquake/v1/store.proto
  # The virtual path makes the generated Python import itself as workloads.pb.store_pb2.
  "$PY" -m grpc_tools.protoc -Iworkloads/pb=go_targets/proto/mapquake/v1 \
    --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" workloads/pb/store.proto
  # The chaos agent (Python only); imports itself as chaos.agent.pb.agent_pb2.
  mkdir -p "$out/chaos/agent/pb"
  "$PY" -m grpc_tools.protoc -Ichaos/agent/pb=chaos/agent \
    --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" chaos/agent/pb/agent.proto
}

if [[ "${1:-}" == "--check" ]]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  generate "$scratch"
  status=0
  for f in go_targets/proto/mapquake/v1/store.pb.go go_targets/proto/mapquake/v1/store_grpc.pb.go \
           workloads/pb/store_pb2.py workloads/pb/store_pb2.pyi workloads/pb/store_pb2_grpc.py \
           chaos/agent/pb/agent_pb2.py chaos/agent/pb/agent_pb2.pyi chaos/agent/pb/agent_pb2_grpc.py; do
    if ! cmp -s "$f" "$scratch/$f"; then
      echo "stale generated file: $f (run: make proto)" >&2
      status=1
    fi
  done
  exit $status
fi
generate .
