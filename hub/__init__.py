"""The classroom hub: ingest kiosks' MQTT events (and analyze logs), store them once, serve lecture
timelines as an API and a web page. It imports from ``emocast.device`` only the contract (kinds,
schemas, envelope) and the MQTT/TLS settings parser: never the camera, dlib or the interpreter."""
