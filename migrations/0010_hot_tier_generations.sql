CREATE TABLE `arrivals` (
	`first_id` integer PRIMARY KEY NOT NULL,
	`last_id` integer NOT NULL,
	`keys` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `context_value_counts` (
	`dim` text NOT NULL,
	`value` text NOT NULL,
	`category` text NOT NULL,
	`name` text NOT NULL,
	`app` integer NOT NULL,
	`hour` integer NOT NULL,
	`gen` integer NOT NULL,
	`n` integer NOT NULL,
	PRIMARY KEY(`app`, `dim`, `value`, `category`, `name`, `hour`, `gen`)
);
--> statement-breakpoint
CREATE INDEX `context_value_counts_app_name` ON `context_value_counts` (`app`,`dim`,`value`,`name`,`hour`);--> statement-breakpoint
CREATE INDEX `context_value_counts_app_category` ON `context_value_counts` (`app`,`dim`,`value`,`category`,`hour`);--> statement-breakpoint
CREATE INDEX `context_value_counts_gen` ON `context_value_counts` (`gen`);--> statement-breakpoint
CREATE TABLE `event_types` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`category` text NOT NULL,
	`name` text NOT NULL,
	`gen` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `event_types_key` ON `event_types` (`category`,`name`);--> statement-breakpoint
CREATE TABLE `generation_apps` (
	`gen` integer NOT NULL,
	`app` integer NOT NULL,
	PRIMARY KEY(`gen`, `app`)
);
--> statement-breakpoint
CREATE TABLE `generations` (
	`gen` integer PRIMARY KEY NOT NULL,
	`max_id` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `sessions` (
	`num` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`app` integer NOT NULL,
	`session_id` text NOT NULL,
	`gen` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `sessions_key` ON `sessions` (`app`,`session_id`);--> statement-breakpoint
CREATE TABLE `type_counts` (
	`category` text NOT NULL,
	`name` text NOT NULL,
	`app` integer NOT NULL,
	`hour` integer NOT NULL,
	`gen` integer NOT NULL,
	`n` integer NOT NULL,
	PRIMARY KEY(`category`, `name`, `app`, `hour`, `gen`)
);
--> statement-breakpoint
CREATE INDEX `type_counts_app_name` ON `type_counts` (`app`,`name`,`hour`);--> statement-breakpoint
CREATE INDEX `type_counts_app_category` ON `type_counts` (`app`,`category`,`hour`);--> statement-breakpoint
CREATE INDEX `type_counts_gen` ON `type_counts` (`gen`);--> statement-breakpoint
ALTER TABLE `contexts` ADD `country` text;--> statement-breakpoint
ALTER TABLE `contexts` ADD `device` text;--> statement-breakpoint
ALTER TABLE `contexts` ADD `gen` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `storage_state` ADD `next_id` integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE `storage_state` ADD `gen_span` integer;--> statement-breakpoint
ALTER TABLE `storage_state` ADD `rebuilt_through` integer;--> statement-breakpoint
ALTER TABLE `storage_state` ADD `budget_cut_at` integer;--> statement-breakpoint
ALTER TABLE `storage_state` ADD `budget_reported_at` integer;--> statement-breakpoint
INSERT INTO `storage_state` (`id`) VALUES (1) ON CONFLICT (`id`) DO NOTHING;--> statement-breakpoint
UPDATE `storage_state` SET `next_id` = (SELECT coalesce(max(`id`), 0) + 1 FROM `events`) WHERE `id` = 1;--> statement-breakpoint
UPDATE `contexts` SET `country` = `body` ->> 'country', `device` = `body` ->> 'device';--> statement-breakpoint
-- The planner's statistics table, which generation tables write their statistics into (generations.ts).
ANALYZE sqlite_schema;