CREATE TABLE `erasures` (
	`id` integer PRIMARY KEY NOT NULL,
	`app_id` text NOT NULL,
	`kind` text NOT NULL,
	`target` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`step` text,
	`requested_at` integer NOT NULL,
	`started_at` integer,
	`finished_at` integer,
	`scan_after` integer,
	`scan_before` integer,
	`scan_basis` text,
	`archive_cursor` text,
	`pending_key` text,
	`pending_events` integer,
	`d1_events` integer DEFAULT 0 NOT NULL,
	`counted_events` integer DEFAULT 0 NOT NULL,
	`archive_objects_read` integer DEFAULT 0 NOT NULL,
	`archive_objects_rewritten` integer DEFAULT 0 NOT NULL,
	`archive_events` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX `erasures_status` ON `erasures` (`status`,`id`);