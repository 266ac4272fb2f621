// searcher's search page: plain JavaScript over the server's own HTTP API (POST /search,
// GET /documents/{id}, GET /info, GET /files; pictures: POST /images/search, GET /images/thumbnail). Document text and file names are only ever put into
// the page as text (textContent, text nodes), never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "searcher.token";
const DEBOUNCE_MS = 250;

// ---- talking to the server --------------------------------------------------------------------
let tokenAsked = null;   // the pending token prompt, so that parallel requests share one

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? {"Authorization": "Bearer " + token} : {};
}

async function api(method, path, body) {
  for (;;) {
    const headers = authHeaders();
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
    if (res.status === 401) {
      await askToken(token ? "That token was refused; try again." : "");
      continue;
    }
    const data = await res.json().catch(() => ({error: `HTTP ${res.status}`}));
    if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
    return data;
  }
}

function askToken(message) {
  if (tokenAsked) return tokenAsked;
  const dialog = $("token-dialog");
  $("token-error").textContent = message;
  $("token").value = "";
  tokenAsked = new Promise((resolve) => {
    $("token-form").onsubmit = () => {
      sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
      tokenAsked = null;
      resolve();
    };
  });
  dialog.showModal();
  $("token").focus();
  return tokenAsked;
}

// ---- small DOM helpers ------------------------------------------------------------------------
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);   // strings become text nodes
  return node;
}

function marked(text, marks) {
  // text with [start, end) spans wrapped in <mark>, as DOM nodes
  const frag = document.createDocumentFragment();
  let at = 0;
  for (const [start, end] of marks || []) {
    if (start < at) continue;
    frag.append(text.slice(at, start), el("mark", {text: text.slice(start, end)}));
    at = end;
  }
  frag.append(text.slice(at));
  return frag;
}

function currentIndex() {
  return $("index-select").value || null;
}

// ---- views ------------------------------------------------------------------------------------
const Views = {
  show(name) {
    for (const v of ["search", "doc", "index", "map"]) $("view-" + v).hidden = v !== name;
    for (const v of ["search", "index", "map"]) {
      const link = $("nav-" + v);
      if (v === name) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
    }
  },

  // hook for issue 16 ("beyond search"): fill #doc-related with the document's similar documents
  // (GET /similar) and duplicates (GET /duplicates) once those endpoints exist; render names as text.
  async related(index, docId) {
    $("doc-related").hidden = true;
  },

  // hook for issue 16: draw the corpus map (GET /map) into #view-map; a click on a point opens
  // location.hash = docHash(index, id).
  async map(index) {
    $("view-map").replaceChildren(el("p", {class: "muted", text: "The corpus map is not available on this server."}));
  },
};

function docHash(index, hit) {
  const p = new URLSearchParams({id: hit.id});
  if (index) p.set("index", index);
  if (hit.chars) p.set("chars", hit.chars.join(","));
  return "#/doc?" + p.toString();
}

// ---- search -----------------------------------------------------------------------------------
let timer = null;
let latest = 0;   // only the newest request may draw

function searchBody() {
  const form = $("search-form");
  const body = {query: $("q").value.trim(), k: Math.max(1, Math.min(100, parseInt($("f-k").value, 10) || 10)),
                mode: form.elements.mode.value, snippets: true};
  const filters = {};
  const types = $("f-types").value.split(/[\s,]+/).map((t) => t.replace(/^\./, "")).filter(Boolean);
  if (types.length) filters.types = types;
  if ($("f-path").value.trim()) filters.path = $("f-path").value.trim();
  if ($("f-since").value) filters.modified_after = new Date($("f-since").value + "T00:00:00").getTime() / 1000;
  if (Object.keys(filters).length) body.filters = filters;
  const index = currentIndex();
  if (index) body.index = index;
  return body;
}

function scheduleSearch(delay) {
  clearTimeout(timer);
  timer = setTimeout(runSearch, delay);
}

async function runSearch() {
  clearTimeout(timer);
  const body = searchBody();
  const mine = ++latest;
  const params = new URLSearchParams({q: body.query});
  history.replaceState(null, "", body.query ? "#/?" + params.toString() : "#/");
  if (!body.query) {
    $("hits").replaceChildren();
    $("hits").dataset.query = "";
    $("status").textContent = "";
    return;
  }
  $("status").textContent = "searching…";
  try {
    if (body.mode === "images") {
      const out = await api("POST", "/images/search", {query: body.query, k: body.k, index: body.index});
      if (mine === latest) drawPictures(out, body.query);
      return;
    }
    const out = await api("POST", "/search", body);
    showPictureMode();
    if (mine !== latest) return;
    drawHits(out, body.query);
  } catch (err) {
    if (mine !== latest) return;
    $("hits").replaceChildren();
    $("status").textContent = err.message;
    $("status").className = "error";
  }
}

