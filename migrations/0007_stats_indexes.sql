CREATE INDEX `event_counts_app_name` ON `event_counts` (`app`,`name`,`hour`);--> statement-breakpoint
CREATE INDEX `event_counts_app_category` ON `event_counts` (`app`,`category`,`hour`);