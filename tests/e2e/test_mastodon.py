#!/usr/bin/env python3
"""The Mastodon-compatible surface (/api/v1/) end to end, read by a real
Mastodon client: Mastodon.py, installed by this test from PyPI into
BUILD/e2e-pydeps (a folder put on sys.path; nothing system-wide). A small
generated workload goes through the whole pipeline and feedline-api (the
helpers of test_api.py), then for a few viewers with long feeds:

1. the client's instance() and version check accept the server;
   account_verify_credentials() is the viewer;
2. timeline_home() paged with fetch_next() to its end holds the same ids
   and texts (as Mastodon's HTML), in the same order, as /v1/feed of that
   viewer; the same for account_statuses() against /v1/users/{id}/posts;
   status(), account() equal their /v1 counterparts, a missing status
   raises MastodonNotFoundError;
3. notifications() paged to the end equal /v1/notifications (favourite
   with its status, follow with its account);
4. max_id / since_id / min_id windows over the home timeline (raw HTTP),
   fetch_previous(), and bad parameters (400 with {"error": "..."});
5. streaming: stream_user() (server-sent events) receives a followed
   author's new post as an `update` and its deletion as a `delete`; a
   WebSocket on /api/v1/streaming?stream=user gets Mastodon's frame.

Environment:
  E2E_MASTO_USERS, E2E_MASTO_POSTS, E2E_MASTO_LIKES  workload (300, 2500, 2500)
  E2E_MASTO_SEED    workload seed (5)
  E2E_KEEP          keep the work folder
"""
import datetime
import html
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import test_api  # noqa: E402  (also sets up the paths and the stack's endpoints)
from test_api import BIN, log, token, wait_for  # noqa: E402

SIZE = test_api.workload_size("E2E_MASTO", users=300, posts=2500, likes=2500, seed=5)
PYDEPS = os.path.join(os.path.dirname(os.path.abspath(BIN)), "e2e-pydeps")


def mastodon_py():
    """Mastodon.py, installed on first use into PYDEPS."""
    if not os.path.isdir(os.path.join(PYDEPS, "mastodon")):
        log("installing Mastodon.py into %s" % PYDEPS)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--target", PYDEPS, "Mastodon.py"], check=True)
    sys.path.insert(0, PYDEPS)
    import mastodon
    return mastodon


def masto_html(text):
    """What the server's fl_masto_html writes: escaped, paragraphs at blank
    lines, single breaks as <br />."""
    out, i = [], 0
    text = text.replace("\r", "")
    while i < len(text):
        if text[i] == "\n":
            j = i
            while j < len(text) and text[j] == "\n":
                j += 1
            out.append("</p><p>" if j - i > 1 else "<br />")
            i = j
            continue
        out.append(html.escape(text[i], quote=True).replace("&#x27;", "&#39;"))
        i += 1
    return "<p>" + "".join(out) + "</p>"


def ms(dt):
    return int(round(dt.timestamp() * 1000))


def all_pages(m, first):
    items, page, n = list(first), first, 0
    while True:
        page = m.fetch_next(page)
        if not page:
            return items
        items += page
        n += 1
        assert n < 500, "no end to the pages"


def check_statuses(got, want, what):
    assert [s["id"] for s in got] == [p["post_id"] for p in want], \
        "%s: ids differ: %s vs %s" % (what, [s["id"] for s in got][:5],
                                      [p["post_id"] for p in want][:5])
    for s, p in zip(got, want):
        assert s["content"] == masto_html(p["text"]), (what, s["content"], p["text"])
        assert ms(s["created_at"]) == p["created_at"], (what, s["created_at"], p["created_at"])
        assert str(s["account"]["id"]) == p["author"]["user_id"], (what, s["account"], p)
        assert s["favourites_count"] == p["like_count"], (what, s["id"])
        assert s["visibility"] == {"public": "public", "followers": "private",
                                   "private": "direct"}[p["visibility"]], (what, s["id"])
        assert s["in_reply_to_id"] == p["reply_to"], (what, s["id"])


