# SPDX-License-Identifier: MIT
# reqmon in a container: a build stage (Debian bookworm, as a non-root user) and a small runtime
# stage with only the libraries reqmon links against and the dashboard's files.
#
#   docker build -t reqmon .
#   docker run --rm --pid=host --cap-add BPF --cap-add PERFMON --cap-add SYS_RESOURCE \
#     -v /sys/kernel/btf:/sys/kernel/btf:ro -v /sys/kernel/tracing:/sys/kernel/tracing:ro \
#     -v /sys/fs/cgroup:/sys/fs/cgroup:ro -v /proc:/host/proc:ro -p 9100:9100 \
#     -v /etc/reqmon/token:/run/secrets/reqmon-token:ro \
#     reqmon --proc-root /host/proc --listen 0.0.0.0:9100 --token-file /run/secrets/reqmon-token \
#     --log-file none --comm nginx
#
# Kernels before 5.8 have no CAP_BPF/CAP_PERFMON: use --privileged there. See README.md
# ("In a container") and deploy/kubernetes/ for the DaemonSet.

# ---- build -------------------------------------------------------------------------------------
FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev \
      libpistache-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev libnghttp2-dev libyaml-cpp-dev \
      node-llhttp nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# Nothing is built as root.
RUN useradd --create-home --uid 10001 builder
USER builder
WORKDIR /home/builder/reqmon
COPY --chown=builder:builder . .
# vmlinux.h is generated from a kernel's BTF. CO-RE programs run on other kernels, so any BTF
# will do: the build host's (/sys/kernel/btf/vmlinux, visible in most builders) by default.
ARG VMLINUX_BTF=/sys/kernel/btf/vmlinux
RUN cd web && npm ci --omit=dev --no-audit --no-fund --loglevel=error
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DREQMON_BUILD_TESTS=OFF \
      -DVMLINUX_BTF=${VMLINUX_BTF} \
 && cmake --build build -j"$(nproc)" \
 && strip build/reqmon

# ---- runtime -----------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libbpf1 libelf1 zlib1g libpistache0 libspdlog1.10 libfmt9 libnghttp2-14 libyaml-cpp0.7 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /home/builder/reqmon/build/reqmon /usr/local/bin/reqmon
# The dashboard (web/ files and uPlot, as laid out by the build): found beside the binary's
# prefix, in /usr/local/share/reqmon/web.
COPY --from=build /home/builder/reqmon/build/web /usr/local/share/reqmon/web
# Loading BPF needs root or CAP_BPF + CAP_PERFMON (+ CAP_SYS_RESOURCE): the container runs as
# root with only the capabilities it is given (see deploy/kubernetes/daemonset.yaml).
USER 0
EXPOSE 9100
ENTRYPOINT ["/usr/local/bin/reqmon"]
# Arguments replace these defaults (docker run IMAGE --comm nginx ..., or the DaemonSet's args).
# Listening beyond the container wants a bearer token: mount one at /run/secrets/reqmon-token.
CMD ["--proc-root", "/host/proc", "--listen", "0.0.0.0:9100", "--token-file", "/run/secrets/reqmon-token", "--log-file", "none", "--all"]
