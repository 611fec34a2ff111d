"""The hub's database schema, as numbered migrations that run once each, in order, on SQLite and on
PostgreSQL alike.

A hub upgraded in place must keep years of lectures: a schema change is a new entry at the end of
``MIGRATIONS`` (never an edit of a shipped one), applied in the same transaction that records its
number in ``schema_version``. The SQL is the subset both databases read the same way; types are
spelled so both accept them (``DOUBLE PRECISION`` for epoch seconds, ``BIGINT`` for seq). A statement
that cannot be written so (reading JSON) is a dict of one per dialect.
"""

from __future__ import annotations

Statement = str | dict[str, str]  # SQL, or SQL per dialect ("sqlite", "postgresql")

MIGRATIONS: list[tuple[int, str, list[Statement]]] = [
    (1, "messages, devices, lectures", [
        # every durable payload (attention, emotion, summary) once, de-duplicated on its id;
        # ``value`` is the attention state or the emotion label, for timelines without JSON parsing
        """CREATE TABLE messages (
            id TEXT PRIMARY KEY,
            device TEXT NOT NULL,
            kind TEXT NOT NULL,
            seq BIGINT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
            track INTEGER,
            value TEXT,
            payload TEXT NOT NULL,
            received DOUBLE PRECISION NOT NULL,
            origin TEXT NOT NULL
        )""",
        "CREATE INDEX messages_device_ts ON messages (device, ts)",
        "CREATE INDEX messages_device_seq ON messages (device, seq)",
        # the latest of the retained and best-effort topics, one row per device
        """CREATE TABLE devices (
            device TEXT PRIMARY KEY,
            status TEXT,
            status_ts DOUBLE PRECISION,
            last_seen DOUBLE PRECISION,
            info TEXT,
            metrics TEXT,
            metrics_ts DOUBLE PRECISION
        )""",
        """CREATE TABLE lectures (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            devices TEXT NOT NULL,
            start_ts DOUBLE PRECISION NOT NULL,
            end_ts DOUBLE PRECISION,
            video_offset_s DOUBLE PRECISION NOT NULL,
            created DOUBLE PRECISION NOT NULL
        )""",
        # payloads that failed validation: counted per device and kind (the first is logged)
        """CREATE TABLE rejects (
            device TEXT NOT NULL,
            kind TEXT NOT NULL,
            count BIGINT NOT NULL,
            last_error TEXT NOT NULL,
            last_ts DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (device, kind)
        )""",
    ]),
    (2, "quarantine", [
        # rejected messages themselves (ASCII excerpts), newest kept ([store] quarantine_keep), for
        # GET /api/rejects: what a kiosk sent that the hub would not store, and why
        """CREATE TABLE quarantine (
            id TEXT PRIMARY KEY,
            device TEXT NOT NULL,
            kind TEXT NOT NULL,
            error TEXT NOT NULL,
            excerpt TEXT NOT NULL,
            received DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX quarantine_received ON quarantine (received)",
    ]),
    (3, "policy_dropped", [
        # emotion messages acknowledged and dropped by [privacy] emotion = false: a count, never content
        "ALTER TABLE devices ADD COLUMN policy_dropped BIGINT NOT NULL DEFAULT 0",
    ]),
    (4, "lecture video", [
        # a file name in [web] video_dir: the lecture's video, which the page plays beside its timeline
        "ALTER TABLE lectures ADD COLUMN video TEXT",
    ]),
    (5, "clock skew, retention by receive time", [
        # the kiosk's clock less the hub's, from its latest metrics (sent live, at QoS 0)
        "ALTER TABLE devices ADD COLUMN clock_skew_s DOUBLE PRECISION",
        # retention removes what the hub received long ago, whatever a kiosk's clock said
        "CREATE INDEX messages_received ON messages (received)",
    ]),
    (6, "imported events belong to their lecture", [
        # a recording's events are its lecture's alone (NULL: a live kiosk's), so two lectures imported
        # close together with recordings of the same names never mix
        "ALTER TABLE messages ADD COLUMN lecture TEXT",
        "CREATE INDEX messages_lecture ON messages (lecture, ts)",
        # one import of a file into a lecture, whatever ids it was given
        "CREATE UNIQUE INDEX messages_lecture_seq ON messages (lecture, device, seq) WHERE lecture IS NOT NULL",
        # rows imported before: to the earliest lecture naming their device over their time (as they were read)
        """UPDATE messages SET lecture = (
            SELECT l.id FROM lectures l
            WHERE l.devices <> replace(l.devices, '"' || messages.device || '"', '')
              AND messages.ts >= l.start_ts - 1800 AND messages.ts <= COALESCE(l.end_ts, messages.ts)
            ORDER BY l.created, l.id LIMIT 1)
           WHERE origin <> 'mqtt'""",
    ]),
    (7, "recorded lectures: their kind and the recording's date", [
        # 'recorded': made by an import, on its video's own time axis; 'live': started for kiosks
        "ALTER TABLE lectures ADD COLUMN kind TEXT NOT NULL DEFAULT 'live'",
        # when the recording was made, from the video's container (NULL: unknown; the page then says
        # when it was imported)
        "ALTER TABLE lectures ADD COLUMN recorded_ts DOUBLE PRECISION",
        "UPDATE lectures SET kind = 'recorded' "
        "WHERE EXISTS (SELECT 1 FROM messages WHERE messages.lecture = lectures.id)",
    ]),
    (8, "the payload fields a timeline reads, as columns", [
        # written at ingest and import (``StoredMessage.event``): a timeline reads columns, not JSON
        "ALTER TABLE messages ADD COLUMN starts_face SMALLINT NOT NULL DEFAULT 0",  # attention, previous null
        "ALTER TABLE messages ADD COLUMN previous_duration_s DOUBLE PRECISION",  # attention
        "ALTER TABLE messages ADD COLUMN window_s DOUBLE PRECISION",  # summary
        "ALTER TABLE messages ADD COLUMN blinks DOUBLE PRECISION",  # summary
        "ALTER TABLE messages ADD COLUMN face_time_s DOUBLE PRECISION",  # summary
        {"sqlite": "UPDATE messages SET "
                   "starts_face = coalesce(json_type(payload, '$.previous'), 'null') = 'null', "
                   "previous_duration_s = json_extract(payload, '$.previous_duration_s') WHERE kind = 'attention'",
         "postgresql": "UPDATE messages SET "
                       "starts_face = CASE WHEN coalesce(jsonb_typeof(payload::jsonb -> 'previous'), 'null') = 'null' "
                       "THEN 1 ELSE 0 END, "
                       "previous_duration_s = (payload::jsonb ->> 'previous_duration_s')::float8 "
                       "WHERE kind = 'attention'"},
        {"sqlite": "UPDATE messages SET window_s = json_extract(payload, '$.window_s'), "
                   "blinks = json_extract(payload, '$.blinks'), face_time_s = json_extract(payload, '$.face_time_s') "
                   "WHERE kind = 'summary'",
         "postgresql": "UPDATE messages SET window_s = (payload::jsonb ->> 'window_s')::float8, "
                       "blinks = (payload::jsonb ->> 'blinks')::float8, "
                       "face_time_s = (payload::jsonb ->> 'face_time_s')::float8 WHERE kind = 'summary'"},
    ]),
]

LATEST = MIGRATIONS[-1][0]
