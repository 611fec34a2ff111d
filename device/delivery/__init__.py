"""Delivery: the MQTT contract (topics, envelope, schemas), the durable outbox, the publisher
and Home Assistant discovery. Nothing here sees an image."""
