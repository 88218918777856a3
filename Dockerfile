# Berth in a container: a build stage with the Rust toolchain, a small
# runtime stage with only the binary, running as a non-root user.
#
#   docker build -t berth .
#   docker run --rm -p 8080:8080 \
#     -v "$PWD/berth.toml:/etc/berth/berth.toml:ro" -v "$PWD/components:/components:ro" \
#     -e SERVICE_NAME=orders -e NATS_URL=nats://nats:4222 berth
#
# The manifest's wasm paths point into the mounted folder
# (/components/orders.wasm); its [host] http must listen on 0.0.0.0 to be
# reachable from outside. The compile cache lives in DATA_DIR: mount a
# volume there to keep it across restarts.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p berth \
 && strip target/release/berth

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/berth --create-home berth
COPY --from=build /src/target/release/berth /usr/local/bin/berth
USER 10001:10001
WORKDIR /var/lib/berth
ENV DATA_DIR=/var/lib/berth \
    BERTH_LOG_FORMAT=json \
    BERTH_STRICT_ENV=true
EXPOSE 8080
# berth is PID 1 and handles SIGTERM itself: stop consuming, finish
# in-flight calls, exit 0 (docker stop gives it 10 s by default).
ENTRYPOINT ["berth"]
CMD ["run", "/etc/berth/berth.toml"]
