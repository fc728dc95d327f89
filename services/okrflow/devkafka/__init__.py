"""A real single-node Apache Kafka (KRaft) for development and tests, from Maven Central jars.

`LocalKafka` is what `okrflow kafka start|stop|status` and the pytest session fixture use.
Its pom.xml, server.properties and log4j2.properties are package data in `resources/`
(`okrflow.settings.BUNDLED_KAFKA_CONFIG`), so an installed wheel runs it without the repo.
"""

from okrflow.devkafka.broker import KafkaStatus, LocalKafka, LocalKafkaError

__all__ = ["KafkaStatus", "LocalKafka", "LocalKafkaError"]
