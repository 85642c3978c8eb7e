/*
 * fl_api_stream.c - live updates: GET /v1/stream as WebSocket (wslay
 * framing on sockets that libmicrohttpd hands over after the upgrade).
 *
 * One hub thread owns every stream: an epoll loop over the client sockets,
 * the Redis pub/sub connection (SUBSCRIBE user:{V} while V has a stream,
 * the channel the Redis sink publishes each feed change on) and an eventfd
 * that worker threads ring when they hand over a new stream. A feed change
 * becomes `{"event":"update","position":"...","post":{...}}` (the post
 * hydrated once for all of the viewer's streams) or
 * `{"event":"delete","post_id":"P"}`. Mastodon clients get the same events
 * in Mastodon's shapes, over WebSocket (/api/v1/streaming?stream=user) or
 * as server-sent events (/api/v1/streaming/user: libmicrohttpd sends the
 * stream's buffer, suspending the connection while it is empty).
 *
 * No event is lost across reconnects: every update carries its position
 * (the feed cursor of the post), and a client that connects with
 * `since=POSITION` first gets every feed item newer than it, read from the
 * feed itself (oldest first), then the live events; the viewer's channel is
 * subscribed before that read, so what happens meanwhile waits in the
 * pub/sub socket, and live updates of posts the catch-up already sent are
 * dropped. When the pub/sub connection is lost, every stream catches up
 * from the newest position it was sent once it is back. Pings go out every
 * stream.ping_s; an idle stream costs its socket, a wslay context and a
 * small struct.
 */
#include "fl_api_int.h"
#include "fl_clock.h"
#include "fl_log.h"
#include "fl_sink_store.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wslay/wslay.h>

#define CATCHUP_MAX 800 /* the feed's cap: a longer gap is served in full */
/* what may wait for a client that does not read: past it the stream is
 * closed (the client reconnects with since= and loses nothing) */
#define SSE_MAX_BUFFERED (4u << 20)
#define WS_MAX_QUEUED    4096
#define EV_BATCH         64

/* What a stream speaks: feedline's events over WebSocket, Mastodon's over
 * WebSocket ({"stream":["user"],"event","payload"}), or Mastodon's as
 * server-sent events. */
enum { MODE_FEEDLINE, MODE_MASTO_WS, MODE_SSE };

/* An SSE stream's output, shared with the libmicrohttpd thread that sends
 * it: the hub appends and resumes the connection; the content reader
 * takes, and suspends the connection when nothing is left. */
typedef struct sse {
    pthread_mutex_t mu;
    char *buf;
    size_t len, off, cap;
    struct MHD_Connection *conn;
    bool suspended;
    bool closed; /* libmicrohttpd is done with the response */
    bool drop;   /* the hub gave up on the client: end the response */
    int refs;    /* the hub's and the response's */
} sse_t;

typedef struct client {
    struct client *next_v, *prev_v; /* the viewer's streams */
    struct client *next_all;        /* every stream (pings) */
    int fd;
    struct MHD_UpgradeResponseHandle *urh;
    wslay_event_context_ptr ws;
    int64_t viewer;
    char *extra; /* bytes MHD read past the handshake, fed to wslay first */
    size_t extra_n, extra_at;
    fl_pos_t high; /* newest position sent */
    bool has_high;
    int64_t *sent; /* post ids the catch-up sent (sorted), dropped when live */
    size_t n_sent;
    uint32_t events; /* epoll events registered */
    bool dead;
    bool pending; /* a catch-up from pending_since waits for the subscription */
    fl_pos_t pending_since;
    int mode;   /* MODE_* */
    char *base; /* Mastodon modes: "http://HOST" of the statuses' URLs */
    sse_t *sse; /* MODE_SSE: no socket of its own (fd -1) */
} client_t;

/* A new stream handed over by a worker thread. */
typedef struct pending {
    struct pending *next;
    client_t *c;
} pending_t;

