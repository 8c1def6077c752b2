CREATE TABLE `error_counts` (
	`hour` integer NOT NULL,
	`app_id` text NOT NULL,
	`kind` text NOT NULL,
	`category` text NOT NULL,
	`name` text NOT NULL,
	`field` text NOT NULL,
	`rule` text NOT NULL,
	`n` integer NOT NULL,
	PRIMARY KEY(`hour`, `app_id`, `kind`, `category`, `name`, `field`, `rule`)
);
--> statement-breakpoint
CREATE TABLE `payload_schemas` (
	`category` text NOT NULL,
	`name` text NOT NULL,
	`app_id` text DEFAULT '' NOT NULL,
	`schema` text NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`category`, `name`, `app_id`)
);
--> statement-breakpoint
CREATE INDEX `payload_schemas_app` ON `payload_schemas` (`app_id`);--> statement-breakpoint
ALTER TABLE `error_log` ADD `category` text;--> statement-breakpoint
ALTER TABLE `error_log` ADD `name` text;--> statement-breakpoint
ALTER TABLE `error_log` ADD `field` text;--> statement-breakpoint
ALTER TABLE `error_log` ADD `rule` text;--> statement-breakpoint
CREATE INDEX `error_log_app` ON `error_log` (`app_id`,`occurred_at`);--> statement-breakpoint
CREATE INDEX `error_log_type` ON `error_log` (`category`,`name`,`occurred_at`);--> statement-breakpoint
CREATE INDEX `error_log_field` ON `error_log` (`field`,`occurred_at`);--> statement-breakpoint
-- Entries already in the log get the type and the first reason where they can be read back.
UPDATE `error_log` SET
  `field` = json_extract(`reasons`, '$[0].field'),
  `category` = CASE WHEN json_valid(`payload`) AND json_type(`payload`, '$.category') = 'text' THEN substr(json_extract(`payload`, '$.category'), 1, 150) END,
  `name` = CASE WHEN json_valid(`payload`) AND json_type(`payload`, '$.name') = 'text' THEN substr(json_extract(`payload`, '$.name'), 1, 150) END
  WHERE `kind` = 'invalid_event' AND json_valid(`reasons`);--> statement-breakpoint
INSERT INTO `error_counts` (`hour`, `app_id`, `kind`, `category`, `name`, `field`, `rule`, `n`)
  SELECT `occurred_at` / 3600000000, coalesce(`app_id`, ''), `kind`, coalesce(`category`, ''), coalesce(`name`, ''),
         coalesce(`field`, ''), coalesce(`rule`, ''), count(*)
  FROM `error_log` GROUP BY 1, 2, 3, 4, 5, 6, 7;--> statement-breakpoint
-- Every entry written from now on is counted once, when it is written (a redelivered message's
-- entry meets error_log_dedup and is not inserted, so it is not counted again).
CREATE TRIGGER `error_log_count` AFTER INSERT ON `error_log`
BEGIN
  INSERT INTO `error_counts` (`hour`, `app_id`, `kind`, `category`, `name`, `field`, `rule`, `n`)
  VALUES (NEW.`occurred_at` / 3600000000, coalesce(NEW.`app_id`, ''), NEW.`kind`, coalesce(NEW.`category`, ''),
          coalesce(NEW.`name`, ''), coalesce(NEW.`field`, ''), coalesce(NEW.`rule`, ''), 1)
  ON CONFLICT DO UPDATE SET `n` = `n` + 1;
END;
--> statement-breakpoint
CREATE INDEX `error_counts_app` ON `error_counts` (`app_id`,`hour`);
