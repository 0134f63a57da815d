#!/bin/sh
# kafka-storage.sh format|info|random-uuid ...: Kafka's storage tool, as Kafka's own script.
exec /opt/kafka/bin/kafka-run-class.sh kafka.tools.StorageTool "$@"
