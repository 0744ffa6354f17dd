"""Broker feeders: RabbitMQ, MQTT, Redis and WebSocket subscriptions, thin adapters over the one contract."""
