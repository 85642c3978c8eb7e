#!/usr/bin/env python3
"""The live page (connectors/api/web/, served by feedline-api at /) end to
end in headless Chromium: a small generated workload through the whole
pipeline (the helpers of test_api.py) and feedline-api with its
development login on (FEEDLINE_DEV_LOGIN=true), then

1. the files: /, /app.css and /app.js with their types, an ETag and a 304
   for it, an unknown path a 404 with a JSON body; POST /dev/login mints a
   token the API accepts, refuses bad bodies (400) and other methods (405);
2. the page, driven by tests/e2e/web_driver.js (playwright-core, installed
   by this test with npm into BUILD/e2e-nodedeps, on Debian's
   /usr/bin/chromium): it loads, logs in as the registered user with the
   longest feed, shows that user's profile and the first page of the feed
   with the authors, times and like counts /v1/feed returns;
3. a post produced to Kafka (`feedline produce posts`) by an author the
   viewer follows appears at the top over the WebSocket, without a reload;
4. scrolling to the end loads the next page, the one /v1/feed's cursor
   gives;
5. Ranked shows the ranked first page of /v1/feed?order=ranked&explain=1,
   each item with its score and its parts;
6. Redis stopped: a refresh is served from PostgreSQL and the page shows
   its banner (Redis is started again after);
7. no script error in the page, and every HTTP response of the test (the
   page's files and the development login included) against the OpenAPI
   document.

Screenshots: BUILD/test-artifacts/live-page.png (the feed with the live
post on top), live-page-ranked.png, live-page-postgres.png; the driver's
log beside them (web-driver.log).

Environment:
  E2E_WEB_USERS, E2E_WEB_POSTS, E2E_WEB_LIKES  workload (300, 2500, 2500)
  E2E_WEB_SEED      workload seed (5)
  FEEDLINE_CHROMIUM the browser (/usr/bin/chromium)
  E2E_KEEP          keep the work folder
"""
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import test_api  # noqa: E402  (also sets up the paths and the stack's endpoints)
from test_api import BIN, ROOT, log, wait_for  # noqa: E402
from test_projections import redis_pid, stack_up  # noqa: E402

SIZE = test_api.workload_size("E2E_WEB", users=300, posts=2500, likes=2500, seed=5)
CHROMIUM = os.environ.get("FEEDLINE_CHROMIUM", "/usr/bin/chromium")
PLAYWRIGHT = "playwright-core@1.58.2"  # node 18 (Debian 12) and later
BUILD = os.path.dirname(os.path.abspath(BIN))
NODEDEPS = os.path.join(BUILD, "e2e-nodedeps")
ARTIFACTS = os.path.join(BUILD, "test-artifacts")
PAGE = 20  # the page's page size (app.js)


