"""Reference model of the heap memory of Go maps and sync.Map (work in progress, issue 3)."""