def check_viewer(mastodon, cl, port, v):
    m = mastodon.Mastodon(api_base_url="http://127.0.0.1:%d" % port, access_token=token(v),
                          version_check_mode="created")
    assert m.verify_minimum_version("4.0.0", cached=True), "the client refused the version"
    inst = m.instance()
    assert inst["title"] == "feedline" and inst["version"].startswith("4.0.0"), inst
    me = m.account_verify_credentials()
    _, prof = cl.ok("/v1/users/%s" % v, v)
    assert str(me["id"]) == str(v) and me["username"] == prof["handle"], (me, prof)
    assert me["followers_count"] == prof["followers_count"], (me, prof)

    feed, _ = cl.pages("/v1/feed", v, limit=100)
    home = all_pages(m, m.timeline_home())
    check_statuses(home, feed, "home of %s" % v)

    first = home[0]
    st = m.status(first["id"])
    assert st["id"] == first["id"] and st["content"] == first["content"], (st, first)
    author = feed[0]["author"]["user_id"]
    acct = m.account(author)
    _, aprof = cl.ok("/v1/users/%s" % author, v)
    assert acct["username"] == aprof["handle"] and acct["statuses_count"] == aprof[
        "posts_count"] and acct["following_count"] == aprof["following_count"], (acct, aprof)
    want_posts, _ = cl.pages("/v1/users/%s/posts" % author, v, limit=100)
    got_posts = all_pages(m, m.account_statuses(author, limit=7))
    check_statuses(got_posts, want_posts, "posts of %s for %s" % (author, v))
    try:
        m.status("999999999999")
        raise AssertionError("a missing status did not raise")
    except mastodon.MastodonNotFoundError:
        pass

    want_notes, _ = cl.pages("/v1/notifications", v, limit=100)
    notes = all_pages(m, m.notifications(limit=15))
    # favourites of posts gone are left out on both sides' terms: compare
    # with the /v1 items whose post still reads
    got = [(n["type"], str(n["account"]["id"]),
            str(n["status"]["id"]) if n["type"] == "favourite" else None,
            ms(n["created_at"])) for n in notes]
    liked = {g[2] for g in got if g[2]}
    gone = {n["post_id"] for n in want_notes if n["kind"] == "like" and n["post_id"] not in liked
            and cl.get("/v1/posts/%s" % n["post_id"], v)[0] == 404}
    want = [("favourite" if n["kind"] == "like" else "follow", n["actor_id"], n["post_id"],
             n["created_at"]) for n in want_notes if n["post_id"] not in gone]
    assert got == want, "notifications of %s differ: %s vs %s" % (v, got[:3], want[:3])
    assert len({n["id"] for n in notes}) == len(notes), "notification ids repeat"
    return m, home, len(notes)


def check_windows(m, cl, v, home):
    """max_id / since_id / min_id over the home timeline, by raw HTTP."""
    ids = [s["id"] for s in home]
    assert len(ids) >= 16, "viewer %s has a short feed" % v

    def get(q):
        st, h, doc = cl.get("/api/v1/timelines/home?" + q, v)
        assert st == 200, (q, st, doc)
        return [s["id"] for s in doc], h.get("link", "")

    got, link = get("limit=5&min_id=%s" % ids[12])
    assert got == ids[7:12], ("min_id", got, ids[7:12])
    assert 'rel="next"' in link and 'rel="prev"' in link and "max_id=%s" % ids[11] in link, link
    got, _ = get("limit=5&since_id=%s" % ids[12])
    assert got == ids[:5], ("since_id", got, ids[:5])
    got, _ = get("limit=40&max_id=%s&since_id=%s" % (ids[2], ids[12]))
    assert got == ids[3:12], ("max_id+since_id", got)
    got, _ = get("limit=3&max_id=%s&min_id=%s" % (ids[2], ids[12]))
    assert got == ids[9:12], ("max_id+min_id", got)
    got, _ = get("min_id=%s" % ids[0])
    assert got == [], ("min_id at the top", got)
    # the client's own way up: fetch_previous from a page in the middle
    mid = m.timeline_home(max_id=ids[9], limit=4)
    assert [s["id"] for s in mid] == ids[10:14], [s["id"] for s in mid]
    prev = m.fetch_previous(mid)
    assert [s["id"] for s in prev] == ids[6:10], [s["id"] for s in prev]
    got, link = get("limit=999")
    assert got == ids[:40], "limit is clamped to 40"
    for q in ("limit=0", "limit=-1", "limit=x", "max_id=abc", "since_id=1.5",
              "max_id=999999999999"):
        st, _, doc = cl.get("/api/v1/timelines/home?" + q, v)
        assert st == 400 and isinstance(doc.get("error"), str), (q, st, doc)
    st, _, doc = cl.get("/api/v1/notifications?max_id=12", v)
    assert st == 400 and isinstance(doc.get("error"), str), (st, doc)
    st, h, doc = cl.get("/api/v1/timelines/home")
    assert st == 401 and isinstance(doc.get("error"), str), (st, doc)
    st, _, doc = cl.get("/api/v1/statuses/12345678901", v)
    assert st == 404 and doc == {"error": "Record not found"}, (st, doc)
    st, _, doc = cl.get("/api/v1/accounts/%s/statuses?pinned=true" % v, v)
    assert st == 200 and doc == [], (st, doc)


