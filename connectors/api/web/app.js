/*
 * feedline's live page: a demo user's home feed from the read API.
 *
 * - Login: POST /dev/login (the API's development login, off unless
 *   api.dev_login is on) mints a token for the chosen user; it is kept in
 *   sessionStorage and minted again when it expires or is refused.
 * - The feed: /v1/feed, 20 items a page, older pages when the end of the
 *   list comes into view (next_cursor); order=chrono|ranked, the ranked one
 *   with explain=1, whose score parts each item shows.
 * - Live: the /v1/stream WebSocket (the token as access_token, since
 *   browsers cannot set headers there); an update goes in at its place by
 *   (created_at, post_id), which for a new post is the top; while the ranked
 *   order is shown new posts wait behind a button instead. A reconnect asks
 *   for what it missed with since=, the last position received.
 * - The banner: shown while responses say X-Feedline-Source: postgres; the
 *   page looks again every 15 s until Redis serves.
 *
 * Ids stay strings (64-bit ids do not survive JavaScript numbers); every
 * text from the API goes into the page as text, never as markup.
 */
"use strict";

const PAGE = 20;
const RECHECK_MS = 15000;
const $ = (id) => document.getElementById(id);

const state = {
  user: null, // the viewer's id, a string
  token: null,
  expires: 0, // ms since the epoch
  order: "chrono",
  cursor: null, // the next page of the list shown, null at its end
  pages: 0,
  loading: false,
  list: 0, // bumped when the list is replaced: late pages of the old one are dropped
  shown: new Map(), // post id -> its <li>
  pending: new Map(), // posts that arrived while the ranked order is shown
  ws: null,
  wsTries: 0,
  position: null, // the newest stream position received
  recheck: null,
};

/* ---- the API ---- */

async function call(path, options = {}) {
  const headers = {};
  if (options.auth !== false && state.token) headers.Authorization = "Bearer " + state.token;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    cache: "no-store",
  });
  let doc = null;
  try {
    doc = await res.json();
  } catch (_) {
    /* a body that is not JSON: the status says enough */
  }
  return { status: res.status, doc, source: res.headers.get("X-Feedline-Source") };
}

function errorText(r) {
  return (r.doc && r.doc.error && r.doc.error.message) || "HTTP " + r.status;
}

async function mint(user) {
  const r = await call("/dev/login", { method: "POST", body: { user_id: user }, auth: false });
  if (r.status === 404)
    throw new Error("The development login is off on this server (api.dev_login: false).");
  if (r.status !== 200) throw new Error(errorText(r));
  state.user = r.doc.user_id;
  state.token = r.doc.token;
  state.expires = Date.now() + r.doc.expires_in * 1000;
  sessionStorage.setItem("feedline.session", JSON.stringify({
    user: state.user, token: state.token, expires: state.expires,
  }));
}

/* A read with the token; a refused or expired token is minted again once. */
async function read(path) {
  if (Date.now() > state.expires - 60000) await mint(state.user);
  let r = await call(path);
  if (r.status === 401) {
    await mint(state.user);
    r = await call(path);
  }
  if (r.source) showSource(r.source);
  return r;
}

/* ---- login ---- */

function recentUsers() {
  try {
    return JSON.parse(localStorage.getItem("feedline.recent") || "[]");
  } catch (_) {
    return [];
  }
}

function showLogin(message) {
  closeStream();
  $("controls").hidden = true;
  $("home").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("login-error").hidden = !message;
  const recent = $("recent");
  recent.replaceChildren("Recently: ");
  for (const u of recentUsers()) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = "user " + u;
    b.addEventListener("click", () => login(u));
    recent.append(b);
  }
  recent.hidden = recentUsers().length === 0;
  $("login-user").focus();
}

async function login(user) {
  $("login-error").hidden = true;
  try {
    await mint(String(user).trim());
  } catch (e) {
    showLogin(e.message);
    return;
  }
  const recent = [state.user, ...recentUsers().filter((u) => u !== state.user)].slice(0, 6);
  localStorage.setItem("feedline.recent", JSON.stringify(recent));
  showHome();
}

function logout() {
  clearTimeout(state.recheck);
  sessionStorage.removeItem("feedline.session");
  state.token = null;
  state.user = null;
  showLogin();
}

/* ---- home ---- */

function showHome() {
  $("login").hidden = true;
  $("home").hidden = false;
  $("controls").hidden = false;
  loadProfile();
  reload();
  openStream();
}

async function loadProfile() {
  let r;
  try {
    r = await read("/v1/users/" + state.user);
  } catch (e) {
    r = { status: 0 };
  }
  const u = r.status === 200 ? r.doc : null;
  $("profile-name").textContent = u ? u.display_name : "user " + state.user;
  $("profile-handle").textContent = u ? "@" + u.handle : "not registered";
  $("profile-counts").textContent = u
    ? `${u.followers_count} followers · ${u.following_count} following · ${u.posts_count} posts`
    : "";
}