function where(hit) {
  // folder/ (muted) name (bold) :line (Heading) — the location as the server wrote it, ':120 (Install)'
  const full = hit.path || hit.id;
  const cut = full.lastIndexOf("/") + 1;
  const loc = hit.location || "";
  return el("span", {class: "where"}, el("span", {class: "folder", text: full.slice(0, cut)}),
            el("span", {class: "name", text: full.slice(cut)}),
            el("span", {class: "loc", text: (loc.startsWith(":") ? "" : " ") + loc}));
}

function drawHits(out, query) {
  $("status").className = "";
  $("status").textContent = `${out.hits.length} result${out.hits.length === 1 ? "" : "s"} in ${Math.round(out.took_ms)} ms`;
  const items = out.hits.map((hit) => {
    const link = el("a", {class: "hit", href: docHash(out.index, hit)},
      el("span", {class: "score", title: "score", text: hit.score.toFixed(3)}),
      where(hit),
      el("p", {class: "snippet"}, marked(hit.snippet ?? hit.text, hit.snippet_marks)));
    return el("li", {}, link);
  });
  $("hits").replaceChildren(...items);
  $("hits").dataset.query = query;   // which query the list answers (tests and scripts wait for it)
}

// ---- pictures (an index with a CLIP image model: docs/images.md) ---------------------------------
async function thumbnail(index, path) {
  // the thumbnail endpoint needs the token too, which an <img src> cannot send: fetched, then a blob URL
  const p = new URLSearchParams({path, side: "192"});
  if (index) p.set("index", index);
  const res = await fetch("/images/thumbnail?" + p.toString(), {headers: authHeaders()});
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return URL.createObjectURL(await res.blob());
}

function drawPictures(out, query) {
  $("status").className = "";
  $("status").textContent = `${out.images.length} picture${out.images.length === 1 ? "" : "s"}`;
  const items = out.images.map((img) => {
    const name = img.path.slice(img.path.lastIndexOf("/") + 1);
    const pic = el("img", {class: "thumb", alt: name});
    thumbnail(out.index, img.path).then((url) => { pic.src = url; },
                                        () => pic.replaceWith(el("span", {class: "thumb muted", text: "no preview"})));
    const about = `${img.width}×${img.height}` + (img.taken ? `, taken ${img.taken.replace("T", " ")}` : "");
    return el("li", {class: "picture"},
      el("div", {class: "hit", tabindex: "0"}, pic,
         el("div", {}, el("span", {class: "score", title: "cosine", text: img.score.toFixed(3)}), where(img),
            el("p", {class: "snippet muted", text: about}))));
  });
  $("hits").replaceChildren(...items);
  $("hits").dataset.query = query;
}

let picturesChecked;   // the index whose "pictures" mode was decided (undefined: none yet)

async function showPictureMode() {
  // the "pictures" mode only where the index's image model reads sentences (CLIP). Never asks for the
  // token: without one yet, this is tried again after the first search that had it.
  const index = currentIndex();
  if (picturesChecked === index) return;
  const res = await fetch("/info" + (index ? "?" + new URLSearchParams({index}).toString() : ""),
                          {headers: authHeaders()}).catch(() => null);
  if (!res || !res.ok) return;
  const info = await res.json();
  picturesChecked = index;
  $("mode-images").hidden = !(info.image_model && info.image_model.reads_text);
}

// arrows move between the query box and the hits; Enter on a hit opens it (it is a link)
function onKey(event) {
  const hits = [...document.querySelectorAll("#hits .hit")];
  const at = hits.indexOf(document.activeElement);
  if (event.key === "ArrowDown" && (event.target === $("q") || at >= 0)) {
    if (at + 1 < hits.length) hits[at + 1].focus();
    event.preventDefault();
  } else if (event.key === "ArrowUp" && at >= 0) {
    (at === 0 ? $("q") : hits[at - 1]).focus();
    event.preventDefault();
  } else if (event.key === "Escape" && !$("view-doc").hidden) {
    history.back();
  }
}

