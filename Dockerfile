# syntax=docker/dockerfile:1
# Kitteh: one static binary in an image that holds nothing else it needs.
# Build:  docker build --build-arg VERSION=$(git describe --tags --always) \
#                      --build-arg REVISION=$(git rev-parse HEAD) -t kitteh .
# scripts/image-contract.sh lays out the final stage's files by hand and
# runs the binary in a chroot, so what this file promises is tested without
# a Docker engine. Keep the two in step: the list of files is the same.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS chef
# musl-tools for the C in the dependencies (SQLite, ring, mimalloc); lld
# links the static binary with identical code folding (.cargo/config.toml).
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update \
 && apt-get install -y --no-install-recommends musl-tools lld ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && cargo install cargo-chef --locked
WORKDIR /src

# Dependencies are cooked from the lock file alone, so a source change does
# not rebuild them.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
ARG VERSION=dev
ARG REVISION=unknown
COPY --from=planner /src/recipe.json recipe.json
# The build settings (SQLite's options, the linker) shape the dependencies
# too, so they are in place before those are cooked.
COPY .cargo .cargo
RUN cargo chef cook --release --target x86_64-unknown-linux-musl --recipe-path recipe.json
COPY . .
ENV KITTEH_GIT_COMMIT=${REVISION}
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin kitteh \
 && cp target/x86_64-unknown-linux-musl/release/kitteh /kitteh \
 && /kitteh version --verbose
# The data folder, owned by the runtime user, to copy into the empty image.
RUN mkdir -p /rootfs/data /rootfs/config \
 && chown -R 10001:10001 /rootfs/data

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kitteh" \
      org.opencontainers.image.description="Upload a picture, get a memorable name, served fast." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/kitteh/kitteh" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /kitteh /kitteh
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chown=10001:10001 /rootfs/data /data
COPY config/kitteh.toml /config/kitteh.toml
ENV KITTEH_SERVER__ADDRESS=0.0.0.0 \
    KITTEH_DATABASE__URL=sqlite:///data/kitteh.db \
    KITTEH_STORAGE__UPLOADS_DIR=/data/uploads \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /
USER 10001:10001
EXPOSE 4000
VOLUME /data
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["/kitteh", "healthcheck"]
ENTRYPOINT ["/kitteh"]
CMD ["serve"]