function setOrder(order) {
  state.order = order;
  for (const b of document.querySelectorAll(".order button"))
    b.setAttribute("aria-pressed", String(b.dataset.order === order));
  $("ranked-note").hidden = order !== "ranked";
  reload();
}

/* Replaces the list with the first page of the current order. */
function reload() {
  state.list++;
  state.cursor = null;
  state.pages = 0;
  state.loading = false;
  state.shown.clear();
  state.pending.clear();
  showPending();
  $("feed").replaceChildren();
  $("feed").dataset.order = state.order;
  $("feed").dataset.pages = "0";
  loadPage();
}

async function loadPage() {
  if (state.loading || (state.pages > 0 && !state.cursor)) return;
  const list = state.list;
  let q = `/v1/feed?limit=${PAGE}`;
  if (state.order === "ranked") q += "&order=ranked&explain=1";
  if (state.cursor) q += "&cursor=" + encodeURIComponent(state.cursor);
  state.loading = true;
  $("feed-end").textContent = "Loading…";
  let r;
  try {
    r = await read(q);
  } catch (e) {
    r = { status: 0, doc: null, error: e };
  }
  if (list !== state.list) return; /* the list was replaced meanwhile */
  state.loading = false;
  if (r.status !== 200) {
    $("feed-end").textContent = r.error ? r.error.message : "Could not load: " + errorText(r);
    return;
  }
  for (const p of r.doc.items) if (!state.shown.has(p.post_id)) $("feed").append(render(p));
  state.cursor = r.doc.next_cursor;
  state.pages++;
  $("feed").dataset.pages = String(state.pages);
  $("feed-end").textContent = state.cursor
    ? ""
    : state.shown.size ? "That is all: no older posts." : "Nothing here yet: follow someone who posts.";
  if (state.cursor && nearEnd()) loadPage();
}

function nearEnd() {
  return $("sentinel").getBoundingClientRect().top < window.innerHeight + 200;
}

/* ---- posts ---- */

/* An author's color: hues a golden angle apart, so neighbouring ids differ. */
function colorOf(id) {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) % 1000003;
  return `hsl(${Math.round((h * 137.508) % 360)} 50% 45%)`;
}

/* A duration in seconds, short: "12 min", "5 h", "3 d". */
function span(s) {
  if (s < 3600) return Math.max(1, Math.round(s / 60)) + " min";
  if (s < 86400) return Math.round(s / 3600) + " h";
  return Math.round(s / 86400) + " d";
}

/* "GH" for Grace Hopper, "U1" for User 1000101, "A" for ada. */
function initials(name) {
  const words = name.trim().split(/\s+/);
  const first = words[0].slice(0, 1);
  return (words.length > 1 ? first + words[words.length - 1].slice(0, 1) : first).toUpperCase();
}

/* How long ago a time was, or its date when that is more than a week. */
function ago(ms) {
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 45) return "now";
  if (s < 7 * 86400) return span(s);
  return new Date(ms).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

function fmt(x) {
  return x.toFixed(3);
}

function render(p) {
  const li = $("post-template").content.firstElementChild.cloneNode(true);
  const a = p.author;
  li.dataset.postId = p.post_id;
  li.dataset.createdAt = String(p.created_at);
  li.querySelector(".avatar").textContent = initials(a.display_name || a.handle || "?");
  li.querySelector(".avatar").style.background = colorOf(a.user_id);
  li.querySelector(".name").textContent = a.display_name || "user " + a.user_id;
  li.querySelector(".handle").textContent = a.handle ? "@" + a.handle : "";
  const t = li.querySelector("time");
  t.dateTime = new Date(p.created_at).toISOString();
  t.dataset.ms = String(p.created_at);
  t.title = new Date(p.created_at).toLocaleString();
  t.textContent = ago(p.created_at);
  li.querySelector(".vis").textContent = p.visibility === "public" ? "" : p.visibility;
  li.querySelector(".text").textContent = p.text;
  const likes = li.querySelector(".likes");
  likes.textContent = String(p.like_count);
  likes.dataset.count = String(p.like_count);
  if (p.reply_to) li.querySelector(".reply").textContent = "reply to " + p.reply_to;
  if (p.explain) explain(li.querySelector(".explain"), p.explain);
  state.shown.set(p.post_id, li);
  return li;
}