struct fl_stream_hub {
    fl_api_t *api;
    pthread_t thread;
    int ep, evfd;
    pthread_mutex_t lock; /* pending */
    pending_t *pending;
    atomic_bool stop;
    client_t *all;
    /* viewer -> first stream, open addressing */
    struct slot {
        int64_t viewer; /* 0: never used; -1: used, now free */
        client_t *head;
        bool subscribed; /* Redis confirmed the SUBSCRIBE */
    } * slots;
    size_t n_slots, n_used;
    redisContext *sub; /* pub/sub */
    int64_t sub_retry_ms;
    fl_src_t *redis, *pg; /* hydration and catch-up */
};

/* ---- viewer index ---- */

static struct slot *slot_of(fl_stream_hub_t *h, int64_t viewer, bool add)
{
    if (add && (h->n_used + 1) * 2 > h->n_slots) {
        size_t n = h->n_slots ? h->n_slots * 2 : 1024;
        struct slot *s = calloc(n, sizeof(*s)), *old = h->slots;
        if (!s)
            return NULL;
        size_t old_n = h->n_slots;
        h->slots = s;
        h->n_slots = n;
        h->n_used = 0;
        for (size_t i = 0; i < old_n; i++)
            if (old[i].head) {
                struct slot *d = slot_of(h, old[i].viewer, true);
                *d = old[i];
                h->n_used++;
            }
        free(old);
    }
    if (!h->n_slots)
        return NULL;
    size_t i = (size_t)((uint64_t)viewer * 0x9E3779B97F4A7C15ull >> 20) & (h->n_slots - 1);
    for (;; i = (i + 1) & (h->n_slots - 1)) {
        if (h->slots[i].head && h->slots[i].viewer == viewer)
            return &h->slots[i];
        if (!h->slots[i].head && h->slots[i].viewer == 0)
            return add ? &h->slots[i] : NULL;
    }
}

/* ---- pub/sub ---- */

static void sub_cmd(fl_stream_hub_t *h, const char *cmd, int64_t viewer)
{
    if (h->sub)
        redisAppendCommand(h->sub, "%s user:{%lld}", cmd, (long long)viewer);
}

static void sub_flush(fl_stream_hub_t *h)
{
    int done = 0;
    while (h->sub && !done)
        if (redisBufferWrite(h->sub, &done) != REDIS_OK) {
            redisFree(h->sub);
            h->sub = NULL;
        }
}

static void sub_connect(fl_stream_hub_t *h)
{
    char host[256];
    int port;
    struct timeval tv = {0, 250000};
    struct epoll_event ev = {.events = EPOLLIN};

    if (h->sub || fl_mono_ms() < h->sub_retry_ms)
        return;
    fl_sink_store_redis_endpoint(h->api->topo->endpoints.redis, host, sizeof(host), &port);
    h->sub = redisConnectWithTimeout(host, port, tv);
    if (!h->sub || h->sub->err) {
        if (h->sub)
            redisFree(h->sub);
        h->sub = NULL;
        h->sub_retry_ms = fl_mono_ms() + 500;
        return;
    }
    fcntl(h->sub->fd, F_SETFL, fcntl(h->sub->fd, F_GETFL) | O_NONBLOCK);
    ev.data.ptr = h; /* the hub itself marks the pub/sub socket */
    epoll_ctl(h->ep, EPOLL_CTL_ADD, h->sub->fd, &ev);
    for (size_t i = 0; i < h->n_slots; i++)
        if (h->slots[i].head)
            sub_cmd(h, "SUBSCRIBE", h->slots[i].viewer);
    sub_flush(h);
    fl_log_info("api", "streams: pub/sub connected");
}

static void sub_lost(fl_stream_hub_t *h)
{
    if (!h->sub)
        return;
    fl_log_warn("api", "streams: pub/sub connection lost; streams catch up when it is back");
    epoll_ctl(h->ep, EPOLL_CTL_DEL, h->sub->fd, NULL);
    redisFree(h->sub);
    h->sub = NULL;
    h->sub_retry_ms = fl_mono_ms() + 500;
    /* what is published meanwhile comes from the feed once subscribed again */
    for (size_t i = 0; i < h->n_slots; i++)
        h->slots[i].subscribed = false;
    for (client_t *c = h->all; c; c = c->next_all)
        if (c->has_high && !c->pending) {
            c->pending = true;
            c->pending_since = c->high;
        }
}

