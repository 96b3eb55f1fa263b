# syntax=docker/dockerfile:1
# Medallion's images: one Dockerfile, one final stage per image. Every final stage is FROM
# scratch with one static (musl) binary as ENTRYPOINT, CA certificates for TLS to Azure, a
# numeric non-root USER, no shell, and OCI labels.
#
#   docker build --target medallion-import -t ghcr.io/medallion-dev/medallion-import:0.1.0 .
#
# The binaries come from one of two stages (build argument BINARIES):
#   build (default)  compiled here in the official Rust image; dependencies are cooked in their
#                    own layer (cargo-chef), so a code change does not rebuild them.
#   host             taken from the build context's dist/ folder (dist/bin/<binary> and
#                    dist/ca-certificates.crt), which scripts/images fills from a host build: for
#                    machines that cannot pull the Rust image.

ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG BINARIES=build
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/medallion-dev/medallion

# ---- binaries compiled in the Rust image -------------------------------------------------------
FROM ${RUST_IMAGE} AS chef
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl \
 && cargo install cargo-chef --locked --version 0.1.73
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
# The dependency layer: rebuilt only when Cargo.toml / Cargo.lock change.
RUN cargo chef cook --profile dist --target x86_64-unknown-linux-musl --recipe-path recipe.json
COPY . .
RUN cargo build --profile dist --target x86_64-unknown-linux-musl --workspace --bins \
 && mkdir -p /out/bin \
 && find target/x86_64-unknown-linux-musl/dist -maxdepth 1 -type f -name 'medallion*' -perm -u+x -exec cp {} /out/bin/ \; \
 && cp /etc/ssl/certs/ca-certificates.crt /out/ca-certificates.crt

# ---- binaries built on the host (scripts/images) -----------------------------------------------
FROM scratch AS host
COPY dist/ /out/

FROM ${BINARIES} AS binaries

# ---- one final stage per image -----------------------------------------------------------------
# Steps run as 65532 (the templates set the same runAsUser); they write only to /tmp and the
# outputs dir, which the templates mount as emptyDir, so a read-only root filesystem works.

FROM scratch AS medallion-import
ARG VERSION REVISION SOURCE
LABEL org.opencontainers.image.title="medallion-import" \
      org.opencontainers.image.description="Imports a CSV, JSON lines or Parquet file into a bronze Parquet version of a Medallion lake" \
      org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binaries /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binaries /out/bin/medallion-import /medallion-import
USER 65532:65532
ENTRYPOINT ["/medallion-import"]

FROM scratch AS medallion-refine
ARG VERSION REVISION SOURCE
LABEL org.opencontainers.image.title="medallion-refine" \
      org.opencontainers.image.description="Refines a bronze version into a silver version under a data contract" \
      org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binaries /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binaries /out/bin/medallion-refine /medallion-refine
USER 65532:65532
ENTRYPOINT ["/medallion-refine"]

FROM scratch AS medallion-profile
ARG VERSION REVISION SOURCE
LABEL org.opencontainers.image.title="medallion-profile" \
      org.opencontainers.image.description="Profiles a lake version: statistics, contract checks, drift, an HTML report" \
      org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binaries /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binaries /out/bin/medallion-profile /medallion-profile
USER 65532:65532
ENTRYPOINT ["/medallion-profile"]

FROM scratch AS medallion-train
ARG VERSION REVISION SOURCE
LABEL org.opencontainers.image.title="medallion-train" \
      org.opencontainers.image.description="Trains a model version (ridge, gradient-boosted trees, k-means) from a lake version and a model spec" \
      org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binaries /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binaries /out/bin/medallion-train /medallion-train
USER 65532:65532
ENTRYPOINT ["/medallion-train"]

FROM scratch AS medallion-plan
ARG VERSION REVISION SOURCE
LABEL org.opencontainers.image.title="medallion-plan" \
      org.opencontainers.image.description="Summarises a Terraform plan into a sealed Medallion plan bound to its content hash" \
      org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binaries /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binaries /out/bin/medallion-plan /medallion-plan
USER 65532:65532
ENTRYPOINT ["/medallion-plan"]

FROM scratch AS medallion-approve
ARG VERSION REVISION SOURCE
LABEL org.opencontainers.image.title="medallion-approve" \
      org.opencontainers.image.description="Evaluates a release policy over a plan and records the verdict bound to the plan's hash" \
      org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binaries /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binaries /out/bin/medallion-approve /medallion-approve
USER 65532:65532
ENTRYPOINT ["/medallion-approve"]

FROM scratch AS medallion-deploy
ARG VERSION REVISION SOURCE
LABEL org.opencontainers.image.title="medallion-deploy" \
      org.opencontainers.image.description="Applies an approved model-release plan (blue/green, smoke test, rollback on failure)" \
      org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binaries /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binaries /out/bin/medallion-deploy /medallion-deploy
USER 65532:65532
ENTRYPOINT ["/medallion-deploy"]

FROM scratch AS medallion-connect
ARG VERSION REVISION SOURCE
LABEL org.opencontainers.image.title="medallion-connect" \
      org.opencontainers.image.description="Registers and checks data connections (Azure Blob, PostgreSQL, Snowflake); records only references to secrets" \
      org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binaries /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binaries /out/bin/medallion-connect /medallion-connect
USER 65532:65532
ENTRYPOINT ["/medallion-connect"]

# The model server: KServe V2 over HTTP on 8080, same non-root user as the steps.
FROM scratch AS medallion-serve
ARG VERSION REVISION SOURCE
LABEL org.opencontainers.image.title="medallion-serve" \
      org.opencontainers.image.description="Serves a Medallion model version over the KServe V2 / Open Inference Protocol" \
      org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binaries /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binaries /out/bin/medallion-serve /medallion-serve
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/medallion-serve"]

# The executor plugin runs as 8737 with group 0: Argo's agent writes /var/run/argo/token owned by
# uid 8737, gid 0, mode 0440 (argo-workflows#13015); plugin.yaml sets the same ids.
FROM scratch AS medallion-plugin
ARG VERSION REVISION SOURCE
LABEL org.opencontainers.image.title="medallion-plugin" \
      org.opencontainers.image.description="Medallion's Argo executor plugin: pod-less approval gates, registry look-ups and quality checks" \
      org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binaries /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binaries /out/bin/medallion-plugin /medallion-plugin
USER 8737:0
EXPOSE 10707
ENTRYPOINT ["/medallion-plugin"]
