# The contract's topics (libs/platform's kafka module; a test compares), created once Kafka
# answers. Idempotent (--if-not-exists): `cargo xtask deploy` runs it at every deploy.
set -eu
topics() { /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" "$@"; }
until topics --list >/dev/null; do
  echo waiting for Kafka; sleep 5
done
topics --create --if-not-exists --topic documents.t --partitions 3 --replication-factor 1 --config retention.ms=-1
topics --create --if-not-exists --topic documents.dlq.t --partitions 1 --replication-factor 1
topics --describe