/* ---- sending ---- */

static void want(fl_stream_hub_t *h, client_t *c)
{
    uint32_t ev = 0;
    struct epoll_event e;

    if (c->dead || c->sse)
        return;
    if (wslay_event_want_read(c->ws))
        ev |= EPOLLIN;
    if (wslay_event_want_write(c->ws))
        ev |= EPOLLOUT;
    if (!ev) {
        c->dead = true; /* closed both ways */
        return;
    }
    if (ev != c->events) {
        e.events = ev;
        e.data.ptr = c;
        epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &e);
        c->events = ev;
    }
}

static void sse_unref(sse_t *x)
{
    bool last;

    pthread_mutex_lock(&x->mu);
    last = --x->refs == 0;
    pthread_mutex_unlock(&x->mu);
    if (last) {
        pthread_mutex_destroy(&x->mu);
        free(x->buf);
        free(x);
    }
}

/* Sends bytes as one text frame (WebSocket) or appends them (SSE). */
static void deliver(fl_stream_hub_t *h, client_t *c, const char *bytes, size_t n)
{
    if (c->dead || !bytes)
        return;
    if (c->sse) {
        sse_t *x = c->sse;
        pthread_mutex_lock(&x->mu);
        if (x->closed || x->len - x->off + n > SSE_MAX_BUFFERED) {
            c->dead = true;
            x->drop = true;
            if (x->suspended) {
                x->suspended = false;
                MHD_resume_connection(x->conn);
            }
        } else {
            if (x->off && x->off == x->len)
                x->off = x->len = 0;
            if (x->len + n > x->cap) {
                size_t cap = (x->len + n) * 2;
                char *b = realloc(x->buf, cap);
                if (b) {
                    x->buf = b;
                    x->cap = cap;
                }
            }
            if (x->len + n <= x->cap) {
                memcpy(x->buf + x->len, bytes, n);
                x->len += n;
            }
            if (x->suspended) {
                x->suspended = false;
                MHD_resume_connection(x->conn);
            }
        }
        pthread_mutex_unlock(&x->mu);
        return;
    }
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)bytes, n};
    if (wslay_event_get_queued_msg_count(c->ws) > WS_MAX_QUEUED) {
        c->dead = true; /* closed by drive() or the next ping round */
        return;
    }
    wslay_event_queue_msg(c->ws, &m); /* copies the message */
    if (wslay_event_send(c->ws) < 0)
        c->dead = true;
    want(h, c);
}

/* One feed change, rendered for a stream's mode. post: an update (NULL: a
 * delete of deleted_id). Caller frees. */
static char *render(const client_t *c, const fl_post_t *post, int64_t deleted_id)
{
    char *out = NULL, id[24];
    json_t *j = NULL;

    snprintf(id, sizeof(id), "%lld", (long long)(post ? post->post_id : deleted_id));
    if (c->mode == MODE_FEEDLINE) {
        if (post) {
            char cur[FL_CURSOR_MAX];
            fl_cursor_t pos = {.kind = FL_CURSOR_CHRONO, .pos = {post->created_at, post->post_id}};
            fl_cursor_encode(&pos, cur);
            j = json_pack("{s:s,s:s,s:o}", "event", "update", "position", cur, "post",
                          fl__api_post_json(post));
        } else {
            j = json_pack("{s:s,s:s}", "event", "delete", "post_id", id);
        }
        out = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        return out;
    }
    /* Mastodon: the payload is a Status (as a JSON string over WebSocket),
     * or the deleted status's id */
    char *payload = id;
    json_t *st = post ? fl__api_masto_status(c->base, post) : NULL;
    if (post && !(payload = st ? json_dumps(st, JSON_COMPACT) : NULL))
        return NULL;
    json_decref(st);
    if (c->mode == MODE_SSE) {
        if (asprintf(&out, "event: %s\ndata: %s\n\n", post ? "update" : "delete", payload) < 0)
            out = NULL;
    } else {
        j = json_pack("{s:[s],s:s,s:s}", "stream", "user", "event", post ? "update" : "delete",
                      "payload", payload);
        out = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
    }
    if (payload != id)
        free(payload);
    return out;
}

