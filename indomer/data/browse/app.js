// indomer browse: renders the dataset document (inlined, or /data.json from the server).
// The view state (filters, search, sort, open clip) lives in the URL's hash, so a view can
// be shared by its address, from the server or from a file:// page alike.
"use strict";

(function () {
  const TASKS = ["emotion", "sentiment", "text_sentiment", "audio_sentiment", "video_sentiment"];
  const SHORT = {
    emotion: "emotion", sentiment: "sentiment", text_sentiment: "text",
    audio_sentiment: "audio", video_sentiment: "video",
  };
  // Table columns: key, header, how a clip shows it (also the filter's value), filterable.
  // The id (sticky) and the transcript come first, so both stay in view on a 1,280 px
  // screen with a clip open; the systems' answers follow the overall labels (SYSTEMS_AFTER).
  const COLUMNS = [
    { key: "id", label: "id", filter: false },
    { key: "text", label: "transcript", filter: false },
    { key: "split", label: "split" },
    { key: "emotion", label: "emotion" },
    { key: "sentiment", label: "sentiment" },
    { key: "text_sentiment", label: "text" },
    { key: "audio_sentiment", label: "audio" },
    { key: "video_sentiment", label: "video" },
    { key: "agreement", label: "agreement" },
    { key: "adjudicated", label: "adjudicated" },
    { key: "speaker", label: "speaker" },
    { key: "source", label: "source" },
    { key: "topic", label: "topic" },
    { key: "draft", label: "machine text" },
    { key: "speaker_flag", label: "speaker flag" },
    { key: "face_flag", label: "face flag" },
    { key: "unaligned", label: "unaligned words" },
  ];
  const SYSTEMS_AFTER = "sentiment";
  const PAGE = 200; // rows drawn at once: a 2,000-row table takes seconds to lay out
  const FILTERED = COLUMNS.filter((c) => c.filter !== false).map((c) => c.key);

  let DATA = null;
  let CLIPS = [];
  let BY_ID = new Map();
  let MEDIA_BLOBS = null; // "kind/id" -> base64 (--html --with-media)
  const blobUrls = new Map();
  let SERVED = false; // true when the page came from 'indomer browse' (media under media/)

  const $ = (sel) => document.querySelector(sel);
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k in node && typeof v !== "string") node[k] = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function show(key, clip) {
    const v = clip[key];
    // no word times at all (a release build): the count of unaligned words is unknown, not 0
    if (key === "unaligned" && (v === null || v === undefined)) return "unknown";
    if (v === null || v === undefined) return "\u2014";
    if (v === true) return "yes";
    if (v === false) return "no";
    return String(v);
  }

  // ------------------------------------------------------------------ state in the hash
  function getState() {
    return new URLSearchParams(location.hash.replace(/^#/, ""));
  }
  function hrefWith(changes) {
    const s = getState();
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === undefined || v === "") s.delete(k);
      else s.set(k, v);
    }
    const text = s.toString();
    return "#" + text;
  }
  function go(changes) {
    // a new filter or sort starts at the first page of rows; opening a clip keeps the page
    if (!("page" in changes) && !("clip" in changes)) changes = { ...changes, page: null };
    const target = hrefWith(changes);
    if (target === "#" + getState().toString()) render();
    else location.hash = target;
  }

  // ------------------------------------------------------------------ systems
  function systemAnswer(sys, clip, task) {
    const a = sys.answers[clip.id];
    if (!a || !(task in a)) return undefined; // no prediction
    return a[task]; // label name, or null = invalid
  }
  function isError(sys, clip, task) {
    const ref = clip[task];
    const ans = systemAnswer(sys, clip, task);
    if (ans === undefined || ref === null || ref === undefined) return false;
    return ans !== ref;
  }
  function systemColumns() {
    const cols = [];
    DATA.systems.forEach((sys, i) => {
      for (const task of sys.tasks) cols.push({ sys, i, task });
    });
    return cols;
  }

  // Natural order: runs of digits compare as numbers (clip_2 before clip_10), the rest by
  // code point, so the order is the same in every browser and locale.
  function natural(a, b) {
    const x = String(a).match(/\d+|\D+/g) || [];
    const y = String(b).match(/\d+|\D+/g) || [];
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const p = x[i];
      const q = y[i];
      if (p === q) continue;
      if (/^\d/.test(p) && /^\d/.test(q)) {
        const d = Number(p) - Number(q);
        return d || p.length - q.length;
      }
      return p < q ? -1 : 1;
    }
    return x.length - y.length;
  }

  // ------------------------------------------------------------------ filtering
  function selected() {
    const s = getState();
    const q = (s.get("q") || "").trim().toLowerCase();
    const filters = FILTERED.filter((k) => s.has(k)).map((k) => [k, s.get(k)]);
    const err = s.get("errors"); // "i:task"
    const cell = s.get("cell"); // "i:task:ref:pred"
    const differ = s.get("differ"); // task
    let out = CLIPS.filter((c) => filters.every(([k, v]) => show(k, c) === v));
    if (q) out = out.filter((c) => c.text.toLowerCase().includes(q));
    if (err) {
      const [i, task] = err.split(":");
      const sys = DATA.systems[Number(i)];
      if (sys) out = out.filter((c) => isError(sys, c, task));
    }
    if (cell) {
      const [i, task, ref, pred] = cell.split(":");
      const sys = DATA.systems[Number(i)];
      if (sys) {
        out = out.filter((c) => {
          const a = systemAnswer(sys, c, task);
          return a !== undefined && c[task] === ref && (a === null ? "(invalid)" : a) === pred;
        });
      }
    }
    if (differ && DATA.systems.length >= 2) {
      const [a, b] = DATA.systems;
      out = out.filter((c) => {
        const x = systemAnswer(a, c, differ);
        const y = systemAnswer(b, c, differ);
        return x !== undefined && y !== undefined && x !== y;
      });
    }
    const sort = s.get("sort");
    if (sort) {
      const desc = sort.startsWith("-");
      const key = desc ? sort.slice(1) : sort;
      const val = (c) => {
        if (key.startsWith("sys")) {
          const [, i, task] = key.split(":");
          const a = systemAnswer(DATA.systems[Number(i)] || { answers: {} }, c, task);
          return a === undefined ? "" : a === null ? "(invalid)" : a;
        }
        return c[key];
      };
      const cmp = (x, y) => {
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        if (typeof x === "number" && typeof y === "number") return x - y;
        return natural(x, y);
      };
      out = out.slice().sort((p, r) => (desc ? -1 : 1) * cmp(val(p), val(r)) || cmp(p.id, r.id));
    }
    return out;
  }

  // ------------------------------------------------------------------ rendering
  function renderFilters() {
    const s = getState();
    const form = $("#filters");
    form.replaceChildren();
    form.append(el("label", {}, "search transcript",
      el("input", {
        type: "search", id: "q", value: s.get("q") || "", placeholder: "words…",
        onchange: (e) => go({ q: e.target.value.trim() }),
        onkeyup: (e) => { if (e.key === "Enter") go({ q: e.target.value.trim() }); },
      })));
    for (const key of FILTERED) {
      const col = COLUMNS.find((c) => c.key === key);
      const values = [...new Set(CLIPS.map((c) => show(key, c)))].sort(natural);
      if (values.length < 2 && !s.has(key)) continue; // nothing to choose between
      const select = el("select", {
        name: key, "data-filter": key, onchange: (e) => go({ [key]: e.target.value }),
      }, el("option", { value: "" }, "all"));
      for (const v of values) select.append(el("option", { value: v }, v));
      select.value = s.get(key) || "";
      form.append(el("label", {}, col.label, select));
    }
    if (DATA.systems.length) {
      const select = el("select", {
        name: "errors", "data-filter": "errors", onchange: (e) => go({ errors: e.target.value }),
      }, el("option", { value: "" }, "all"));
      for (const { sys, i, task } of systemColumns()) {
        select.append(el("option", { value: `${i}:${task}` }, `${sys.name}: ${SHORT[task]} errors`));
      }
      select.value = s.get("errors") || "";
      form.append(el("label", {}, "errors of", select));
    }
    if (DATA.systems.length >= 2) {
      const [a, b] = DATA.systems;
      const shared = a.tasks.filter((t) => b.tasks.includes(t));
      const select = el("select", {
        name: "differ", "data-filter": "differ", onchange: (e) => go({ differ: e.target.value }),
      }, el("option", { value: "" }, "all"));
      for (const task of shared) select.append(el("option", { value: task }, `${SHORT[task]} differs`));
      select.value = s.get("differ") || "";
      form.append(el("label", {}, `${a.name} vs ${b.name}`, select));
    }
    if (s.has("cell")) {
      const [i, task, ref, pred] = s.get("cell").split(":");
      const sys = DATA.systems[Number(i)];
      form.append(el("label", {}, "confusion cell",
        el("button", { type: "button", id: "clear-cell", onclick: () => go({ cell: null }) },
          `${sys ? sys.name : "?"} ${SHORT[task] || task}: ${ref} \u2192 ${pred} \u2715`)));
    }
    form.append(el("button", {
      type: "button", id: "reset",
      onclick: () => { location.hash = s.has("clip") ? "#clip=" + encodeURIComponent(s.get("clip")) : "#"; },
    }, "clear filters"));
  }

  function renderTable(rows) {
    const s = getState();
    const sort = s.get("sort") || "";
    const open = s.get("clip");
    const syscols = systemColumns();
    const head = el("tr");
    const header = (key, label) => {
      const state = sort === key ? "ascending" : sort === "-" + key ? "descending" : null;
      head.append(el("th", {
        "data-key": key, "aria-sort": state,
        onclick: () => go({ sort: sort === key ? "-" + key : key }),
      }, label));
    };
    const at_ = COLUMNS.findIndex((c) => c.key === SYSTEMS_AFTER) + 1;
    const order = [...COLUMNS.slice(0, at_), ...syscols.map((c) => ({ ...c, key: `sys:${c.i}:${c.task}` })), ...COLUMNS.slice(at_)];
    for (const c of order) header(c.key, c.sys ? `${c.sys.name}: ${SHORT[c.task]}` : c.label);
    $("#clips thead").replaceChildren(head);
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    const at = Math.min(Math.max(1, Number(s.get("page")) || 1), pages);
    const shown = rows.slice((at - 1) * PAGE, at * PAGE);
    const body = document.createDocumentFragment();
    for (const clip of shown) {
      const tr = el("tr", { "data-id": clip.id, class: clip.id === open ? "open" : null });
      for (const c of order) {
        if (c.sys) {
          const a = systemAnswer(c.sys, clip, c.task);
          const text = a === undefined ? "" : a === null ? "(invalid)" : a;
          const cls = a === undefined ? null : isError(c.sys, clip, c.task) ? "wrong" : "right";
          tr.append(el("td", { "data-col": c.key, class: cls }, text));
        } else if (c.key === "id") {
          tr.append(el("td", { class: "id", "data-col": "id" },
            el("a", { href: hrefWith({ clip: clip.id }), class: "open-clip" }, clip.id)));
        } else if (c.key === "text") {
          tr.append(el("td", { class: "text", "data-col": "text", title: clip.text }, clip.text));
        } else {
          const flag = (c.key === "speaker_flag" || c.key === "face_flag") && clip[c.key] === true;
          const unknown = c.key === "unaligned" && clip.unaligned === null;
          tr.append(el("td", { "data-col": c.key, class: flag ? "flag" : unknown ? "unknown" : null }, show(c.key, clip)));
        }
      }
      body.append(tr);
    }
    $("#clips tbody").replaceChildren(body);
    $("#count").textContent = `${rows.length} of ${CLIPS.length} clips`;
    $("#count").dataset.count = String(rows.length);
    const pager = $("#pager");
    pager.replaceChildren();
    if (pages > 1) {
      const first = (at - 1) * PAGE + 1;
      pager.append(
        el("button", { type: "button", id: "prev", disabled: at === 1, onclick: () => go({ page: String(at - 1) }) }, "\u2039 previous"),
        ` rows ${first}\u2013${first + shown.length - 1} of ${rows.length} (page ${at} of ${pages}) `,
        el("button", { type: "button", id: "next", disabled: at === pages, onclick: () => go({ page: String(at + 1) }) }, "next \u203a"));
    }
  }

  function confusion(sys, i, task) {
    const labels = DATA.labels[task];
    const cols = [...labels, "(invalid)"];
    const counts = new Map();
    for (const clip of CLIPS) {
      const a = systemAnswer(sys, clip, task);
      const ref = clip[task];
      if (a === undefined || ref === null || ref === undefined) continue;
      const k = ref + "\u0000" + (a === null ? "(invalid)" : a);
      counts.set(k, (counts.get(k) || 0) + 1);
    }
    const active = getState().get("cell");
    const table = el("table", { class: "confusion", "data-system": String(i), "data-task": task },
      el("caption", {}, `${sys.name}: ${SHORT[task]} (rows: reference, columns: answer)`));
    table.append(el("tr", {}, el("th", { class: "corner" }, "ref \\ answer"),
      ...cols.map((c) => el("th", {}, c))));
    for (const ref of labels) {
      const tr = el("tr", {}, el("th", {}, ref));
      for (const pred of cols) {
        const n = counts.get(ref + "\u0000" + pred) || 0;
        const key = `${i}:${task}:${ref}:${pred}`;
        const cls = [n === 0 ? "zero" : ref === pred ? "diag" : "off", active === key ? "active" : ""].join(" ");
        const td = el("td", { class: cls, "data-ref": ref, "data-pred": pred, "data-count": String(n) });
        if (n) {
          td.append(el("button", {
            type: "button", title: `open the ${n} clip(s): reference ${ref}, answer ${pred}`,
            onclick: () => go({ cell: key, errors: null, differ: null }),
          }, String(n)));
        } else td.append("0");
        tr.append(td);
      }
      table.append(tr);
    }
    return table;
  }

  // Each system's figures per split and task, computed by the server with indomer score's
  // own functions and defaults (so they equal what 'indomer score' prints for that split).
  function fmt(x) { return x === null || x === undefined ? "\u2014" : x.toFixed(4); }
  function interval(ci) {
    return ci ? `[${fmt(ci[0])}, ${fmt(ci[1])}]` : "undefined";
  }
  function scoresTable() {
    const rows = [];
    DATA.systems.forEach((sys, i) => { for (const sc of sys.scores || []) rows.push({ sys, i, sc }); });
    if (!rows.length) return null;
    const name = DATA.dataset.split_name;
    const t = el("table", { id: "scores" },
      el("caption", {}, "Scores, as 'indomer score PREDS --refs OUT --split S' prints them"
        + (name ? ` (split assignment '${name}')` : "")),
      el("tr", {}, ...["system", "split", "task", "clips", "macro-F1", "95% CI", "accuracy", "95% CI", "invalid", "missing", "interval"]
        .map((h) => el("th", {}, h))));
    for (const { sys, i, sc } of rows) {
      const ci = sc.ci95 || {};
      const b = sc.bootstrap || {};
      const undef = sc.ci95_undefined || {};
      const why = [...new Set(Object.values(undef))].join("; ");
      const how = b.n_resamples ? `${b.n_resamples} resamples of ${b.n_units} ${b.unit} units` : "no bootstrap";
      t.append(el("tr", {
        class: "score", "data-system": String(i), "data-split": sc.split, "data-task": sc.task,
        "data-macro-f1": String(sc.macro_f1), "data-accuracy": String(sc.accuracy),
      },
      el("td", { title: sys.path }, sys.name), el("td", {}, sc.split), el("td", {}, SHORT[sc.task]),
      el("td", {}, String(sc.n)),
      el("td", { class: "num" }, fmt(sc.macro_f1)),
      el("td", { class: "ci", title: undef.macro_f1 || null }, interval(ci.macro_f1)),
      el("td", { class: "num" }, fmt(sc.accuracy)),
      el("td", { class: "ci", title: undef.accuracy || null }, interval(ci.accuracy)),
      el("td", {}, String(sc.n_invalid)), el("td", {}, String(sc.n_missing)),
      el("td", { class: "meta" }, why ? `${how}; ${why}` : how)));
    }
    return t;
  }

  function renderSystems() {
    const scores = $("#scores");
    const table = DATA.systems.length ? scoresTable() : null;
    scores.replaceChildren(...(table ? [table] : []));
    const box = $("#systems");
    box.replaceChildren();
    for (const { sys, i, task } of systemColumns()) box.append(confusion(sys, i, task));
  }

  // ------------------------------------------------------------------ one clip
  function mediaUrl(clip, kind) {
    if (!clip.media.includes(kind)) return null;
    if (MEDIA_BLOBS) {
      const key = `${kind}/${clip.id}`;
      if (!(key in MEDIA_BLOBS)) return null;
      if (!blobUrls.has(key)) {
        const bin = atob(MEDIA_BLOBS[key]);
        const bytes = new Uint8Array(bin.length);
        for (let j = 0; j < bin.length; j++) bytes[j] = bin.charCodeAt(j);
        const type = kind === "video" ? "video/mp4" : "audio/wav";
        blobUrls.set(key, URL.createObjectURL(new Blob([bytes], { type })));
      }
      return blobUrls.get(key);
    }
    if (!SERVED) return null;
    return `media/${kind}/${encodeURIComponent(clip.id)}`;
  }

  let player = null;
  let frame = 0;
  function currentWord(words, t) {
    for (let j = 0; j < words.length; j++) {
      const [, s, e] = words[j];
      if (s !== null && e !== null && s <= t && t < e) return j;
    }
    return -1;
  }
  function highlight() {
    if (!player) return;
    const clip = BY_ID.get(player.dataset.clip);
    if (!clip) return;
    const j = currentWord(clip.words, player.currentTime);
    for (const node of document.querySelectorAll("#words .w.current")) {
      if (Number(node.dataset.index) !== j) node.classList.remove("current");
    }
    if (j >= 0) {
      const node = document.querySelector(`#words .w[data-index="${j}"]`);
      if (node) node.classList.add("current");
    }
  }
  function loop() {
    highlight();
    if (player && !player.paused) frame = requestAnimationFrame(loop);
  }

  function renderClip(id) {
    const aside = $("#clip");
    cancelAnimationFrame(frame);
    if (player) { player.pause(); player = null; }
    if (!id) { aside.hidden = true; aside.replaceChildren(); return; }
    const clip = BY_ID.get(id);
    aside.hidden = false;
    if (!clip) {
      aside.replaceChildren(el("h2", {}, "unknown clip"), el("p", {}, `No clip ${id} in this dataset.`),
        el("a", { href: hrefWith({ clip: null }) }, "back"));
      return;
    }
    const parts = [];
    parts.push(el("h2", {}, el("span", { id: "clip-id" }, clip.id),
      el("button", { type: "button", class: "close", title: "close", onclick: () => go({ clip: null }) }, "\u2715")));
    const span = clip.start !== null && clip.end !== null
      ? `${clip.start.toFixed(2)}\u2013${clip.end.toFixed(2)} s` : "";
    parts.push(el("p", { class: "meta" },
      `${clip.split} \u00b7 source ${show("source", clip)} #${show("index", clip)} \u00b7 ${show("topic", clip)} \u00b7 speaker ${show("speaker", clip)} \u00b7 ${span}`));
    const video = mediaUrl(clip, "video");
    const audio = mediaUrl(clip, "audio");
    if (video || audio) {
      player = el(video ? "video" : "audio", {
        id: "player", controls: true, preload: "auto", src: video || audio, "data-clip": clip.id,
      });
      player.playsInline = true;
      for (const ev of ["timeupdate", "seeked", "seeking", "loadedmetadata", "pause"]) {
        player.addEventListener(ev, highlight);
      }
      player.addEventListener("play", () => { cancelAnimationFrame(frame); frame = requestAnimationFrame(loop); });
      parts.push(player);
    } else {
      parts.push(el("p", { class: "nomedia" },
        clip.media.length ? "Media are served by 'indomer browse OUT' (or embedded with --html FILE --with-media)."
          : "This build has no media: text only."));
    }
    const labels = el("p", { id: "labels" });
    for (const task of TASKS) {
      labels.append(el("span", { "data-task": task }, `${SHORT[task]}: `, el("b", {}, show(task, clip))), "  ");
    }
    if (clip.intensity !== null && clip.intensity !== undefined) labels.append(`intensity: ${clip.intensity}`);
    parts.push(labels);

    parts.push(el("h3", {}, "Transcript", clip.draft ? " (machine draft, unchecked)" : ""));
    const words = el("p", { id: "words" });
    if (clip.words.length) {
      clip.words.forEach(([w, s, e], j) => {
        const timed = s !== null && e !== null;
        const node = el("span", {
          class: timed ? "w" : "w unaligned", "data-index": String(j),
          "data-start": timed ? String(s) : null, "data-end": timed ? String(e) : null,
          title: timed ? `${s.toFixed(2)}\u2013${e.toFixed(2)} s` : "not aligned",
        }, w);
        if (timed) {
          node.addEventListener("click", () => {
            if (player) { player.currentTime = s; highlight(); }
          });
        }
        words.append(node, " ");
      });
    } else words.append(clip.text || "(no transcript)");
    parts.push(words);
    if (clip.unaligned) parts.push(el("p", { class: "meta" }, `${clip.unaligned} word(s) not aligned (grey).`));
    else if (clip.unaligned === null) parts.push(el("p", { class: "meta", id: "no-word-times" }, "No word times in this build."));

    parts.push(el("h3", {}, "Annotators", clip.adjudicated ? " (adjudicated by the expert)" : "",
      clip.agreement ? ` \u2014 emotion agreement ${clip.agreement}` : ""));
    if (clip.votes.length) {
      // one row per field, in the server's fixed order and under a name for people, one
      // column per annotator (experts last): it fits the clip pane, however many fields
      const who = [...new Set(clip.votes.map((v) => v.annotator))];
      const present = new Set(clip.votes.map((v) => v.field));
      const known = DATA.vote_fields.map(([f]) => f);
      const names = new Map(DATA.vote_fields);
      const fields = [...known.filter((f) => present.has(f)), ...[...present].filter((f) => !known.includes(f)).sort()];
      const t = el("table", { id: "votes" }, el("tr", {}, el("th", {}, ""),
        ...who.map((a) => el("th", { class: "who", "data-annotator-head": a ?? "" }, a ?? "\u2014"))));
      for (const f of fields) {
        const tr = el("tr", { class: "vote" }, el("th", { "data-field-head": f }, names.get(f) || f));
        for (const a of who) {
          const mine = clip.votes.filter((v) => v.annotator === a && v.field === f);
          const td = el("td", {});
          for (const v of mine) {
            const final = TASKS.includes(f) && v.value === clip[f];
            td.append(el("span", {
              class: final ? "final" : null, "data-annotator": a, "data-field": f,
            }, v.value ?? "\u2014"), " ");
          }
          tr.append(td);
        }
        t.append(tr);
      }
      parts.push(t);
    } else parts.push(el("p", { class: "meta", id: "votes-none" }, "No individual votes in this build."));
    const check = clip.speaker_check;
    if (check) {
      const bits = [check.flagged ? "flagged: the main speaker does not dominate" : "not flagged"];
      if (check.n_speakers !== null && check.n_speakers !== undefined) bits.push(`${check.n_speakers} voice(s) heard`);
      if (check.primary_share !== null && check.primary_share !== undefined) bits.push(`main speaker ${(100 * check.primary_share).toFixed(0)}% of speech`);
      parts.push(el("p", { class: check.flagged ? "flag" : "meta", id: "speaker-check" }, "Speaker check: " + bits.join(", ")));
    }
    if (clip.face_flag !== null) {
      parts.push(el("p", { class: clip.face_flag ? "flag" : "meta", id: "face-check" },
        clip.face_flag ? "Face check: flagged (not one face most of the time)" : "Face check: one face"));
    }

    if (DATA.systems.length) {
      parts.push(el("h3", {}, "Systems"));
      const t = el("table", { id: "answers" },
        el("tr", {}, el("th", {}, "system"), el("th", {}, "task"), el("th", {}, "reference"), el("th", {}, "answer"), el("th", {}, "raw")));
      for (const { sys, task } of systemColumns()) {
        const a = systemAnswer(sys, clip, task);
        if (a === undefined) continue;
        const raw = sys.raw[clip.id] ? sys.raw[clip.id][task] : "";
        t.append(el("tr", {}, el("td", {}, sys.name), el("td", {}, SHORT[task]), el("td", {}, show(task, clip)),
          el("td", { class: isError(sys, clip, task) ? "wrong" : "right" }, a === null ? "(invalid)" : a),
          el("td", { class: "meta" }, raw === null ? "null" : String(raw))));
      }
      parts.push(t);
    }

    const others = CLIPS.filter((c) => c.speaker !== null && c.speaker === clip.speaker && c.id !== clip.id);
    parts.push(el("h3", {}, `Speaker ${show("speaker", clip)}: ${others.length} other clip(s)`));
    const list = el("p", { id: "others" });
    for (const c of others) {
      // the href is for copying; a click keeps the filters of the moment
      list.append(el("a", {
        href: hrefWith({ clip: c.id }), title: c.emotion || "",
        onclick: (e) => { e.preventDefault(); go({ clip: c.id }); },
      }, c.id), " ");
    }
    parts.push(list);
    aside.replaceChildren(...parts);
  }

  // ------------------------------------------------------------------ top level
  let lastClip = undefined;
  function render() {
    const s = getState();
    const t0 = performance.now();
    renderFilters();
    renderTable(selected());
    renderSystems();
    const clip = s.get("clip");
    if (clip !== lastClip) { renderClip(clip); lastClip = clip; }
    document.body.dataset.renderMs = (performance.now() - t0).toFixed(1);
    document.body.dataset.ready = "1";
  }

  function start(data) {
    DATA = data;
    CLIPS = data.clips;
    BY_ID = new Map(CLIPS.map((c) => [c.id, c]));
    const d = data.dataset;
    $("#title").textContent = `indomer browse: ${d.name}`;
    document.title = `indomer browse: ${d.name}`;
    const splits = Object.entries(d.splits).map(([k, v]) => `${k} ${v}`).join(", ");
    const assignment = d.split_name ? `split '${d.split_name}': ` : "";
    $("#summary").textContent = `${d.clips} clips (${assignment}${splits}); media: ${d.media.length ? d.media.join(", ") : "none (text only)"}`
      + (data.systems.length ? `; systems: ${data.systems.map((x) => x.name).join(", ")}` : "");
    if (data.problems.length) {
      const box = $("#problems");
      box.hidden = false;
      box.textContent = data.problems.map((p) => "warning: " + p).join("\n");
    }
    if (data.identity && data.identity.total) {
      // the same queue as 'indomer speakers review': the answers that buy the most safety
      const idn = data.identity;
      const box = $("#identity");
      box.hidden = false;
      box.querySelector("summary").textContent = `speaker review: ${idn.total} uncertain pairs; `
        + `expected people on two sides ${idn.expected == null ? "unknown" : idn.expected.toFixed(2)}`;
      box.querySelector("pre").textContent = idn.review.map((e) =>
        `${e.source_a} / ${e.source_b}: p ${e.p.toFixed(3)}, gain ${e.expected_reduction.toFixed(3)}`
        + `${e.on_two_sides ? " (on two sides)" : ""}; same: ${e.speakers_csv.same}  `
        + `different: ${e.speakers_csv.different}`).join("\n");
    }
    $("#loading").remove();
    window.addEventListener("hashchange", render);
    render();
  }

  const inline = document.getElementById("indomer-data");
  const media = document.getElementById("indomer-media");
  if (media) MEDIA_BLOBS = JSON.parse(media.textContent);
  if (inline) {
    start(JSON.parse(inline.textContent));
  } else {
    SERVED = true;
    fetch("data.json").then((r) => {
      if (!r.ok) throw new Error(`data.json: HTTP ${r.status}`);
      return r.json();
    }).then(start).catch((e) => { $("#loading").textContent = `could not load the data: ${e.message}`; });
  }
  window.indomerBrowse = { currentWord, selected: () => selected().map((c) => c.id) };
})();
