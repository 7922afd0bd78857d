"""Where a run's components live: `local` (processes in network namespaces) or `kubernetes`."""