def playwright_core():
    """playwright-core, installed on first use into NODEDEPS (no browser
    download: the page runs in Debian's Chromium); its node_modules."""
    mods = os.path.join(NODEDEPS, "node_modules")
    want = PLAYWRIGHT.rsplit("@", 1)[1]
    try:
        with open(os.path.join(mods, "playwright-core", "package.json")) as f:
            have = json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        have = None
    if have != want:
        log("installing %s into %s" % (PLAYWRIGHT, NODEDEPS))
        subprocess.run(["npm", "install", "--prefix", NODEDEPS, "--no-save", "--no-audit",
                        "--no-fund", "--loglevel=error", PLAYWRIGHT], check=True,
                       env=dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1"))
    assert os.access(CHROMIUM, os.X_OK), "%s missing: ops/install installs chromium" % CHROMIUM
    return mods


class Page:
    """The page in Chromium through web_driver.js: page.do("login",
    user=...) sends one command and returns its answer."""

    def __init__(self, node_modules):
        self.log_path = os.path.join(ARTIFACTS, "web-driver.log")
        self.log_f = open(self.log_path, "w")
        self.p = subprocess.Popen(["node", os.path.join(HERE, "web_driver.js")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.log_f, text=True,
                                  env=dict(os.environ, NODE_PATH=node_modules,
                                           FEEDLINE_CHROMIUM=CHROMIUM))

    def do(self, op, **args):
        self.p.stdin.write(json.dumps(dict(args, op=op)) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise AssertionError("web_driver.js exited; see %s" % self.log_path)
        a = json.loads(line)
        if not a.pop("ok"):
            raise AssertionError("page: %s %s: %s" % (op, args, a["error"]))
        return a

    def close(self):
        try:
            self.do("close")
        except (AssertionError, OSError, ValueError):
            pass
        self.p.stdin.close()
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.log_f.close()


def check_files(cl):
    """The page's files, their caching, and what an unknown path gets."""
    etags = {}
    for path, ctype in (("/", "text/html"), ("/app.css", "text/css"),
                        ("/app.js", "text/javascript")):
        st, h, body = cl.get(path)
        assert st == 200 and h["content-type"].startswith(ctype + "; charset=utf-8"), (path, st, h)
        with open(os.path.join(ROOT, "connectors", "api", "web",
                               "index.html" if path == "/" else path[1:]), "rb") as f:
            assert body == f.read(), "%s is not the source tree's file" % path
        assert h["cache-control"] == "no-cache" and h.get("etag"), (path, h)
        etags[path] = h["etag"]
        st, h, body = cl.get(path, headers={"If-None-Match": h["etag"]})
        assert st == 304 and not body and h["etag"] == etags[path], (path, st, h)
        st, _, body = cl.get(path, headers={"If-None-Match": '"0000000000000000"'})
        assert st == 200 and body, (path, st)
    assert "script-src 'self'" in cl.get("/")[1]["content-security-policy"]
    st, h, _ = cl.get("/", method="HEAD")
    assert st == 200 and h.get("etag") == etags["/"], (st, h)
    st, _, doc = cl.get("/index.htm")
    assert st == 404 and doc["error"]["code"] == "not_found", (st, doc)
    log("files: /, /app.css, /app.js with their types, ETags and 304s; unknown paths 404")


def check_dev_login(cl, viewer):
    """POST /dev/login: a token for the user, which the API accepts; bad
    requests refused."""
    st, _, doc = cl.get("/dev/login", method="POST", body={"user_id": str(viewer)})
    assert st == 200 and doc["user_id"] == str(viewer) and doc["token_type"] == "Bearer", doc
    assert doc["expires_in"] > 0, doc
    st, _, feed = cl.get("/v1/feed?limit=1", tok=doc["token"])
    assert st == 200, "a development token refused: %d %s" % (st, feed)
    st, _, doc = cl.get("/dev/login", method="POST", body={"user_id": viewer})
    assert st == 200 and doc["user_id"] == str(viewer), doc
    for body in ({}, {"user_id": "0"}, {"user_id": "x"}, {"user_id": -3},
                 {"user_id": "1", "admin": True}, [], b"{", b""):
        st, _, doc = cl.get("/dev/login", method="POST", body=body,
                            headers={"Content-Type": "application/json"})
        assert st == 400 and doc["error"]["code"] == "bad_request", (body, st, doc)
    st, _, doc = cl.get("/dev/login", method="POST", body=b'{"user_id":"1"}',
                        headers={"Content-Type": "text/plain"})
    assert st == 400, (st, doc)
    st, _, doc = cl.get("/dev/login")
    assert st == 405 and doc["error"]["code"] == "method_not_allowed", (st, doc)
    log("dev login: a token the API accepts; 400 for bad bodies, 405 for GET")


def same_posts(shown, want, what):
    """The page's posts against the API's items: ids, authors, times, likes, texts."""
    got = [(i["post_id"], i["name"], i["handle"], i["created_at"], i["likes"], i["text"])
           for i in shown]
    exp = [(p["post_id"], p["author"]["display_name"], p["author"]["handle"], p["created_at"],
            p["like_count"], p["text"]) for p in want]
    assert got == exp, "%s: the page shows %s..., the API %s..." % (what, got[:2], exp[:2])
    assert all(i["time_text"] for i in shown), "%s: a post without its time" % what


def check_ranked(shown, want):
    same_posts(shown, want, "ranked")
    for i, p in zip(shown, want):
        e, x = i["explain"], p["explain"]
        assert e, "ranked post %s without its score" % i["post_id"]
        for k in ("score", "recency", "likes", "affinity"):
            assert abs(e[k] - x[k]) <= 1e-3 * max(1.0, abs(x[k])), (i["post_id"], k, e, x)
        assert e["text"].startswith("score %.3f = recency" % e["score"]), e["text"]


def run(cl, api, gen, node_modules):
    users = test_api.registered_users(gen)[:100]
    viewers = test_api.longest_feeds(cl, users, 5)
    viewer, author = test_api.regular_followee(cl, viewers)
    check_files(cl)
    check_dev_login(cl, viewer)
    _, page1 = cl.ok("/v1/feed?limit=%d" % PAGE, viewer)
    assert page1["next_cursor"], "viewer %s has a single page" % viewer
    _, page2 = cl.ok("/v1/feed?limit=%d&cursor=%s" % (PAGE, page1["next_cursor"]), viewer)
    _, prof = cl.ok("/v1/users/%s" % viewer, viewer)
    os.makedirs(ARTIFACTS, exist_ok=True)
    page = Page(node_modules)
    stopped = False
    try:
        a = page.do("launch", url="http://127.0.0.1:%d/" % api.port)
        assert a["status"] == 200 and a["title"] == "feedline", a
        a = page.do("login", user=str(viewer))
        same_posts(a["items"], page1["items"], "first page")
        assert a["profile"]["name"] == prof["display_name"], a["profile"]
        assert a["profile"]["handle"] == "@" + prof["handle"], a["profile"]
        log("page: logged in as %s, first page of %d posts equals /v1/feed" %
            (viewer, len(a["items"])))
        page.do("wait_live")
        time.sleep(1)  # the hub subscribes the viewer's channel just after the upgrade
        t0 = time.time()
        pid = test_api.new_post(author, "Live from the web test, by %d" % author)
        a = page.do("wait_top", post_id=str(pid))
        live_s = time.time() - t0
        _, top = cl.ok("/v1/feed?limit=1", viewer)
        assert top["items"][0]["post_id"] == str(pid), top
        same_posts(a["items"][:1], top["items"], "live post")
        same_posts(a["items"][1:], page1["items"], "below the live post")
        log("live: post %s of %s at the top after %.2f s" % (pid, author, live_s))
        page.do("screenshot", path=os.path.join(ARTIFACTS, "live-page.png"))
        a = page.do("scroll")
        assert a["pages"] == 2, a["pages"]
        same_posts(a["items"][1 + PAGE:], page2["items"], "second page")
        log("scroll: the second page (%d posts) equals /v1/feed's next page" % len(page2["items"]))
        a = page.do("order", value="ranked")
        _, ranked = cl.ok("/v1/feed?limit=%d&order=ranked&explain=1" % PAGE, viewer)
        check_ranked(a["items"], ranked["items"])
        page.do("screenshot", path=os.path.join(ARTIFACTS, "live-page-ranked.png"))
        log("ranked: %d posts with their scores' parts equal /v1/feed?order=ranked&explain=1"
            % len(a["items"]))
        page.do("order", value="chrono")
        before = page.do("errors")["errors"]
        assert not before, "errors in the page: %s" % before
        page.do("banner", visible=False)
        log("Redis: SIGTERM")
        os.kill(redis_pid(), signal.SIGTERM)
        stopped = True
        wait_for(lambda: cl.get("/readyz")[2].get("serving_from") == "postgres", 20,
                 "the API to serve from PostgreSQL")
        a = page.do("refresh")
        b = page.do("banner", visible=True)
        assert "PostgreSQL" in b["text"], b
        _, pg = cl.ok("/v1/feed?limit=%d" % PAGE, viewer)
        same_posts(a["items"], pg["items"], "from PostgreSQL")
        page.do("screenshot", path=os.path.join(ARTIFACTS, "live-page-postgres.png"))
        log("PostgreSQL: the banner shows, %d posts" % len(a["items"]))
        bad = [e for e in page.do("errors")["errors"] if e["kind"] == "page"]
        assert not bad, "script errors in the page: %s" % bad
    finally:
        page.close()
        if stopped:
            stack_up()
    test_api.check_openapi(cl, need=(200, 304, 400, 404, 405))


def main():
    node_modules = playwright_core()
    test_api.run_small("web", SIZE, lambda api, cl, gen: run(cl, api, gen, node_modules),
                       api_env={"FEEDLINE_DEV_LOGIN": "true"})
    log("screenshots in %s" % ARTIFACTS)


if __name__ == "__main__":
    main()
