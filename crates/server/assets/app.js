// The search page: talks to the JSON API under /v1 (see /v1/openapi.json).
import { Piano, midiNotes } from "/assets/player.js";

const PLACEHOLDERS = [
  "a calm solo piano piece in a minor key",
  "une valse mélancolique pour violon",
  "ein fröhliches Volkslied mit Akkordeon",
  "música flamenca con guitarra",
  "一首欢快的爵士乐",
  "明るいピアノの曲",
  "грустная мелодия для виолончели",
  "لحن عربي هادئ على العود",
];
const TOP_K = 20;

const $ = (selector) => document.querySelector(selector);
const query = $("#query");
const results = $("#results");
const status = $("#status");
const piano = new Piano();
let playing = null; // the button whose sound is playing

// The token: from `#token=…` (kept for this tab), else asked for when the server wants one.
function token() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) sessionStorage.setItem("clamp3-token", fromHash);
  return sessionStorage.getItem("clamp3-token");
}

async function api(path, options = {}, retry = true) {
  const headers = new Headers(options.headers || {});
  const t = token();
  if (t) headers.set("Authorization", "Bearer " + t);
  const response = await fetch("/v1" + path, { ...options, headers });
  if (response.status === 401 && retry) {
    const given = prompt("This server needs a token:");
    if (given) { sessionStorage.setItem("clamp3-token", given); return api(path, options, false); }
  }
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function withToken(url) {
  const t = token();
  return t ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(t) : url;
}

function filter() {
  const boxes = [...document.querySelectorAll("#filters input")];
  const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
  return chosen.length === boxes.length ? "" : "modality=" + chosen.join(",");
}

function setStatus(text, kind = "") {
  status.textContent = text;
  status.className = kind;
}

async function run(label, request) {
  if ([...document.querySelectorAll("#filters input")].every((b) => !b.checked)) {
    setStatus("Choose at least one kind of music to search.", "error");
    return;
  }
  piano.stop();
  setStatus(label, "loading");
  results.setAttribute("aria-busy", "true");
  const started = performance.now();
  try {
    const answer = await (await request()).json();
    const ms = Math.round(performance.now() - started);
    show(answer);
    const caption = answer.caption ? ` (the image reads as “${answer.caption}”)` : "";
    setStatus(`${answer.results.length} results in ${ms} ms${caption}`);
  } catch (error) {
    setStatus(error.message, "error");
  } finally {
    results.removeAttribute("aria-busy");
  }
}

function searchText(text) {
  history.replaceState(null, "", "?q=" + encodeURIComponent(text) + location.hash);
  return run(`Searching for “${text}”…`, () => api("/search", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text, top_k: TOP_K, filter: filter() }),
  }));
}

function searchFile(file) {
  const params = new URLSearchParams({ filename: file.name, top_k: TOP_K, filter: filter() });
  return run(`Searching by ${file.name}…`, () => api("/search/file?" + params, {
    method: "POST", body: file,
  }));
}

function similar(item) {
  const params = new URLSearchParams({ top_k: TOP_K, filter: filter() });
  return run(`Finding music like ${item.title || fileName(item)}…`,
    () => api(`/items/${item.id}/similar?` + params));
}

