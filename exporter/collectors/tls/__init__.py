"""TLS certificates: the collector, the endpoint probe, and reading and verifying certificates."""
