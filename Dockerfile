# Build stage: a static-enough release binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# No `testkit`: the image carries no provider emulator, demo, replay or load
# generator, and cannot serve a fake calendar.
RUN cargo build --release --locked --no-default-features --bin callbook

# Runtime stage: just the binary and CA roots for calls to Google.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 callbook
COPY --from=build /src/target/release/callbook /usr/local/bin/callbook
USER callbook
ENV CALLBOOK_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["callbook"]
CMD ["serve"]