static void send_event(fl_stream_hub_t *h, client_t *c, const fl_post_t *post, int64_t deleted)
{
    char *s = render(c, post, deleted);
    deliver(h, c, s, s ? strlen(s) : 0);
    free(s);
}

static void sent_update(client_t *c, const fl_post_t *p)
{
    fl_pos_t pos = {p->created_at, p->post_id};
    if (!c->has_high || fl_pos_newer(pos, c->high))
        c->high = pos;
    c->has_high = true;
}

static fl_src_t *src_of(fl_stream_hub_t *h)
{
    return atomic_load(&h->api->redis_up) ? h->redis : h->pg;
}

static int id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The feed items newer than since (all of them, up to CATCHUP_MAX, when
 * since is NULL: nothing), sent oldest first. */
static void catch_up(fl_stream_hub_t *h, client_t *c, const fl_pos_t *since)
{
    fl_posts_t all = {0};
    fl_pos_t at;
    bool has_at = false;

    while (all.n < CATCHUP_MAX) {
        fl_posts_t page = {0};
        fl_src_t *src = src_of(h);
        if (src->ops->feed(src, c->viewer, has_at ? &at : NULL, 100, &page) != FL_OK &&
            (src == h->pg ||
             h->pg->ops->feed(h->pg, c->viewer, has_at ? &at : NULL, 100, &page) != FL_OK)) {
            fl_posts_clear(&page);
            break;
        }
        bool done = !page.more;
        for (size_t i = 0; i < page.n; i++) {
            fl_pos_t p = {page.v[i].created_at, page.v[i].post_id};
            fl_post_t *slot;
            if (!fl_pos_newer(p, *since) || !(slot = fl_posts_push(&all))) {
                done = true;
                break;
            }
            *slot = page.v[i];
            memset(&page.v[i], 0, sizeof(page.v[i]));
        }
        if (page.n) {
            at = (fl_pos_t){page.v[page.n - 1].created_at, page.v[page.n - 1].post_id};
            has_at = true;
        }
        fl_posts_clear(&page);
        if (done || !has_at)
            break;
    }
    int64_t *sent = realloc(c->sent, (c->n_sent + all.n + 1) * sizeof(*sent));
    if (sent)
        c->sent = sent;
    for (size_t i = all.n; i-- > 0;) {
        send_event(h, c, &all.v[i], 0);
        sent_update(c, &all.v[i]);
        if (sent)
            c->sent[c->n_sent++] = all.v[i].post_id;
    }
    if (c->sent)
        qsort(c->sent, c->n_sent, sizeof(*c->sent), id_cmp);
    fl_posts_clear(&all);
}

/* One pub/sub message: channel user:{V}, payload {"event","post_id"}. */
static void on_message(fl_stream_hub_t *h, const redisReply *r)
{
    int64_t viewer, pid;
    json_t *j;
    const char *ev, *ps;
    struct slot *s;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        sscanf(r->element[1]->str, "user:{%lld}", (long long *)&viewer) != 1)
        return;
    if (!(s = slot_of(h, viewer, false)) || !s->head)
        return;
    if (!strcmp(r->element[0]->str, "subscribe")) {
        /* from now on nothing published is missed: catch up from the feed */
        s->subscribed = true;
        for (client_t *c = s->head; c; c = c->next_v)
            if (c->pending) {
                c->pending = false;
                catch_up(h, c, &c->pending_since);
            }
        return;
    }
    if (strcmp(r->element[0]->str, "message"))
        return;
    j = json_loadb(r->element[2]->str, r->element[2]->len, 0, NULL);
    ev = json_string_value(json_object_get(j, "event"));
    ps = json_string_value(json_object_get(j, "post_id"));
    if (!ev || !ps || !fl_id_parse(ps, &pid)) {
        json_decref(j);
        return;
    }
    if (!strcmp(ev, "delete")) {
        for (client_t *c = s->head; c; c = c->next_v)
            if (!c->pending)
                send_event(h, c, NULL, pid);
    } else if (!strcmp(ev, "update")) {
        fl_post_t p = {0};
        bool found = false;
        fl_src_t *src = src_of(h);
        if (src->ops->post(src, pid, &p, &found) != FL_OK && src != h->pg)
            h->pg->ops->post(h->pg, pid, &p, &found);
        if (found && fl_post_visible(&p, viewer, true)) {
            for (client_t *c = s->head; c; c = c->next_v) {
                if (c->pending ||
                    (c->n_sent && bsearch(&pid, c->sent, c->n_sent, sizeof(pid), id_cmp)))
                    continue;
                send_event(h, c, &p, 0);
                sent_update(c, &p);
            }
        }
        fl_post_clear(&p);
    }
    json_decref(j);
}

