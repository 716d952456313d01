// Schema migrations, numbered by PRAGMA user_version: MIGRATIONS[i] takes the schema from
// version i to i + 1. Append only; never edit a migration that has shipped.

import type { Database } from 'better-sqlite3';
import { CatalogError, errorMessage } from './errors';

export interface Migration {
  readonly name: string;
  readonly up: string | ((db: Database) => void);
}

export const MIGRATIONS: readonly Migration[] = [
  {
    name: 'snapshots table, its indexes, and per-account totals kept by triggers',
    up: `
      CREATE TABLE snapshots (
        seq              INTEGER PRIMARY KEY AUTOINCREMENT,
        id               TEXT    NOT NULL UNIQUE,
        account_id       TEXT    NOT NULL,
        origin_volume_id TEXT    NOT NULL,
        destination_id   TEXT    NOT NULL,
        storage_node_id  TEXT    NOT NULL,
        display_name     TEXT,
        state            TEXT    NOT NULL
          CHECK (state IN ('creating', 'registering', 'available', 'failed', 'deleting', 'deleted')),
        size_bytes       INTEGER NOT NULL CHECK (size_bytes >= 0),
        method           TEXT    CHECK (method IN ('reflink', 'copy')),
        consistency      TEXT    CHECK (consistency IN ('point-in-time', 'inconsistent')),
        progress         INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
        bytes_total      INTEGER CHECK (bytes_total >= 0),
        bytes_done       INTEGER CHECK (bytes_done >= 0),
        allocated_bytes  INTEGER CHECK (allocated_bytes >= 0),
        shared_bytes     INTEGER CHECK (shared_bytes >= 0),
        exclusive_bytes  INTEGER CHECK (exclusive_bytes >= 0),
        checksum         TEXT,
        error            TEXT,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        deleted_at       INTEGER,
        CHECK ((state = 'deleted') = (deleted_at IS NOT NULL))
      ) STRICT;

      -- index: one account's snapshots newest first, and the filtered variants. state, deleted_at
      -- (and created_at) ride along so that the "live or recently deleted" test, OFFSET skipping and
      -- filtered counts never leave the index.
      CREATE INDEX snapshots_account_seq ON snapshots (account_id, seq DESC, state, deleted_at, created_at);
      CREATE INDEX snapshots_origin_volume_seq ON snapshots (origin_volume_id, seq DESC, state, deleted_at);
      CREATE INDEX snapshots_destination_seq ON snapshots (destination_id, seq DESC, state, deleted_at);
      -- start-up reconciliation (creating / registering / deleting) and index filtered by a rare state.
      CREATE INDEX snapshots_state_account ON snapshots (state, account_id, seq DESC);
      -- the deleted half of "live or deleted within the last 15 minutes": only deleted rows,
      -- ordered by deletion time, so the recent ones are one short range.
      CREATE INDEX snapshots_recently_deleted ON snapshots (deleted_at, account_id) WHERE state = 'deleted';

      -- Counts and byte sums per (account, state), maintained in the same transaction as every
      -- change to snapshots. Index totals, per-state gauges and space totals read this instead of
      -- counting 100,000 rows on the event loop.
      CREATE TABLE snapshot_totals (
        account_id      TEXT    NOT NULL,
        state           TEXT    NOT NULL,
        snapshots       INTEGER NOT NULL,
        allocated_bytes INTEGER NOT NULL,
        exclusive_bytes INTEGER NOT NULL,
        PRIMARY KEY (account_id, state)
      ) STRICT, WITHOUT ROWID;

      CREATE TRIGGER snapshots_totals_insert AFTER INSERT ON snapshots BEGIN
        INSERT INTO snapshot_totals (account_id, state, snapshots, allocated_bytes, exclusive_bytes)
        VALUES (new.account_id, new.state, 1, coalesce(new.allocated_bytes, 0), coalesce(new.exclusive_bytes, 0))
        ON CONFLICT (account_id, state) DO UPDATE SET
          snapshots = snapshots + 1,
          allocated_bytes = allocated_bytes + excluded.allocated_bytes,
          exclusive_bytes = exclusive_bytes + excluded.exclusive_bytes;
      END;

      CREATE TRIGGER snapshots_totals_delete AFTER DELETE ON snapshots BEGIN
        UPDATE snapshot_totals SET
          snapshots = snapshots - 1,
          allocated_bytes = allocated_bytes - coalesce(old.allocated_bytes, 0),
          exclusive_bytes = exclusive_bytes - coalesce(old.exclusive_bytes, 0)
        WHERE account_id = old.account_id AND state = old.state;
      END;

      CREATE TRIGGER snapshots_totals_update
      AFTER UPDATE OF account_id, state, allocated_bytes, exclusive_bytes ON snapshots BEGIN
        UPDATE snapshot_totals SET
          snapshots = snapshots - 1,
          allocated_bytes = allocated_bytes - coalesce(old.allocated_bytes, 0),
          exclusive_bytes = exclusive_bytes - coalesce(old.exclusive_bytes, 0)
        WHERE account_id = old.account_id AND state = old.state;
        INSERT INTO snapshot_totals (account_id, state, snapshots, allocated_bytes, exclusive_bytes)
        VALUES (new.account_id, new.state, 1, coalesce(new.allocated_bytes, 0), coalesce(new.exclusive_bytes, 0))
        ON CONFLICT (account_id, state) DO UPDATE SET
          snapshots = snapshots + 1,
          allocated_bytes = allocated_bytes + excluded.allocated_bytes,
          exclusive_bytes = exclusive_bytes + excluded.exclusive_bytes;
      END;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export function schemaVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings the schema up to SCHEMA_VERSION. Each migration runs in its own IMMEDIATE transaction
 * that also bumps user_version, so a crash leaves the schema at a whole version, and two
 * processes opening the same file at once cannot both apply the same step.
 */
export function migrate(db: Database): { from: number; to: number } {
  const from = schemaVersion(db);
  if (from > SCHEMA_VERSION) {
    throw new CatalogError(
      `catalog schema version ${from} is newer than this volsnapd understands (${SCHEMA_VERSION}); ` +
        'run the volsnapd that wrote it, or a newer one',
    );
  }
  for (let version = from; version < SCHEMA_VERSION; version++) {
    const migration = MIGRATIONS[version]!;
    const step = db.transaction(() => {
      if (schemaVersion(db) !== version) return; // another process got here first
      if (typeof migration.up === 'string') db.exec(migration.up);
      else migration.up(db);
      db.pragma(`user_version = ${version + 1}`);
    });
    try {
      step.immediate();
    } catch (err) {
      throw new CatalogError(
        `catalog migration ${version} → ${version + 1} (${migration.name}) failed: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }
  return { from, to: schemaVersion(db) };
}