def check_streaming(mastodon, cl, port, viewers):
    """A followed author posts and deletes: Mastodon.py's stream_user()
    (server-sent events) gets the update and the delete; a WebSocket on
    /api/v1/streaming?stream=user gets the same update as Mastodon's frame."""
    import websocket
    v, a = test_api.regular_followee(cl, viewers)

    class Listener(mastodon.StreamListener):
        def __init__(self):
            super().__init__()
            self.updates, self.deletes = [], []

        def on_update(self, status):
            self.updates.append(status)

        def on_delete(self, status_id):
            self.deletes.append(str(status_id))

    m = mastodon.Mastodon(api_base_url="http://127.0.0.1:%d" % port, access_token=token(v),
                          version_check_mode="created")
    lst = Listener()
    handle = m.stream_user(lst, run_async=True, reconnect_async=False)
    ws = websocket.create_connection(
        "ws://127.0.0.1:%d/api/v1/streaming?stream=user&access_token=%s" % (port, token(v)),
        timeout=20)
    try:
        time.sleep(1)  # the streams are subscribed
        pid = test_api.new_post(a, "live <b>& well",
                                8 * 10 ** 12 + int(time.time() * 1000) % 10 ** 9)
        now = int(time.time() * 1000)
        wait_for(lambda: any(str(u["id"]) == str(pid) for u in lst.updates), 20,
                 "Mastodon.py's stream to get the update")
        got = [u for u in lst.updates if str(u["id"]) == str(pid)][0]
        assert got["content"] == masto_html("live <b>& well"), got["content"]
        while True:
            frame = json.loads(ws.recv())
            if frame["event"] == "update" and json.loads(frame["payload"])["id"] == str(pid):
                break
        assert frame["stream"] == ["user"], frame
        test_api.produce_events([{"type": "PostDeleted", "event_id": "masto-d-%d" % pid,
                                  "occurred_at": now + 1, "post_id": pid, "author_id": a}])
        wait_for(lambda: str(pid) in lst.deletes, 20, "Mastodon.py's stream to get the delete")
    finally:
        handle.close()
        ws.close()
    log("streaming: Mastodon.py (server-sent events) and a WebSocket got the update, "
        "Mastodon.py the delete")


def run(mastodon, api, cl, gen):
    """The checks, for the three viewers with the longest feeds."""
    viewers = test_api.longest_feeds(cl, test_api.registered_users(gen)[:150], 3)
    for v in viewers:
        m, home, n_notes = check_viewer(mastodon, cl, api.port, v)
        log("viewer %s: %d home statuses and %d notifications equal /v1" %
            (v, len(home), n_notes))
    check_windows(m, cl, viewers[-1], home)
    log("max_id / since_id / min_id windows, fetch_previous, errors as expected")
    check_streaming(mastodon, cl, api.port, viewers)


def main():
    mastodon = mastodon_py()
    test_api.run_small("mastodon", SIZE, lambda api, cl, gen: run(mastodon, api, cl, gen))


if __name__ == "__main__":
    main()