static void sub_read(fl_stream_hub_t *h)
{
    void *r;

    if (redisBufferRead(h->sub) != REDIS_OK) {
        sub_lost(h);
        return;
    }
    while (h->sub && redisGetReplyFromReader(h->sub, &r) == REDIS_OK && r) {
        on_message(h, r);
        freeReplyObject(r);
    }
}

/* ---- wslay callbacks ---- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    client_t *c = user;
    ssize_t n;

    if (c->extra_at < c->extra_n) {
        size_t k = c->extra_n - c->extra_at < len ? c->extra_n - c->extra_at : len;
        memcpy(buf, c->extra + c->extra_at, k);
        c->extra_at += k;
        return (ssize_t)k;
    }
    while ((n = recv(c->fd, buf, len, 0)) < 0 && errno == EINTR)
        ;
    if (n < 0) {
        wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK
                                       ? WSLAY_ERR_WOULDBLOCK
                                       : WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return n;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    client_t *c = user;
    ssize_t n;

    while ((n = send(c->fd, data, len, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (n < 0) {
        wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK
                                       ? WSLAY_ERR_WOULDBLOCK
                                       : WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return n;
}

static void ws_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    /* clients send nothing the API reads; wslay answers pings and closes */
}

static const struct wslay_event_callbacks ws_cb = {ws_recv, ws_send, NULL,  NULL,
                                                   NULL,    NULL,    ws_msg};

/* ---- clients ---- */

static void client_close(fl_stream_hub_t *h, client_t *c)
{
    struct slot *s = slot_of(h, c->viewer, false);

    if (c->prev_v)
        c->prev_v->next_v = c->next_v;
    else if (s)
        s->head = c->next_v;
    if (c->next_v)
        c->next_v->prev_v = c->prev_v;
    if (s && !s->head) {
        sub_cmd(h, "UNSUBSCRIBE", c->viewer);
        sub_flush(h);
        s->viewer = -1; /* lookups go on past it */
        s->subscribed = false;
    }
    for (client_t **pp = &h->all; *pp; pp = &(*pp)->next_all)
        if (*pp == c) {
            *pp = c->next_all;
            break;
        }
    if (c->sse) {
        sse_unref(c->sse);
    } else {
        epoll_ctl(h->ep, EPOLL_CTL_DEL, c->fd, NULL);
        MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
        wslay_event_context_free(c->ws);
    }
    atomic_fetch_sub(&h->api->metrics.open_streams, 1);
    free(c->base);
    free(c->extra);
    free(c->sent);
    free(c);
}

