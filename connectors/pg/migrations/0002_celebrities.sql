-- Celebrity status from feedline.celebrities (the fan-out's threshold with
-- hysteresis), kept like the counts until the user is registered; users
-- copies it.
ALTER TABLE user_counts ADD COLUMN is_celebrity boolean;
