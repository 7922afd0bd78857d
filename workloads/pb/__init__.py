"""Generated grpcio stubs for go_targets/proto/mapquake/v1/store.proto (run `make proto`)."""
