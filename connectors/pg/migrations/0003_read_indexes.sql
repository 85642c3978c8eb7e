-- What the read API's queries need beyond the sink's own indexes: the
-- celebrities a viewer follows (a feed merges their posts) without a scan
-- of every user's counts, and a user's followees newest first.
CREATE INDEX user_counts_celebrity_idx ON user_counts (user_id) WHERE is_celebrity;
CREATE INDEX follows_follower_created_idx ON follows (follower_id, created_at DESC);