// ---- document view ----------------------------------------------------------------------------
async function openDoc(params) {
  Views.show("doc");
  const index = params.get("index");
  const id = params.get("id");
  const [start, end] = (params.get("chars") || "").split(",").map((n) => parseInt(n, 10));
  $("doc-path").textContent = id;
  $("doc-meta").textContent = "loading…";
  $("doc-text").replaceChildren();
  const q = new URLSearchParams();
  if (index) q.set("index", index);
  let doc;
  try {
    doc = await api("GET", "/documents/" + encodeURIComponent(id) + (index ? "?" + q.toString() : ""));
  } catch (err) {
    $("doc-meta").textContent = err.message;
    return;
  }
  $("doc-path").textContent = doc.path || doc.id;
  $("doc-meta").textContent = [doc.kind, `${doc.text.length.toLocaleString()} characters`,
    doc.mtime ? "modified " + new Date(doc.mtime * 1000).toLocaleString() : ""].filter(Boolean).join(" · ");
  const text = doc.text;
  if (Number.isInteger(start) && Number.isInteger(end) && start < end && end <= text.length) {
    const chunk = el("mark", {class: "chunk", id: "hit-chunk", text: text.slice(start, end)});
    $("doc-text").replaceChildren(text.slice(0, start), chunk, text.slice(end));
    chunk.scrollIntoView({block: "start"});
  } else {
    $("doc-text").textContent = text;
  }
  $("doc-text").focus({preventScroll: true});
  Views.related(index, doc.id);
}

// ---- index page -------------------------------------------------------------------------------
function row(...cells) {
  return el("tr", {}, ...cells.map((c) => el("td", {text: String(c ?? "")})));
}

async function openIndex() {
  Views.show("index");
  const index = currentIndex();
  const q = index ? "?" + new URLSearchParams({index}).toString() : "";
  let info, files;
  try {
    [info, files] = await Promise.all([api("GET", "/info" + q), api("GET", "/files" + q)]);
  } catch (err) {
    $("index-info").replaceChildren(el("dd", {class: "error", text: err.message}));
    return;
  }
  $("index-title").textContent = "Index " + info.name;
  const recall = info["ann_recall@10"];
  const facts = [
    ["folder", info.index],
    ["documents", `${info.documents.toLocaleString()} (${info.files.toLocaleString()} files)`],
    ["chunks", info.chunks.toLocaleString()],
    ["model", `${info.model.name} (dim ${info.model.dim})`],
    ["vectors", `${info.ann_description}` + (recall == null ? "" : `; recall@10 ${Number(recall).toFixed(3)} vs exact`)],
    ["on disk", `${(info.disk_bytes / 2 ** 20).toFixed(1)} MiB`],
  ];
  $("index-info").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {text: k}), el("dd", {text: v})]));
  const run = info.last_run;
  $("index-run").textContent = run
    ? `${run.kind} run at ${new Date(run.finished * 1000).toLocaleString()}: ` +
      Object.entries(run.summary).filter(([, v]) => typeof v === "number").map(([k, v]) => `${v} ${k}`).join(", ")
    : "No index run by this server yet; see the skipped files below for the last run's problems.";
  $("skipped-title").textContent = `Skipped files (${files.skipped.length})`;
  $("skipped").tBodies[0].replaceChildren(...files.skipped.map((s) => row(s.path, s.reason)));
  $("files-title").textContent = `Indexed files (${files.indexed.length}${files.truncated ? "+" : ""})`;
  $("files").tBodies[0].replaceChildren(...files.indexed.map((f) => row(f.id, f.kind ?? f.source, f.chunks)));
}

// ---- routing ----------------------------------------------------------------------------------
function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  if (path === "/doc") return openDoc(params);
  if (path === "/index") return openIndex();
  if (path === "/map") { Views.show("map"); return Views.map(currentIndex()); }
  Views.show("search");
  if (params.has("q") && params.get("q") !== $("q").value) {
    $("q").value = params.get("q");
    runSearch();
  }
  $("q").focus();
}

async function start() {
  const health = await fetch("/health").then((r) => r.json());
  const select = $("index-select");
  select.replaceChildren(...health.indexes.map((name) => el("option", {value: name, text: name})));
  $("index-choice").hidden = health.indexes.length < 2;
  select.addEventListener("change", () => {
    showPictureMode();
    return location.hash.startsWith("#/index") ? openIndex() : runSearch();
  });
  showPictureMode();
  $("q").addEventListener("input", () => scheduleSearch(DEBOUNCE_MS));
  // options search at once; the query box searches as you type (its change event, on leaving it, must not
  // redraw the hits that the arrow keys just moved the focus to)
  $("search-form").addEventListener("change", (event) => event.target !== $("q") && scheduleSearch(0));
  $("search-form").addEventListener("submit", (event) => { event.preventDefault(); runSearch(); });
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", route);
  route();
}

start();
