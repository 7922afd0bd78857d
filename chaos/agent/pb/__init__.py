"""Generated gRPC code for chaos/agent/agent.proto (scripts/gen-proto.sh)."""
