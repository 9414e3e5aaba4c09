"""The container operations, one module each, plus the runtime dir and its lock."""
