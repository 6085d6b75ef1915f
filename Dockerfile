# The vctp image: one static-ish binary (`vctp`, every subcommand) on distroless, non-root.
#
# Build (from the repository root; Docker or any OCI builder that reads Dockerfiles):
#
#     docker build -t registry.example.com/vctp:0.1.0 \
#       --build-arg REVISION="$(git rev-parse HEAD)" \
#       --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#     docker run --rm registry.example.com/vctp:0.1.0 --help
#
# then point the chart at it (image.repository / image.tag). Without Docker, scripts/image.sh
# builds the same image (same paths, user, entrypoint, cmd and labels; scripts/image_check.py
# compares them with this file's final stage) from a binary built on the host. The dependencies are compiled in
# a layer of their own that only Cargo.toml/Cargo.lock invalidate, so a change to src/ rebuilds
# vctp alone. --locked: exactly the versions of Cargo.lock, or the build fails.
#
# The runtime image has glibc, libgcc, CA certificates (vCenter, S3/GCS/Azure and PostgreSQL
# over TLS) and tzdata, no shell and no package manager; it runs as uid/gid 65532 ("nonroot"),
# which the chart's securityContext also sets. SQLite is compiled in (sqlx's bundled
# libsqlite3), the migrations are embedded (sqlx::migrate!), and TLS is rustls: no other
# shared libraries are needed.

ARG RUST_VERSION=1

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src

# 1. The dependencies, cached until the manifests change: build them against a stub crate,
#    then forget the stub so the real sources are always compiled below.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --locked --release --bin vctp \
    && rm -rf src target/release/vctp target/release/deps/vctp-* target/release/deps/libvctp-* \
        target/release/.fingerprint/vctp-*

# 2. vctp itself: the sources and the migrations compiled into it.
COPY src ./src
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs \
    && cargo build --locked --release --bin vctp \
    && cp target/release/vctp /usr/local/bin/vctp \
    && /usr/local/bin/vctp --version

FROM gcr.io/distroless/cc-debian12:nonroot

ARG VERSION=0.1.0
ARG REVISION=""
ARG CREATED=""
LABEL org.opencontainers.image.title="vctp" \
      org.opencontainers.image.description="vSphere chargeback: hourly VM inventory snapshots, daily and monthly summaries, XLSX reports; Kubernetes operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=build /usr/local/bin/vctp /usr/local/bin/vctp

# The image's own user is nonroot (65532); say it numerically so runAsNonRoot can verify it.
USER 65532:65532
# Writable for `vctp demo` under plain `docker run`; in Kubernetes the chart mounts /tmp.
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/vctp"]
CMD ["--help"]
