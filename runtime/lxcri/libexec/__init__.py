"""The helpers lxcri runs: the C init and monitor (src/, built into bin/), and the hook entry point."""
