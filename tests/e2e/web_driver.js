/*
 * web_driver.js - drives the live page in headless Chromium for
 * tests/e2e/test_web.py, which holds every check: this only acts on the page
 * and reports what it shows.
 *
 * One JSON command a line on stdin, one JSON answer a line on stdout
 * ({"ok":true,...} or {"ok":false,"error":"..."}); the browser's console
 * errors and page errors are kept for the `errors` command. Needs
 * playwright-core (NODE_PATH) and Chromium (FEEDLINE_CHROMIUM, default
 * /usr/bin/chromium); no browser download, no network but the API's.
 *
 *   launch {url}          open the page, wait for the login form
 *   login {user}          sign in as user, wait for the first page
 *   items                 the posts shown, top first
 *   wait_top {post_id}    until that post is the first shown
 *   scroll                to the end of the list, until one more page loaded
 *   order {value}         click Latest (chrono) or Ranked, wait for its first page
 *   refresh               click Refresh, wait for the first page
 *   banner {visible}      until the PostgreSQL banner is shown (or hidden)
 *   screenshot {path}     the viewport as a PNG
 *   errors                console errors and page errors so far
 *   close
 */
"use strict";

const readline = require("readline");
const { chromium } = require("playwright-core");

const WAIT_MS = 30000;
let browser = null;
let page = null;
const errors = [];

/* What the page shows of each post, as test_web.py compares it with the API. */
function shown() {
  return page.$$eval("#feed > li", (lis) =>
    lis.map((li) => {
      const ex = li.querySelector(".explain");
      const num = (v) => (v === undefined ? null : Number(v));
      return {
        post_id: li.dataset.postId,
        created_at: Number(li.querySelector("time").dataset.ms),
        time_text: li.querySelector("time").textContent,
        name: li.querySelector(".name").textContent,
        handle: li.querySelector(".handle").textContent.replace(/^@/, ""),
        likes: Number(li.querySelector(".likes").dataset.count),
        text: li.querySelector(".text").textContent,
        explain: ex.hidden ? null : {
          score: num(ex.dataset.score),
          recency: num(ex.dataset.recency),
          likes: num(ex.dataset.likes),
          affinity: num(ex.dataset.affinity),
          text: ex.querySelector(".formula").textContent,
        },
      };
    }));
}

async function pages() {
  return Number(await page.getAttribute("#feed", "data-pages"));
}

/* Until the list of order has at least n pages loaded. */
async function loaded(n, order) {
  await page.waitForFunction(([n, order]) => {
    const f = document.getElementById("feed");
    return Number(f.dataset.pages) >= n && (!order || f.dataset.order === order);
  }, [n, order], { timeout: WAIT_MS });
}

const commands = {
  async launch({ url }) {
    browser = await chromium.launch({
      executablePath: process.env.FEEDLINE_CHROMIUM || "/usr/bin/chromium",
      headless: true,
      args: ["--no-sandbox", "--no-proxy-server", "--disable-dev-shm-usage"],
    });
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on("console", (m) => {
      if (m.type() === "error") errors.push({ kind: "console", text: m.text() });
    });
    page.on("pageerror", (e) => errors.push({ kind: "page", text: e.message }));
    const res = await page.goto(url);
    await page.waitForSelector("#login-form", { state: "visible", timeout: WAIT_MS });
    return { status: res.status(), title: await page.title() };
  },
  async login({ user }) {
    await page.fill("#login-user", String(user));
    await page.click("#login-form button[type=submit]");
    await loaded(1, "chrono");
    await page.waitForFunction(() => document.getElementById("profile-name").textContent !== "");
    return {
      items: await shown(),
      profile: {
        name: await page.textContent("#profile-name"),
        handle: await page.textContent("#profile-handle"),
        counts: await page.textContent("#profile-counts"),
      },
      live: await page.getAttribute("#live", "data-state"),
    };
  },
  async items() {
    return { items: await shown(), pages: await pages() };
  },
  async wait_live() {
    await page.waitForSelector('#live[data-state="on"]', { timeout: WAIT_MS });
    return {};
  },
  async wait_top({ post_id }) {
    await page.waitForFunction(
      (id) => { const li = document.querySelector("#feed > li"); return li && li.dataset.postId === id; },
      post_id, { timeout: WAIT_MS });
    return { items: await shown() };
  },
  async scroll() {
    const n = await pages();
    await page.locator("#feed > li").last().scrollIntoViewIfNeeded();
    await loaded(n + 1);
    return { items: await shown(), pages: await pages() };
  },
  async order({ value }) {
    await page.click(value === "ranked" ? "#order-ranked" : "#order-chrono");
    await loaded(1, value);
    return { items: await shown() };
  },
  async refresh() {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.click("#refresh");
    await loaded(1);
    return { items: await shown() };
  },
  async banner({ visible }) {
    await page.waitForSelector("#banner", { state: visible ? "visible" : "hidden", timeout: WAIT_MS });
    return { text: (await page.textContent("#banner")).replace(/\s+/g, " ").trim() };
  },
  async screenshot({ path }) {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path });
    return {};
  },
  async errors() {
    return { errors };
  },
  async close() {
    if (browser) await browser.close();
    browser = null;
    return {};
  },
};

async function main() {
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let answer;
    try {
      const cmd = JSON.parse(line);
      const fn = commands[cmd.op];
      if (!fn) throw new Error("unknown command " + cmd.op);
      answer = { ok: true, ...(await fn(cmd)) };
    } catch (e) {
      answer = { ok: false, error: String(e && e.stack ? e.stack : e) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
  if (browser) await browser.close();
}

main();
