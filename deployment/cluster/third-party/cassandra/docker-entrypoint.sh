#!/bin/sh
# The stand-in's entrypoint, doing what the upstream image's docker-entrypoint.sh does for
# `cassandra`: the node's addresses (its pod address unless given), the seeds, and the
# CASSANDRA_* settings written into cassandra.yaml and cassandra-rackdc.properties.
set -e
if [ "$1" = cassandra ]; then
  conf=${CASSANDRA_CONF:-/etc/cassandra}
  : "${CASSANDRA_RPC_ADDRESS:=0.0.0.0}"
  : "${CASSANDRA_LISTEN_ADDRESS:=auto}"
  if [ "$CASSANDRA_LISTEN_ADDRESS" = auto ]; then
    CASSANDRA_LISTEN_ADDRESS=$(hostname -i | cut -d' ' -f1)
  fi
  : "${CASSANDRA_BROADCAST_ADDRESS:=$CASSANDRA_LISTEN_ADDRESS}"
  : "${CASSANDRA_BROADCAST_RPC_ADDRESS:=$CASSANDRA_BROADCAST_ADDRESS}"
  : "${CASSANDRA_SEEDS:=$CASSANDRA_BROADCAST_ADDRESS}"
  export CASSANDRA_RPC_ADDRESS CASSANDRA_LISTEN_ADDRESS CASSANDRA_BROADCAST_ADDRESS \
    CASSANDRA_BROADCAST_RPC_ADDRESS
  sed -i -E 's/(- seeds:).*/\1 "'"$CASSANDRA_SEEDS"'"/' "$conf/cassandra.yaml"
  for name in cluster_name endpoint_snitch listen_address rpc_address broadcast_address \
      broadcast_rpc_address num_tokens; do
    var=CASSANDRA_$(echo "$name" | tr '[:lower:]' '[:upper:]')
    val=$(printenv "$var" || true)
    [ -n "$val" ] || continue
    if grep -qE "^(# )?$name:" "$conf/cassandra.yaml"; then
      sed -i -E "s/^(# )?($name:).*/\\2 '$val'/" "$conf/cassandra.yaml"
    else
      echo "$name: '$val'" >> "$conf/cassandra.yaml"
    fi
  done
  for name in dc rack; do
    var=CASSANDRA_$(echo "$name" | tr '[:lower:]' '[:upper:]')
    val=$(printenv "$var" || true)
    [ -n "$val" ] || continue
    sed -i -E "s/^($name=).*/\\1$val/" "$conf/cassandra-rackdc.properties"
  done
fi
exec "$@"