static void client_open(fl_stream_hub_t *h, pending_t *p)
{
    client_t *c = p->c;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    struct slot *s = slot_of(h, c->viewer, true);

    if (!s) {
        c->dead = true;
        client_close(h, c);
        return;
    }
    if (!s->head) {
        s->viewer = c->viewer;
        s->subscribed = false;
        h->n_used++;
        sub_cmd(h, "SUBSCRIBE", c->viewer);
        sub_flush(h);
    }
    c->next_v = s->head;
    if (s->head)
        s->head->prev_v = c;
    s->head = c;
    c->next_all = h->all;
    h->all = c;
    if (!c->sse) {
        c->events = EPOLLIN;
        epoll_ctl(h->ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    if (c->pending && s->subscribed) {
        c->pending = false;
        catch_up(h, c, &c->pending_since);
    }
    want(h, c);
}

static void drive(fl_stream_hub_t *h, client_t *c, uint32_t events)
{
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && wslay_event_recv(c->ws) < 0)
        c->dead = true;
    if (!c->dead && (events & EPOLLOUT) && wslay_event_send(c->ws) < 0)
        c->dead = true;
    want(h, c);
    if (c->dead)
        client_close(h, c);
}

static void pings(fl_stream_hub_t *h)
{
    struct wslay_event_msg m = {WSLAY_PING, (const uint8_t *)"", 0};
    for (client_t *c = h->all, *next; c; c = next) {
        next = c->next_all;
        if (c->sse) {
            deliver(h, c, ":thump\n", 7);
            if (c->dead)
                client_close(h, c);
            continue;
        }
        wslay_event_queue_msg(c->ws, &m);
        drive(h, c, EPOLLOUT);
    }
}

static void *hub_main(void *arg)
{
    fl_stream_hub_t *h = arg;
    struct epoll_event evs[EV_BATCH];
    int64_t next_ping = fl_mono_ms() + h->api->cfg->stream_ping_s * 1000;

    while (!atomic_load(&h->stop)) {
        sub_connect(h);
        int n = epoll_wait(h->ep, evs, EV_BATCH, 200);
        for (int i = 0; i < n; i++) {
            void *who = evs[i].data.ptr;
            if (who == &h->evfd) {
                uint64_t v;
                pending_t *p;
                if (read(h->evfd, &v, sizeof(v)) < 0)
                    continue;
                pthread_mutex_lock(&h->lock);
                p = h->pending;
                h->pending = NULL;
                pthread_mutex_unlock(&h->lock);
                while (p) {
                    pending_t *next = p->next;
                    client_open(h, p);
                    free(p);
                    p = next;
                }
            } else if (who == h) {
                if (h->sub)
                    sub_read(h);
            } else {
                drive(h, who, evs[i].events);
            }
        }
        if (fl_mono_ms() >= next_ping) {
            pings(h);
            next_ping = fl_mono_ms() + h->api->cfg->stream_ping_s * 1000;
        }
    }
    while (h->all) {
        h->all->dead = true;
        client_close(h, h->all);
    }
    return NULL;
}

/* ---- the handover ---- */

static void hand_over(fl_stream_hub_t *h, client_t *c)
{
    pending_t *p = calloc(1, sizeof(*p));
    uint64_t one = 1;

    if (!p) {
        c->dead = true;
        return;
    }
    p->c = c;
    atomic_fetch_add(&h->api->metrics.open_streams, 1);
    pthread_mutex_lock(&h->lock);
    p->next = h->pending;
    h->pending = p;
    pthread_mutex_unlock(&h->lock);
    if (write(h->evfd, &one, sizeof(one)) < 0)
        fl_log_warn("api", "streams: cannot wake the hub: %s", strerror(errno));
}

bool fl__stream_add(fl_stream_hub_t *h, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh,
                    const char *extra, size_t extra_n, int64_t viewer, const fl_pos_t *since,
                    bool mastodon, const char *base)
{
    client_t *c = calloc(1, sizeof(*c));

    if (!c || wslay_event_context_server_init(&c->ws, &ws_cb, c) ||
        (extra_n && !(c->extra = malloc(extra_n))) || (mastodon && !(c->base = strdup(base)))) {
        if (c && c->ws)
            wslay_event_context_free(c->ws);
        if (c)
            free(c->extra);
        free(c);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return false;
    }
    fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
    c->fd = sock;
    c->urh = urh;
    c->viewer = viewer;
    c->mode = mastodon ? MODE_MASTO_WS : MODE_FEEDLINE;
    if (extra_n)
        memcpy(c->extra, extra, extra_n);
    c->extra_n = extra_n;
    if (since) {
        c->pending = true;
        c->pending_since = *since;
    }
    hand_over(h, c);
    return true;
}

/* libmicrohttpd's side of an SSE stream (its worker thread). */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    sse_t *x = cls;
    ssize_t n = 0;

    pthread_mutex_lock(&x->mu);
    if (x->drop) {
        pthread_mutex_unlock(&x->mu);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (x->off < x->len) {
        n = (ssize_t)(x->len - x->off < max ? x->len - x->off : max);
        memcpy(buf, x->buf + x->off, (size_t)n);
        x->off += (size_t)n;
    } else {
        /* nothing to send: wait, without polling, until the hub has some */
        x->suspended = true;
        MHD_suspend_connection(x->conn);
    }
    pthread_mutex_unlock(&x->mu);
    return n;
}

static void sse_done(void *cls)
{
    sse_t *x = cls;
    pthread_mutex_lock(&x->mu);
    x->closed = true;
    pthread_mutex_unlock(&x->mu);
    sse_unref(x);
}

struct MHD_Response *fl__stream_add_sse(fl_stream_hub_t *h, struct MHD_Connection *conn,
                                        int64_t viewer, const char *base)
{
    client_t *c = calloc(1, sizeof(*c));
    sse_t *x = calloc(1, sizeof(*x));
    struct MHD_Response *resp = NULL;

    if (!c || !x || !(c->base = strdup(base)))
        goto fail;
    pthread_mutex_init(&x->mu, NULL);
    x->conn = conn;
    x->refs = 2;
    /* a comment first, so that the headers go out at once */
    if (!(x->buf = strdup(":)\n")))
        goto fail;
    x->len = x->cap = 3;
    if (!(resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, x, sse_done)))
        goto fail;
    c->fd = -1;
    c->sse = x;
    c->viewer = viewer;
    c->mode = MODE_SSE;
    hand_over(h, c);
    return resp;
fail:
    if (x) {
        free(x->buf);
        free(x);
    }
    if (c)
        free(c->base);
    free(c);
    return NULL;
}

