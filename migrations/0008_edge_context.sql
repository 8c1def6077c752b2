CREATE TABLE `context_counts` (
	`dim` text NOT NULL,
	`value` text NOT NULL,
	`category` text NOT NULL,
	`name` text NOT NULL,
	`app` integer NOT NULL,
	`hour` integer NOT NULL,
	`n` integer NOT NULL,
	PRIMARY KEY(`app`, `dim`, `value`, `category`, `name`, `hour`)
);
--> statement-breakpoint
CREATE INDEX `context_counts_app_name` ON `context_counts` (`app`,`dim`,`value`,`name`,`hour`);--> statement-breakpoint
CREATE INDEX `context_counts_app_category` ON `context_counts` (`app`,`dim`,`value`,`category`,`hour`);--> statement-breakpoint
CREATE TABLE `contexts` (
	`id` integer PRIMARY KEY NOT NULL,
	`body` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `contexts_body` ON `contexts` (`body`);--> statement-breakpoint
ALTER TABLE `applications` ADD `context` text DEFAULT 'on' NOT NULL;--> statement-breakpoint
ALTER TABLE `events` ADD `context` integer;--> statement-breakpoint
ALTER TABLE `events` ADD `country` text;--> statement-breakpoint
ALTER TABLE `events` ADD `device` text;--> statement-breakpoint
CREATE INDEX `events_country` ON `events` (`country`,`timestamp`) WHERE country IS NOT NULL;--> statement-breakpoint
CREATE INDEX `events_app_country` ON `events` (`app`,`country`,`timestamp`) WHERE country IS NOT NULL;--> statement-breakpoint
CREATE INDEX `events_device` ON `events` (`device`,`timestamp`) WHERE device IS NOT NULL;--> statement-breakpoint
CREATE INDEX `events_app_device` ON `events` (`app`,`device`,`timestamp`) WHERE device IS NOT NULL;