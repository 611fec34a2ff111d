"""The contract between the parts: MQTT event kinds, topics and envelope with their JSON Schemas
(``events``, ``schemas/``), and the model card that the converter writes and the device trusts
(``model_card``). The device, the hub and the converter import it; it imports none of them.

Importing the package loads nothing: the hub reads ``events`` alone, and only the card's module
needs OpenCV (its preprocessing is the one mapping from a face crop to model input)."""
