"""The main job: a busybox container through a private containerd and its runc shim, with lxcri
as the runtime binary, the way a Kubernetes node runs it (no cluster needed).

Prints the container's output and what lxcri saw. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from busybox import make_oci_archive, make_rootfs

REPO = Path(__file__).resolve().parent.parent
LXCRI = REPO / ".venv" / "bin" / "lxcri"


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="lxcri-demo-"))
    rootfs = make_rootfs(work / "rootfs")
    archive = make_oci_archive(rootfs, work / "busybox.tar", "localhost/busybox:latest")
    conf = work / "containerd.toml"
    conf.write_text(f'''version = 2
root = "{work}/root"
state = "{work}/state"
[grpc]
  address = "{work}/containerd.sock"
[ttrpc]
  address = "{work}/containerd.sock.ttrpc"
[metrics]
  address = ""
# the node's registration of lxcri as a runtime handler (what the agent writes)
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.lxcri]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.lxcri.options]
    BinaryName = "{LXCRI}"
''')
    with open(work / "containerd.log", "w") as log:
        containerd = subprocess.Popen(["containerd", "--config", str(conf)], stdout=log, stderr=log)
    ctr = ["ctr", "--address", str(work / "containerd.sock"), "--namespace", "demo"]
    try:
        for _ in range(200):
            if (work / "containerd.sock").exists():
                break
            time.sleep(0.05)
        subprocess.run([*ctr, "image", "import", str(archive)], check=True, stdout=subprocess.DEVNULL)
        print(f"$ ctr run --rm --runc-binary {LXCRI} localhost/busybox:latest demo ...", flush=True)
        r = subprocess.run([*ctr, "run", "--rm", "--runc-binary", str(LXCRI), "localhost/busybox:latest", "demo",
                            "sh", "-c", "echo hello from an LXC container run by lxcri; uname -sr; ps -o pid,args"],
                           timeout=120)
        print(f"exit status: {r.returncode}")
        return r.returncode
    finally:
        containerd.terminate()
        containerd.wait(timeout=30)
        subprocess.run(["umount", "-R", str(work / "root")], stderr=subprocess.DEVNULL, check=False)
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    sys.exit(main())
