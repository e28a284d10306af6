# syntax=docker/dockerfile:1
# The cloud worker's image: the full build of iotod (every store: DynamoDB and PostgreSQL too),
# static, on distroless (no shell, no package manager), running as a non-root user.
# docs/install.md ("The cloud worker in a container"):
#
#   docker build -t iotod:1.2.0 --build-arg VERSION=1.2.0 --build-arg COMMIT=$(git rev-parse HEAD) .
#   docker run -d --name iotod-cloud --stop-timeout 30 \
#     -v /srv/iotod/etc:/etc/iotod:ro -v iotod-data:/var/lib/iotod -p 1883:1883 \
#     -e IOTOD_POSTGRES_URL=postgres://... iotod:1.2.0
#
# The config is mounted at /etc/iotod (pipelines.yaml and the schema it names); the data (broker
# persistence, a badger store, MQTT sessions) goes to the volume at /var/lib/iotod.

ARG GO_VERSION=1.26

# Build on the builder's own platform and cross-compile for the target's (docker buildx
# --platform linux/amd64,linux/arm64): no emulation.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=
ARG COMMIT=
ARG TARGETOS
ARG TARGETARCH
# An empty VERSION or COMMIT leaves iotod version with its own defaults (devel, unknown: the build
# context has no .git).
RUN CGO_ENABLED=0 GOOS="${TARGETOS:-linux}" GOARCH="${TARGETARCH:-$(go env GOARCH)}" \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/iotod ./cmd/iotod \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/iotod /iotod
# The data folder, owned by the image's user (nonroot, 65532): a named volume mounted there
# starts with this owner; a host folder mounted there must be writable by uid 65532.
COPY --from=build --chown=65532:65532 /out/data /var/lib/iotod
USER 65532:65532
WORKDIR /var/lib/iotod
# The docs/examples configs read these: data here, the schema beside the mounted config.
ENV IOTOD_DATA=/var/lib/iotod \
    IOTOD_SCHEMA=/etc/iotod/schema.json5
VOLUME ["/var/lib/iotod"]
# The embedded MQTT broker, when the config runs one (broker.listen 0.0.0.0:1883 with
# allow_remote: true). The HTTP API listens on loopback only: reach it with docker exec.
EXPOSE 1883
# On SIGTERM iotod drains for up to --drain-timeout (10 s): give docker stop more than its 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/iotod", "run"]
CMD ["-c", "/etc/iotod/pipelines.yaml"]