fl_stream_hub_t *fl__stream_hub_new(fl_api_t *api, char *errstr, size_t errstr_size)
{
    fl_stream_hub_t *h = calloc(1, sizeof(*h));
    struct epoll_event ev = {.events = EPOLLIN};

    if (!h) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    h->api = api;
    h->ep = epoll_create1(EPOLL_CLOEXEC);
    h->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&h->lock, NULL);
    h->redis = fl_src_redis_new(api->topo, api->cache);
    h->pg = fl_src_pg_new(api->topo);
    ev.data.ptr = &h->evfd;
    if (h->ep < 0 || h->evfd < 0 || !h->redis || !h->pg ||
        epoll_ctl(h->ep, EPOLL_CTL_ADD, h->evfd, &ev) ||
        pthread_create(&h->thread, NULL, hub_main, h)) {
        snprintf(errstr, errstr_size, "cannot start the stream hub: %s", strerror(errno));
        fl_src_free(h->redis);
        fl_src_free(h->pg);
        if (h->ep >= 0)
            close(h->ep);
        if (h->evfd >= 0)
            close(h->evfd);
        free(h);
        return NULL;
    }
    return h;
}

void fl__stream_hub_free(fl_stream_hub_t *h)
{
    if (!h)
        return;
    atomic_store(&h->stop, true);
    pthread_join(h->thread, NULL);
    for (pending_t *p = h->pending, *next; p; p = next) {
        next = p->next;
        if (p->c->sse) {
            sse_unref(p->c->sse);
        } else {
            MHD_upgrade_action(p->c->urh, MHD_UPGRADE_ACTION_CLOSE);
            wslay_event_context_free(p->c->ws);
        }
        free(p->c->extra);
        free(p->c->base);
        free(p->c);
        free(p);
    }
    if (h->sub)
        redisFree(h->sub);
    fl_src_free(h->redis);
    fl_src_free(h->pg);
    free(h->slots);
    close(h->ep);
    close(h->evfd);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
