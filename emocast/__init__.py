"""emocast: on-device attention and emotion sensing that publishes events, never images."""

__version__ = "0.1.0"
