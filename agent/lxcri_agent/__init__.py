"""lxcri node agent: installs the runtime on a node, reports its health, labels Nodes."""
