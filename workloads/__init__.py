"""Locust users, key-space generators and gRPC stubs that drive the Go targets."""
