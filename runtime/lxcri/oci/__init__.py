"""The OCI documents lxcri reads and writes: the bundle's config.json and the state."""
