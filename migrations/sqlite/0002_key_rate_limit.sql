ALTER TABLE `access_keys` ADD `rate_limit_per_second` real;--> statement-breakpoint
ALTER TABLE `access_keys` ADD `rate_limit_burst` integer;