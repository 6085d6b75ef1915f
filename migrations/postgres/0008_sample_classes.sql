-- The classes of a summary's samples, which pricing needs: each hourly sample is a template
-- (is_template), else an SRM placeholder (srm_placeholder), else powered on (powered_on),
-- else powered off. Powered-off samples are samples_present minus these three. A monthly
-- summary holds the sums of its days.
ALTER TABLE vm_daily_summary ADD COLUMN samples_powered_on BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vm_daily_summary ADD COLUMN samples_template BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vm_daily_summary ADD COLUMN samples_placeholder BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vm_monthly_summary ADD COLUMN samples_powered_on BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vm_monthly_summary ADD COLUMN samples_template BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vm_monthly_summary ADD COLUMN samples_placeholder BIGINT NOT NULL DEFAULT 0;

-- Summaries written before this version did not class their samples: they are taken as
-- powered on for every sample they were present in (what they were charged as until now).
-- Re-aggregating a day whose hourly rows are still kept replaces this with the true classes.
UPDATE vm_daily_summary SET samples_powered_on = samples_present;
UPDATE vm_monthly_summary SET samples_powered_on = samples_present;
