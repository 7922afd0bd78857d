"""Fault mechanisms: nftables, tc netem, the delay proxy, process signals, and Kubernetes namespace entry."""
