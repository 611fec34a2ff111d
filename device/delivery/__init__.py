"""Delivery: the durable outbox, the publisher and Home Assistant discovery, speaking the contract
in ``emocast.contract.events``. Nothing here sees an image."""
