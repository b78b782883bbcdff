# ducktail: one binary. Build stage compiles it with Bun (from npm); the runtime image holds only the binary.
FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/ducktail --create-home ducktail
COPY --from=build /src/dist/ducktail /usr/local/bin/ducktail
COPY config/ducktail.example.toml /etc/ducktail/ducktail.example.toml
USER ducktail
WORKDIR /var/lib/ducktail
# The DuckDB file, warm Parquet and the cache of the embedded DuckDB library live here.
ENV DUCKTAIL_HOME=/var/lib/ducktail
VOLUME /var/lib/ducktail
EXPOSE 8080
ENTRYPOINT ["ducktail"]
CMD ["run", "--config", "/etc/ducktail/ducktail.toml"]
