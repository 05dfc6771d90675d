CREATE TABLE `access_keys` (
	`access_key_id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`kind` text NOT NULL,
	`bucket` text,
	`permissions` text NOT NULL,
	`sealed_secret` text NOT NULL,
	`expires_at` integer,
	`created_at` integer NOT NULL,
	`last_used_at` integer,
	CONSTRAINT "access_keys_kind_check" CHECK("access_keys"."kind" IN ('workspace', 'bucket')),
	CONSTRAINT "access_keys_bucket_matches_kind" CHECK(("access_keys"."kind" = 'bucket') = ("access_keys"."bucket" IS NOT NULL)),
	CONSTRAINT "access_keys_bucket_no_delete_admin" CHECK("access_keys"."kind" = 'workspace' OR "access_keys"."permissions" IN ('read', 'read,write'))
);
--> statement-breakpoint
CREATE INDEX `access_keys_bucket_idx` ON `access_keys` (`bucket`);--> statement-breakpoint
CREATE TABLE `buckets` (
	`name` text PRIMARY KEY NOT NULL,
	`datacenter` text,
	`endpoint` text,
	`region` text,
	`upstream_bucket` text NOT NULL,
	`cors_json` text,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `meta` (
	`name` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
