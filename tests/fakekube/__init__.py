"""Test doubles of the Kubernetes API for the agent and operator tests and the operator's scale
bench: an in-process node store (nodes.FakeNodeAPI, the agent's `kube.api` protocol) and an HTTP
server over it that kopf and the kubernetes client talk to (server.FakeApiServer). Kept out of
the product: nothing shipped imports them."""