function explain(box, e) {
  box.hidden = false;
  box.dataset.score = String(e.score);
  const el = (tag, cls, text) => Object.assign(document.createElement(tag), { className: cls, textContent: text });
  const f = [el("span", "", "score "), el("b", "", fmt(e.score)), " ="];
  ["recency", "likes", "affinity"].forEach((k, i) => {
    box.dataset[k] = String(e[k]);
    box.querySelector(".p-" + k).style.width = e.score > 0 ? (100 * e[k]) / e.score + "%" : "0";
    f.push(i ? " + " : " ", el("span", "k-" + k, k), " " + fmt(e[k]));
  });
  const n = e.affinity_likes;
  f.push(` · age ${span(e.age_s)} · you liked ${n} of their post${n === 1 ? "" : "s"}`);
  box.querySelector(".formula").replaceChildren(...f);
}

/* (created_at, post id) of a shown post or a post, to compare newest first. */
function key(createdAt, id) {
  return [Number(createdAt), BigInt(id)];
}

function newer(a, b) {
  return a[0] !== b[0] ? a[0] > b[0] : a[1] > b[1];
}

/* A post from the stream: at its place in the chronological list (the top,
 * for a new post), or counted behind the button in the ranked one. */
function arrived(p) {
  const old = state.shown.get(p.post_id);
  if (old) {
    const likes = old.querySelector(".likes");
    likes.textContent = likes.dataset.count = String(p.like_count);
    return;
  }
  if (state.order !== "chrono") {
    state.pending.set(p.post_id, p);
    showPending();
    return;
  }
  const k = key(p.created_at, p.post_id);
  let before = null;
  for (const li of $("feed").children) {
    if (newer(k, key(li.dataset.createdAt, li.dataset.postId))) {
      before = li;
      break;
    }
  }
  if (!before && state.cursor) return; /* older than what is shown: paging brings it */
  const li = render(p);
  li.classList.add("fresh");
  $("feed").insertBefore(li, before);
}

function removed(id) {
  const li = state.shown.get(id);
  if (li) li.remove();
  state.shown.delete(id);
  if (state.pending.delete(id)) showPending();
}

function showPending() {
  const n = state.pending.size;
  $("new-posts").hidden = n === 0;
  $("new-posts").textContent = `${n} new post${n === 1 ? "" : "s"}: rank again`;
}

/* ---- the banner ---- */

function showSource(source) {
  const pg = source === "postgres";
  $("banner").hidden = !pg;
  document.body.dataset.source = source;
  clearTimeout(state.recheck);
  if (pg && state.token)
    state.recheck = setTimeout(() => read("/v1/feed?limit=1").catch(() => {}), RECHECK_MS);
}

/* ---- live updates ---- */

function setLive(on) {
  $("live").dataset.state = on ? "on" : "off";
  $("live").textContent = on ? "live" : "offline";
}

function closeStream() {
  if (state.ws) {
    state.ws.onclose = null;
    state.ws.close();
  }
  state.ws = null;
  setLive(false);
}

async function openStream() {
  closeStream();
  const user = state.user;
  if (Date.now() > state.expires - 60000) {
    try {
      await mint(user);
    } catch (_) {
      return retryStream(user);
    }
  }
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  let url = `${proto}//${location.host}/v1/stream?access_token=${encodeURIComponent(state.token)}`;
  if (state.position) url += "&since=" + encodeURIComponent(state.position);
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => {
    state.wsTries = 0;
    setLive(true);
  };
  ws.onmessage = (ev) => {
    let m;
    try {
      m = JSON.parse(ev.data);
    } catch (_) {
      return;
    }
    if (m.event === "update" && m.post) {
      if (m.position) state.position = m.position;
      arrived(m.post);
    } else if (m.event === "delete") {
      removed(m.post_id);
    }
  };
  ws.onclose = () => {
    if (state.ws === ws) retryStream(user);
  };
}

function retryStream(user) {
  setLive(false);
  state.ws = null;
  const wait = Math.min(30000, 1000 * 2 ** state.wsTries++);
  setTimeout(() => {
    if (state.user === user && !state.ws) openStream();
  }, wait);
}

/* ---- start ---- */

function start() {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    login($("login-user").value);
  });
  $("logout").addEventListener("click", logout);
  $("refresh").addEventListener("click", () => {
    loadProfile();
    reload();
  });
  $("new-posts").addEventListener("click", reload);
  for (const b of document.querySelectorAll(".order button"))
    b.addEventListener("click", () => setOrder(b.dataset.order));
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && state.token) loadPage();
  }, { rootMargin: "200px" }).observe($("sentinel"));
  setInterval(() => {
    for (const t of document.querySelectorAll("time[data-ms]")) t.textContent = ago(Number(t.dataset.ms));
  }, 30000);
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem("feedline.session") || "null");
  } catch (_) {
    saved = null;
  }
  if (saved && saved.user && saved.token) {
    Object.assign(state, { user: saved.user, token: saved.token, expires: saved.expires || 0 });
    showHome();
  } else {
    showLogin();
  }
}

start();
