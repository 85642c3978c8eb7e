-- feedline's PostgreSQL projection (README "PostgreSQL projection").
-- The tables the README names are a contract for the programs that
-- read them; user_counts, post_counts, affinity and sink_offsets are the
-- sink's own. Every row is derived from Kafka: dropping the database and
-- replaying the topics rebuilds it.

-- Registered users only: a user is a row here once UserRegistered was
-- applied. Counts that arrive earlier wait in user_counts.
CREATE TABLE users (
    id              bigint PRIMARY KEY,
    username        text NOT NULL,
    display_name    text NOT NULL,
    bio             text,
    is_celebrity    boolean NOT NULL DEFAULT false,
    followers_count int NOT NULL DEFAULT 0,
    following_count int NOT NULL DEFAULT 0,
    posts_count     int NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX users_username_idx ON users (username);

-- A post known only from its PostDeleted (the delete came first) is kept
-- as a deleted row so that its late PostCreated is ignored: content_text
-- '', privacy 'private', created_at the time of the deletion.
CREATE TABLE posts (
    id           bigint PRIMARY KEY,
    user_id      bigint NOT NULL,
    content_text text NOT NULL,
    privacy      text NOT NULL CHECK (privacy IN ('public', 'followers', 'private')),
    reply_to     bigint,
    created_at   timestamptz NOT NULL,
    deleted_at   timestamptz,
    likes_count  int NOT NULL DEFAULT 0
);
CREATE INDEX posts_user_created_idx ON posts (user_id, created_at DESC)
    WHERE deleted_at IS NULL;

CREATE TABLE follows (
    follower_id  bigint NOT NULL,
    following_id bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (follower_id, following_id)
);
CREATE INDEX follows_following_created_idx ON follows (following_id, created_at DESC);

CREATE TABLE post_likes (
    post_id    bigint NOT NULL,
    user_id    bigint NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX post_likes_user_created_idx ON post_likes (user_id, created_at DESC);

-- The same entries as Redis' feed:{U}: the precomputed part of U's feed.
CREATE TABLE feed_items (
    user_id    bigint NOT NULL,
    created_at timestamptz NOT NULL,
    post_id    bigint NOT NULL,
    author_id  bigint NOT NULL,
    PRIMARY KEY (user_id, created_at, post_id)
);

-- One per (recipient, kind, actor, post); post_id is NULL for a follow.
-- A withdrawn like or follow deletes its notification.
CREATE TABLE notifications (
    user_id    bigint NOT NULL,
    created_at timestamptz NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('like', 'follow')),
    actor_id   bigint NOT NULL,
    post_id    bigint,
    CONSTRAINT notifications_key UNIQUE NULLS NOT DISTINCT (user_id, kind, actor_id, post_id)
);
CREATE INDEX notifications_user_created_idx ON notifications (user_id, created_at DESC);

-- The sink's own tables.

-- Latest counts per user and post from feedline.engagement, whether or
-- not the user or post row exists yet (NULL: no fact seen); users and
-- posts copy them, at insert and on every change.
CREATE TABLE user_counts (
    user_id         bigint PRIMARY KEY,
    followers_count int,
    following_count int,
    posts_count     int
);
CREATE TABLE post_counts (
    post_id     bigint PRIMARY KEY,
    likes_count int NOT NULL
);

-- Viewer -> author affinity: how many of author's posts viewer likes
-- (rows with 0 are deleted). Ranking reads it.
CREATE TABLE affinity (
    viewer_id bigint NOT NULL,
    author_id bigint NOT NULL,
    likes     int NOT NULL,
    PRIMARY KEY (viewer_id, author_id)
);

-- Where each sink resumes each input partition, written in the same
-- transaction as the data. generation is raised by every claim; a flush
-- writes only while it still holds the generation it claimed.
-- next_offset NULL: claimed but never written.
CREATE TABLE sink_offsets (
    sink        text NOT NULL,
    topic       text NOT NULL,
    partition   int NOT NULL,
    next_offset bigint,
    generation  bigint NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (sink, topic, partition)
);
