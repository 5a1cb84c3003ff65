# Apache Kafka, single-node KRaft (broker and controller in one JVM), jars from Maven Central.
# Two client listeners: PLAINTEXT for the host, PODS for pods of the dev node, which reach the
# host's 127.0.0.1 through the node IP and must be told that address back by the broker.
KAFKA_HOME=$MOOC_CACHE/kafka-$KAFKA_VERSION
KAFKA_DATA=$MOOC_RUN/kafka

kafka_install() {
  [ -f "$KAFKA_HOME/.complete" ] && return 0
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  log "resolving Apache Kafka $KAFKA_VERSION jars"
  rm -rf "$KAFKA_HOME"
  mvn -q -B -Dstyle.color=never -f "$DEV_DIR/kafka/pom.xml" dependency:copy-dependencies -Dkafka.version="$KAFKA_VERSION" \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/libs"
  touch "$KAFKA_HOME/.complete"
}

KAFKA_JAVA=(java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$KAFKA_DATA/log4j2.properties" -cp "$KAFKA_HOME/libs/*")

kafka_start() {
  rm -rf "$KAFKA_DATA" && mkdir -p "$KAFKA_DATA"
  cat >"$KAFKA_DATA/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$MOOC_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$MOOC_KAFKA_PORT,CONTROLLER://127.0.0.1:$MOOC_KAFKA_CONTROLLER_PORT,PODS://127.0.0.1:$MOOC_KAFKA_POD_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$MOOC_KAFKA_PORT,PODS://$K8S_NODE_IP:$MOOC_KAFKA_POD_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PODS:PLAINTEXT
log.dirs=$KAFKA_DATA/data
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  cat >"$KAFKA_DATA/log4j2.properties" <<'PROPS'
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache
logger.apache.level = WARN
PROPS
  "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format -t "$("${KAFKA_JAVA[@]}" kafka.tools.StorageTool random-uuid)" \
    -c "$KAFKA_DATA/server.properties" >"$MOOC_RUN/kafka-format.log" 2>&1 ||
    die "formatting Kafka's log directory failed; see $MOOC_RUN/kafka-format.log"
  start_daemon kafka "${KAFKA_JAVA[@]}" kafka.Kafka "$KAFKA_DATA/server.properties"
  wait_until Kafka 90 kafka_ready || die "Kafka did not start; see $MOOC_RUN/kafka.log"
}

kafka_ready() {
  port_open "$MOOC_KAFKA_PORT" && grep -q 'Kafka Server started' "$MOOC_RUN/kafka.log" 2>/dev/null
}

kafka_env() {
  echo "export KAFKA_BOOTSTRAP=127.0.0.1:$MOOC_KAFKA_PORT"
  echo "export MOOC_POD_KAFKA_BOOTSTRAP=$K8S_NODE_IP:$MOOC_KAFKA_POD_PORT"
}
