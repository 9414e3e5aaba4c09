"""The runc-compatible command line: parse, call one operation, print. Nothing imports cli."""