function fileName(item) {
  return String(item.path).split(/[\\/]/).pop();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function show(answer) {
  results.replaceChildren(...answer.results.map((hit, i) => card(hit, i)));
}

function card(hit, index) {
  const item = hit.item;
  const title = item.title || fileName(item);
  const li = el("li", {
    class: "result", tabindex: "0", "data-id": item.id, "data-modality": item.modality,
    "aria-label": `${index + 1}. ${title}, ${item.modality}, similarity ${hit.score.toFixed(2)}`,
  });
  const percent = Math.max(0, Math.min(100, Math.round(hit.score * 100)));
  const score = el("span", { class: "score", title: "cosine similarity" },
    el("span", { class: "bar" }, el("span", { style: `width:${percent}%` })),
    el("span", { class: "value" }, hit.score.toFixed(4)));
  li.append(el("div", { class: "top" },
    el("span", { class: "rank" }, `${index + 1}.`),
    el("span", { class: "title" }, title),
    el("span", { class: "badge" }, item.modality),
    el("span", { class: "badge" }, item.format),
    score));
  const meta = [fileName(item)];
  if (item.duration_s) meta.push(`${item.duration_s.toFixed(1)} s`);
  for (const [k, v] of Object.entries(item.metadata || {})) meta.push(`${k}: ${v}`);
  if (item.caption) meta.push(`caption: ${item.caption}`);
  li.append(el("div", { class: "meta" }, meta.join(" · ")));
  const actions = el("div", { class: "actions" });
  const notation = el("div", { class: "notation" });
  if (item.modality === "audio" && item.format !== "npy") {
    actions.append(el("audio", { controls: "", preload: "none", src: withToken(`/v1/items/${item.id}/media`) }));
  } else if (item.modality === "sheet") {
    actions.append(el("button", { type: "button", class: "show", onclick: () => showScore(item, notation) }, "Show score"));
    actions.append(playButton(() => scoreNotes(item, notation), () => follow(notation)));
  } else if (item.modality === "midi") {
    actions.append(playButton(async () =>
      midiNotes(new Uint8Array(await (await api(`/items/${item.id}/midi`)).arrayBuffer()))));
  } else if (item.modality === "text") {
    actions.append(el("button", { type: "button", class: "show", onclick: (e) => showText(item, li, e.target) }, "Show text"));
  } else if (item.modality === "image") {
    actions.append(el("img", { src: withToken(`/v1/items/${item.id}/media`), alt: item.caption || "", height: "96", loading: "lazy" }));
  }
  actions.append(el("button", { type: "button", class: "similar", onclick: () => similar(item) }, "More like this"));
  li.append(actions, notation);
  li.addEventListener("keydown", (e) => keyOnResult(e, li));
  return li;
}

async function showScore(item, notation) {
  if (notation.dataset.rendered) return notation.visual;
  notation.textContent = "Rendering…";
  try {
    const abc = await (await api(`/items/${item.id}/notation`)).text();
    notation.textContent = "";
    notation.visual = ABCJS.renderAbc(notation, abc, { responsive: "resize", add_classes: true })[0];
    notation.dataset.rendered = "true";
  } catch (error) {
    notation.textContent = "Cannot render this score: " + error.message;
  }
  return notation.visual;
}

async function scoreNotes(item, notation) {
  const visual = await showScore(item, notation);
  if (!visual) throw new Error("no score to play");
  return midiNotes(ABCJS.synth.getMidiFile(visual, { midiOutputType: "binary" }));
}

// Highlights the notes of a rendered score as they sound; returns what stops it.
function follow(notation) {
  if (!notation.visual) return () => {};
  const lit = () => notation.querySelectorAll(".playing-note");
  const timer = new ABCJS.TimingCallbacks(notation.visual, {
    eventCallback: (event) => {
      lit().forEach((e) => e.classList.remove("playing-note"));
      if (!event) return;
      for (const group of event.elements || []) for (const e of group) e.classList.add("playing-note");
    },
  });
  timer.start();
  return () => { timer.stop(); lit().forEach((e) => e.classList.remove("playing-note")); };
}

function playButton(notes, whilePlaying = () => () => {}) {
  const button = el("button", { type: "button", class: "play", "data-state": "stopped" }, "▶ Play");
  button.addEventListener("click", async () => {
    if (playing === button) { piano.stop(); return; }
    piano.stop();
    playing = button;
    let stopFollowing = () => {};
    piano.onstate = (state) => {
      button.dataset.state = state;
      button.textContent = state === "stopped" ? "▶ Play" : state === "loading" ? "Loading…" : "■ Stop";
      if (state === "playing") stopFollowing = whilePlaying();
      if (state === "stopped") {
        stopFollowing();
        if (playing === button) playing = null;
      }
    };
    try {
      await piano.play(await notes());
    } catch (error) {
      piano.stop();
      setStatus("Cannot play: " + error.message, "error");
    }
  });
  return button;
}

async function showText(item, li, button) {
  button.disabled = true;
  try {
    const text = await (await api(`/items/${item.id}/media`)).text();
    li.append(el("pre", { class: "text-preview" }, text.slice(0, 2000)));
  } catch (error) {
    setStatus(error.message, "error");
  }
}

function keyOnResult(event, li) {
  if (event.target !== li) return;
  const move = (to) => { if (to) { event.preventDefault(); to.focus(); } };
  switch (event.key) {
    case "ArrowDown": move(li.nextElementSibling); break;
    case "ArrowUp": move(li.previousElementSibling || query); break;
    case "m": li.querySelector(".similar")?.click(); break;
    case "p": li.querySelector(".play")?.click(); li.querySelector("audio")?.play(); break;
    case "Enter": li.querySelector(".show")?.click(); break;
  }
}

document.addEventListener("keydown", (event) => {
  const typing = event.target.matches("input, textarea");
  if (event.key === "/" && !typing) { event.preventDefault(); query.focus(); query.select(); }
  if (event.key === "Escape") { piano.stop(); document.querySelectorAll("audio").forEach((a) => a.pause()); }
  if (event.key === "ArrowDown" && event.target === query) {
    const first = results.querySelector("li");
    if (first) { event.preventDefault(); first.focus(); }
  }
});

$("#search").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = query.value.trim() || query.placeholder;
  searchText(text);
});
$("#file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) searchFile(file);
  event.target.value = "";
});

// Dropping a file anywhere searches by it.
let depth = 0;
document.addEventListener("dragenter", (e) => { e.preventDefault(); depth++; document.body.classList.add("dragging"); });
document.addEventListener("dragleave", () => { if (--depth <= 0) { depth = 0; document.body.classList.remove("dragging"); } });
document.addEventListener("dragover", (e) => e.preventDefault());
document.addEventListener("drop", (e) => {
  e.preventDefault();
  depth = 0;
  document.body.classList.remove("dragging");
  const file = e.dataTransfer?.files?.[0];
  if (file) searchFile(file);
});

// Placeholders cycle through languages: any of them can be typed.
let shown = 0;
setInterval(() => {
  if (document.activeElement === query && query.value) return;
  shown = (shown + 1) % PLACEHOLDERS.length;
  query.placeholder = PLACEHOLDERS[shown];
}, 4000);

async function start() {
  token();
  try {
    const health = await (await api("/health")).json();
    const info = await (await api("/library")).json();
    const total = info.items ?? Object.values(info.by_modality || {}).reduce((a, b) => a + b, 0);
    $("#stats").textContent = `${total} items · model ${health.model}`;
  } catch (error) {
    setStatus(error.message, "error");
  }
  const q = new URLSearchParams(location.search).get("q");
  if (q) { query.value = q; searchText(q); }
}
start();
