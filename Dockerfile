# weft's image: a static binary on scratch. The BPF objects are committed
# (bpf/weft_bpfel.o), so the build needs Go only, no clang.
#
#   docker build -t ghcr.io/weftrace/weft:latest .
#
# Run it with the host's pid namespace and the capabilities it needs
# (deploy/kubernetes does the same on every node):
#
#   docker run --rm --pid=host --cap-add BPF --cap-add PERFMON \
#     --cap-add SYS_RESOURCE --cap-add SYS_PTRACE --cap-add DAC_READ_SEARCH \
#     --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
#     -v /sys/kernel/tracing:/sys/kernel/tracing:ro \
#     -v /var/run/docker.sock:/var/run/docker.sock:ro \
#     ghcr.io/weftrace/weft:latest
#
# Engines that do not know CAP_BPF/CAP_PERFMON (Docker 20.10): --cap-add
# SYS_ADMIN instead of the first three, or --privileged.
ARG GO_IMAGE=golang:1.26
FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/weft ./cmd/weft

FROM scratch
# Roots for OTLP endpoints over TLS.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/weft /weft
USER 0
EXPOSE 9464
ENTRYPOINT ["/weft"]
