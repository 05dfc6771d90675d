-- The change signal's triggers fire in every session, also with session_replication_role = replica
-- (logical replication, restores that set it): a change that skipped them would go unseen.
ALTER TABLE "access_keys" ENABLE ALWAYS TRIGGER "access_keys_changed";
--> statement-breakpoint
ALTER TABLE "access_keys" ENABLE ALWAYS TRIGGER "access_keys_truncated";
--> statement-breakpoint
ALTER TABLE "buckets" ENABLE ALWAYS TRIGGER "buckets_changed";
--> statement-breakpoint
ALTER TABLE "buckets" ENABLE ALWAYS TRIGGER "buckets_truncated";
--> statement-breakpoint
-- Rows `keygate store migrate` copied from SQLite: a key deleted in PostgreSQL after it was copied
-- is never copied again by a later run (src/store/migrate.ts).
CREATE TABLE "migrated_rows" (
	"kind" text NOT NULL CHECK ("kind" IN ('key', 'bucket')),
	"id" text NOT NULL,
	"migrated_at" timestamp (3) with time zone NOT NULL DEFAULT now(),
	PRIMARY KEY ("kind", "id")
);
