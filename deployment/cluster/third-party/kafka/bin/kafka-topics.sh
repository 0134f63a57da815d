#!/bin/sh
# kafka-topics.sh ...: Kafka's topic tool (the kafka-topics Job calls it), as Kafka's own script.
: "${KAFKA_HEAP_OPTS:=-Xmx256M}"
export KAFKA_HEAP_OPTS
exec /opt/kafka/bin/kafka-run-class.sh org.apache.kafka.tools.TopicCommand "$@"
