-- The change signal (src/store/postgres/replica.ts): every change to keys or buckets that matters to
-- requests gives one row a new random change_id (and counts it in version), in the changing
-- transaction, and notifies every listening instance. Instances read change_id once per request
-- batch, so a change counts on the next request even when a notification is lost; the notification
-- only makes them reload before that request comes. A random id, unlike the counter, cannot come
-- back: a database restored from a backup differs from what any instance holds.
CREATE TABLE "keygate_generation" (
	"id" integer PRIMARY KEY CHECK ("id" = 1),
	"version" bigint NOT NULL,
	"change_id" uuid NOT NULL DEFAULT gen_random_uuid()
);
--> statement-breakpoint
INSERT INTO "keygate_generation" ("id", "version") VALUES (1, 0);
--> statement-breakpoint
CREATE FUNCTION "keygate_signal_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	-- last_used_at is a statistic written about once a minute per key and instance: not a change.
	IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'access_keys' AND (to_jsonb(NEW) - 'last_used_at') = (to_jsonb(OLD) - 'last_used_at') THEN
		RETURN NULL;
	END IF;
	UPDATE "keygate_generation" SET "version" = "version" + 1, "change_id" = gen_random_uuid() WHERE "id" = 1;
	PERFORM pg_notify('keygate_changes', '');
	RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "access_keys_changed" AFTER INSERT OR UPDATE OR DELETE ON "access_keys" FOR EACH ROW EXECUTE FUNCTION "keygate_signal_change"();
--> statement-breakpoint
CREATE TRIGGER "access_keys_truncated" AFTER TRUNCATE ON "access_keys" FOR EACH STATEMENT EXECUTE FUNCTION "keygate_signal_change"();
--> statement-breakpoint
CREATE TRIGGER "buckets_changed" AFTER INSERT OR UPDATE OR DELETE ON "buckets" FOR EACH ROW EXECUTE FUNCTION "keygate_signal_change"();
--> statement-breakpoint
CREATE TRIGGER "buckets_truncated" AFTER TRUNCATE ON "buckets" FOR EACH STATEMENT EXECUTE FUNCTION "keygate_signal_change"();
