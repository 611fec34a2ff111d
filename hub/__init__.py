"""The classroom hub: ingest kiosks' MQTT events (and analyze logs), store them once, serve lecture
timelines as an API and a web page. It imports the contract (``emocast.contract.events``: kinds,
schemas, envelope) and the shared core (``emocast.core``: settings, MQTT/TLS), never the device: no camera,
dlib or interpreter."""
