"""A real single-node Apache Kafka (KRaft) for development and tests, from Maven Central jars.

`LocalKafka` is what `okrflow kafka start|stop|status` and the pytest session fixture use.
"""

from okrflow.devkafka.broker import KafkaStatus, LocalKafka, LocalKafkaError

__all__ = ["KafkaStatus", "LocalKafka", "LocalKafkaError"]
