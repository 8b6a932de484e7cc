# One image for every role of a Loom network; the command picks the role:
#
#   node packages/cli/dist/bin/loom.js network serve-ca --org Org1MSP   a CA (compose writes its config)
#   loom ca start --config ca.yaml                                       a CA from a config file
#   node packages/orderer/dist/main.js --config orderer.yaml             an orderer
#   node packages/peer/dist/main.js --config peer.yaml                   a peer
#   loom network serve-peer --peer peer0.org1.example.com                a peer + its chaincode (compose)
#   loom …                                                               the CLI
#
# Build for users (installs and builds inside the image):
#   docker build -t loom .
# Build offline from a host that already ran `npm ci && npm run build` (see scripts/docker/):
#   scripts/docker/prepare-context.sh /tmp/ctx && \
#     docker build --build-arg BASE_IMAGE=loom-base:local --build-arg PREBUILT=1 -t loom /tmp/ctx
ARG BASE_IMAGE=node:20-bookworm-slim
# No `npm prune --omit=dev`: peers compile installed TypeScript chaincode with the image's
# typescript and @types/node (dev dependencies of the workspace root).

FROM ${BASE_IMAGE} AS build
ARG PREBUILT=0
LABEL loom.stage=build
WORKDIR /opt/loom
COPY . .
RUN if [ "$PREBUILT" = "1" ]; then \
      for f in packages/cli/dist/bin/loom.js packages/orderer/dist/main.js packages/peer/dist/main.js packages/ca/dist/main.js node_modules/commander node_modules/typescript/bin/tsc; do \
        [ -e "$f" ] || { echo "PREBUILT=1: $f is missing; build the context with scripts/docker/prepare-context.sh" >&2; exit 1; }; \
      done; \
    else \
      npm ci --no-audit --no-fund && npm run build; \
    fi \
 && chmod 0755 packages/cli/dist/bin/loom.js \
 && mkdir -p /var/loom/data /var/loom/node

FROM ${BASE_IMAGE}
ENV NODE_ENV=production \
    PATH=/opt/loom/node_modules/.bin:/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /opt/loom
COPY --from=build /opt/loom /opt/loom
# Data directories belong to the unprivileged user; named volumes mounted here inherit that.
COPY --from=build --chown=1000:1000 /var/loom /var/loom
RUN ln -sf /opt/loom/packages/cli/dist/bin/loom.js /usr/local/bin/loom
USER 1000:1000
# Each service sets LOOM_HEALTHCHECK_URL to its /healthz (CA: its TLS port; orderer and peer:
# their operations port); without it (one-shot CLI containers) the check passes.
HEALTHCHECK --interval=5s --timeout=5s --start-period=5s --retries=12 \
  CMD ["node", "/opt/loom/scripts/docker/healthcheck.cjs"]
CMD ["loom", "--help"]
