CREATE TABLE `error_log` (
	`id` integer PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`app_id` text,
	`occurred_at` integer NOT NULL,
	`payload` text NOT NULL,
	`reasons` text NOT NULL,
	`source` text
);
--> statement-breakpoint
CREATE INDEX `error_log_time` ON `error_log` (`occurred_at`);--> statement-breakpoint
CREATE INDEX `error_log_kind` ON `error_log` (`kind`,`occurred_at`);--> statement-breakpoint
CREATE TABLE `events` (
	`id` integer PRIMARY KEY NOT NULL,
	`event_id` text NOT NULL,
	`session_id` text NOT NULL,
	`category` text NOT NULL,
	`name` text NOT NULL,
	`data` text NOT NULL,
	`timestamp` integer NOT NULL,
	`received_at` integer NOT NULL,
	`app_id` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `events_event_id_unique` ON `events` (`event_id`);--> statement-breakpoint
CREATE INDEX `events_timestamp` ON `events` (`timestamp`);--> statement-breakpoint
CREATE INDEX `events_session` ON `events` (`session_id`,`timestamp`);--> statement-breakpoint
CREATE INDEX `events_category` ON `events` (`category`,`timestamp`);--> statement-breakpoint
CREATE INDEX `events_name` ON `events` (`name`,`timestamp`);--> statement-breakpoint
CREATE INDEX `events_category_name` ON `events` (`category`,`name`,`timestamp`);