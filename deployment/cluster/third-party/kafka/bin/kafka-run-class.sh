#!/bin/sh
# Runs a class of the Kafka jars as Kafka's own kafka-run-class.sh does, reading the same
# variables: KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_OPTS, LOG_DIR,
# KAFKA_LOG4J_OPTS (default: the stand-in's log4j2.yaml, to the console).
set -e
class=$1
shift
: "${LOG_DIR:=/opt/kafka/logs}"
: "${KAFKA_HEAP_OPTS:=-Xmx256M}"
: "${KAFKA_JVM_PERFORMANCE_OPTS:=-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}"
: "${KAFKA_LOG4J_OPTS:=-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.yaml}"
# shellcheck disable=SC2086 # the options are lists of words, as in Kafka's script
exec java $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS $KAFKA_LOG4J_OPTS \
  "-Dkafka.logs.dir=$LOG_DIR" $KAFKA_OPTS -cp '/opt/kafka/libs/*' "$class" "$@"
