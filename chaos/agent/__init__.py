"""The chaos agent: a lease-guarded gRPC service that applies faults inside a run's namespaces."""
