"""Mount destinations through the image's symlinks (Debian's /var/run -> /run, where Kubernetes
puts the service-account token) land where the link leads, inside the rootfs, never outside."""

from __future__ import annotations

import os

from lxcri_testlib import leftovers, reap


def test_destination_through_var_run_symlink(lxcri, make_bundle, tmp_path):
    src = tmp_path / "token"
    src.mkdir()
    (src / "token").write_text("secret-token")
    b = make_bundle(["sh", "-c", "cat /var/run/secrets/sa/token; echo; cat /run/secrets/sa/token"])
    root = b.path / "rootfs"
    (root / "run").mkdir()
    (root / "var").mkdir()
    (root / "var/run").symlink_to("../run")
    b.config["mounts"].append({"destination": "/var/run/secrets/sa", "type": "bind", "source": str(src),
                               "options": ["rbind", "ro"]})
    b.save()
    cid = lxcri.new_id("symlink")
    pidf = tmp_path / "pid"
    r = lxcri.create(b, cid, pid_file=pidf)
    assert r.returncode == 0, r.stderr
    lxcri("start", cid, check=True)
    assert os.WEXITSTATUS(reap(int(pidf.read_text()))) == 0, (b.path / "out.err").read_text()
    assert (b.path / "out").read_text().split() == ["secret-token", "secret-token"]
    lxcri("delete", cid, check=True)
    assert leftovers(cid, lxcri.root) == []


def test_absolute_and_dotdot_links_stay_in_the_rootfs(lxcri, make_bundle, tmp_path):
    outside = tmp_path / "outside-target"
    outside.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("mounted")
    b = make_bundle(["sh", "-c", "cat /escape/f; cat /up/f"])
    root = b.path / "rootfs"
    (root / "escape").symlink_to(str(outside))  # absolute: means <rootfs>/<that path>
    (root / "up").symlink_to("../../../../../../tmp/lxcri-up-target")  # .. stops at the rootfs
    for dest in ("/escape", "/up"):
        b.config["mounts"].append({"destination": dest, "type": "bind", "source": str(src), "options": ["rbind"]})
    b.save()
    cid = lxcri.new_id("symlink")
    pidf = tmp_path / "pid"
    r = lxcri.create(b, cid, pid_file=pidf)
    assert r.returncode == 0, r.stderr
    lxcri("start", cid, check=True)
    assert os.WEXITSTATUS(reap(int(pidf.read_text()))) == 0, (b.path / "out.err").read_text()
    assert (b.path / "out").read_text() == "mountedmounted"
    assert list(outside.iterdir()) == []  # nothing was mounted on the host's directory
    assert (root / str(outside).lstrip("/")).is_dir() and (root / "tmp/lxcri-up-target").is_dir()
    lxcri("delete", cid, check=True)
    assert leftovers(cid, lxcri.root) == []
