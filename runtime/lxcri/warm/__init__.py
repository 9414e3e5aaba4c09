"""The warm server: a started, imported lxcri that forks one worker per call.

Every runtime call is a new process, and CRI-O and the containerd shim call
`state` many times per container; most of a short command's cost is the Python
interpreter starting (8-15 ms here, against about 5 ms for the whole of runc's
call). The `lxcri` command callers run is a small C client (libexec/src/client.c)
that hands its call to this server over a unix socket (wire.py): argv, umask,
environment, its stdin/stdout/stderr and its working directory as fds. The server
forks; the worker takes the client's stdio, cwd and environment, runs the command
exactly as the Python entry point would, and returns the exit status. Nothing about
a container lives in the server: each call reads the facts afresh, as a direct call does.

Which calls a worker runs (worker.py): those whose processes need no particular
ancestry, and create and `exec --detach`, whose helpers the worker has the caller's
client start (a Spawner), so that the container's init and exec'd processes still
descend from the caller, the subreaper that reaps them. `run`, foreground `exec`, the
streaming `events`, --preserve-fds and anything that does not parse are answered "run
it yourself": the client then execs the Python entry point (entry.py), which also
starts a server when the client found none.

Safety: one server per installation (the socket name is a hash of the entry point's
path), the socket directory is root's alone, peers must have the server's uid,
namespaces, root, capabilities, no_new_privs, seccomp and LSM label (peers.py), a
worker runs no code that changed on disk after the server started, the client binary
included (the server then answers "retire" and exits), and the server moves itself
out of the cgroup of whoever started it (escape.py). A worker takes the caller's
rlimits, and its cgroups before it runs hooks: what a hook sees is what it would see
under a direct call. What a client can make the server hold is bounded (server.py).

  wire.py    the protocol with the client: tags, framing, the socket's address
  server.py  the loop: accept, check, read within bounds, fork
  peers.py   which callers may be served
  escape.py  leaving the starter's cgroups; the code snapshot that retires a stale server
  worker.py  one call: classify it, take the caller's context, run the CLI, the Spawner
"""
