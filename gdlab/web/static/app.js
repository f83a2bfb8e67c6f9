/* gdlab browser lab: a thin view over the JSON API (no numerics of its own beyond drawing).
 *
 * State lives in `S` and in the URL hash (a copied link reproduces the view); server answers live in
 * `D` (surface, runs, analysis). The contour is a Plotly plot; balls and trails are drawn on a canvas
 * overlay every animation frame (the 3-D view restyles a few small Plotly traces instead).
 *
 * Plotly.js comes in two bundles, each its own Plotly instance (see "Plotly.js: two bundles" below):
 * the cartesian partial bundle draws the page, the full bundle only the 3-D view, fetched when wanted.
 */
"use strict";

(() => {
  // ---------------------------------------------------------------------------------------------
  // constants and small helpers
  // ---------------------------------------------------------------------------------------------
  const PALETTE = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf",
    "#e377c2", "#8c564b", "#bcbd22", "#7f7f7f", "#000080", "#808000"];
  const PRIMARY_HP = new Set(["lr", "momentum", "betas", "max_lr", "alpha", "rho", "lr_decay", "nesterov"]);
  const LOG_HP = { lr: [-5, 1], eps: [-12, 0], max_lr: [-5, 1] };
  // factors in [0, 1) without a declared upper bound: their slider stops just short of 1
  const UNIT_HP = { momentum: 0.999, alpha: 0.999, dampening: 1 };
  const HP_WORDS = { lr: "learning rate", max_lr: "maximum learning rate", eps: "epsilon", momentum: "momentum",
    weight_decay: "weight decay", condition: "condition number" };

  // The slider of a real parameter: [low, high, log] on its declared range (a log scale when the
  // range spans three decades or more), the conventional span of lr and ε, or null for a number box.
  function sliderSpan(spec, base) {
    if (LOG_HP[base]) return [...LOG_HP[base], true];
    if (base.startsWith("betas")) return [spec.low ?? 0, 0.9999, false];
    const lo = spec.low ?? 0;
    let hi = spec.high;
    if (hi == null || !Number.isFinite(hi)) {
      if (!(base in UNIT_HP)) return null;
      hi = UNIT_HP[base];
    } else if (spec.high_open) {
      hi = hi - (hi - lo) / 1000;
    }
    if (lo > 0 && hi / lo >= 1000) return [Math.log10(lo), Math.log10(hi), true];
    return [lo, hi, false];
  }
  function rangeText(spec) {
    const lo = spec.low == null ? "(-inf" : `${spec.low_open ? "(" : "["}${spec.low}`;
    const hi = spec.high == null ? "inf)" : `${spec.high}${spec.high_open ? ")" : "]"}`;
    return `${lo}, ${hi}`;
  }
  const TRAIL = 24; // steps of the bright fading trail
  const GRID = 200; // surface grid per axis
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids) if (kid != null) e.append(kid);
    return e;
  };
  const fmt = (v, p = 4) => {
    if (v === null || v === undefined) return "—";
    if (typeof v !== "number") return String(v);
    if (!Number.isFinite(v)) return String(v);
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 1e5 || a < 1e-3) return v.toExponential(Math.max(0, p - 2)).replace(/\.?0+e/, "e");
    return String(Number(v.toPrecision(p)));
  };
  const round3 = (v) => Number(v.toPrecision(3));
  const minOf = (arr) => arr.reduce((a, b) => (b < a ? b : a), Infinity); // no spread: arrays can be long
  const maxOf = (arr) => arr.reduce((a, b) => (b > a ? b : a), -Infinity);
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const clone = (o) => JSON.parse(JSON.stringify(o));
  // At most one call per ``ms`` while calls keep coming (the first at once, the last one always made):
  // a dragged slider redraws the paths as it moves, not only when it stops.
  function throttle(fn, ms) {
    let last = -Infinity, t = null, pending = null;
    const fire = () => { t = null; last = performance.now(); const args = pending; pending = null; fn(...args); };
    const th = (...args) => {
      pending = args;
      if (t !== null) return;
      const wait = Math.max(0, last + ms - performance.now());
      t = setTimeout(fire, wait);
    };
    th.now = (...args) => { clearTimeout(t); pending = args; fire(); };
    return th;
  }
  function debounce(fn, ms) {
    let t = null;
    const d = (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
    d.now = (...args) => { clearTimeout(t); fn(...args); };
    return d;
  }

  // ---------------------------------------------------------------------------------------------
  // state
  // ---------------------------------------------------------------------------------------------
  let META = null;
  const S = {
    landscape: null, expr: "", params: {},
    opts: [], start: null, steps: 200, tol: 1e-6,
    schedule: null, view3d: false, arrows: false, step: 0, lesson: null,
  };
  const D = { surface: null, runs: null, analysis: null, surfaceKey: null, exprStatus: null };
  const A = { playing: false, t: 0, speed: 40, last: 0, frames: [], fps: 0, maxLen: 1 };
  const G = { ready: false, errors: [], lastRunMs: null, requests: 0, marks: [] };
  const mark = (label) => G.marks.push([label, Math.round(performance.now())]);

  const landscapeMeta = () => (S.landscape ? META.landscapes.find((l) => l.name === S.landscape) : null);
  const dim = () => {
    if (D.surface && D.surfaceKey === JSON.stringify(problem())) return D.surface.dim;
    const lm = landscapeMeta();
    if (lm) return lm.dim;
    return D.exprStatus && D.exprStatus.valid ? D.exprStatus.dim : 2;
  };
  const optMeta = (name) => META.optimizers.find((o) => o.name === name);
  const schedMeta = (name) => META.schedules.find((s) => s.name === name);
  const problem = () => (S.landscape ? { landscape: S.landscape, params: S.params } : { expr: S.expr });

  // ---------------------------------------------------------------------------------------------
  // the API
  // ---------------------------------------------------------------------------------------------
  const inflight = {};
  async function api(path, body, key) {
    if (key) {
      if (inflight[key]) inflight[key].abort();
      inflight[key] = new AbortController();
    }
    G.requests += 1;
    const opts = body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    };
    if (key) opts.signal = inflight[key].signal;
    let res;
    try {
      res = await fetch(path, opts);
    } catch (err) {
      if (err.name === "AbortError") return null;
      throw new Error(`cannot reach the lab server (${err.message})`);
    } finally {
      G.requests -= 1;
    }
    let data = null;
    try { data = await res.json(); } catch (err) { data = null; }
    if (!res.ok) {
      const msg = data && data.detail ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail))
        : `HTTP ${res.status}`;
      const e = new Error(msg);
      e.status = res.status;
      throw e;
    }
    return data;
  }
  function showError(msg) {
    const b = $("banner");
    if (!msg) { b.hidden = true; b.textContent = ""; return; }
    b.textContent = msg;
    b.hidden = false;
  }

  // ---------------------------------------------------------------------------------------------
  // URL state
  // ---------------------------------------------------------------------------------------------
  function encodeState() {
    const q = new URLSearchParams();
    if (S.landscape) q.set("l", S.landscape); else q.set("e", S.expr);
    if (S.landscape && Object.keys(S.params).length) q.set("p", JSON.stringify(S.params));
    q.set("o", JSON.stringify(S.opts.map((o) => {
      const x = { n: o.name, c: o.color };
      if (Object.keys(o.hp).length) x.h = o.hp;
      if (o.noise) x.z = o.noise;
      return x;
    })));
    if (S.start) q.set("s", S.start.map((v) => String(v)).join(","));
    q.set("n", String(S.steps));
    if (S.tol !== 1e-6) q.set("t", String(S.tol));
    if (S.schedule) q.set("sc", JSON.stringify(S.schedule));
    if (S.view3d) q.set("v", "3d");
    if (S.arrows) q.set("a", "1");
    const k = Math.floor(A.t);
    if (k > 0) q.set("k", String(k));
    if (S.lesson) q.set("lesson", S.lesson);
    return q.toString();
  }
  let hashTimer = 0;
  function writeHash(now = false) {
    const go = () => {
      hashTimer = 0;
      const h = "#" + encodeState();
      if (location.hash !== h) history.replaceState(null, "", h);
      renderLesson();
    };
    if (now) { clearTimeout(hashTimer); go(); return; }
    if (!hashTimer) hashTimer = setTimeout(go, 250);
  }
  function decodeState(hash) {
    const q = new URLSearchParams(hash.replace(/^#/, ""));
    if (!q.has("l") && !q.has("e")) return false;
    const out = {};
    const tryJSON = (s, d) => { try { return JSON.parse(s); } catch (e) { return d; } };
    if (q.has("l") && META.landscapes.some((l) => l.name === q.get("l"))) out.landscape = q.get("l");
    else if (q.has("e") && q.get("e").trim()) { out.landscape = null; out.expr = q.get("e"); }
    else return false;
    out.params = q.has("p") ? tryJSON(q.get("p"), {}) : {};
    const opts = tryJSON(q.get("o") || "[]", []);
    out.opts = (Array.isArray(opts) ? opts : [])
      .filter((o) => o && optMeta(o.n))
      .slice(0, META.limits.max_optimizers)
      .map((o, i) => ({ name: o.n, color: /^#[0-9a-fA-F]{6}$/.test(o.c || "") ? o.c : PALETTE[i % 12], hp: o.h || {},
        noise: validNoise(o.z) }));
    if (q.has("s")) {
      const s = q.get("s").split(",").map(Number);
      out.start = s.every(Number.isFinite) ? s : null;
    } else out.start = null;
    const n = parseInt(q.get("n") || "200", 10);
    out.steps = Math.min(Math.max(Number.isFinite(n) ? n : 200, 1), META.limits.max_steps);
    out.tol = q.has("t") ? Number(q.get("t")) : 1e-6;
    if (!Number.isFinite(out.tol) || out.tol < 0) out.tol = 1e-6;
    const sc = q.has("sc") ? tryJSON(q.get("sc"), null) : null;
    out.schedule = sc && schedMeta(sc.name) ? { name: sc.name, params: sc.params || {} } : null;
    out.view3d = q.get("v") === "3d";
    out.arrows = q.get("a") === "1";
    out.step = Math.max(parseInt(q.get("k") || "0", 10) || 0, 0);
    out.lesson = q.get("lesson") || null;
    Object.assign(S, out);
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // hyperparameter controls generated from the specs
  // ---------------------------------------------------------------------------------------------
  let uid = 0;
  function hpControl(spec, value, onChange, ctx) {
    const id = `hp${++uid}`;
    const name = spec.name;
    const row = el("div", { class: "hp", "data-hp": name });
    const label = el("label", { for: id, title: spec.doc || name, text: name });
    const setVal = (v) => onChange(name, v);
    if (spec.kind === "bool") {
      row.classList.add("check");
      const box = el("input", { type: "checkbox", id });
      box.checked = !!value;
      box.addEventListener("change", () => setVal(box.checked));
      row.append(label, box);
      return row;
    }
    if (spec.kind === "choice") {
      const sel = el("select", { id });
      spec.choices.forEach((c, i) => {
        const o = el("option", { value: String(i), text: String(c) });
        if (same(c, value)) o.selected = true;
        sel.append(o);
      });
      sel.addEventListener("change", () => setVal(spec.choices[Number(sel.value)]));
      row.append(label, sel, el("span"));
      return row;
    }
    if (spec.kind === "pair" && spec.default.some((v) => v == null)) {
      // a default the lab cannot send (Adafactor's eps = (None, 1e-3)): kept, not editable here
      row.append(label, el("span", { text: "default" }), el("span"));
      return row;
    }
    if (spec.kind === "function") {
      const inp = el("input", { type: "text", id, placeholder: "a formula in t, e.g. 0.95^t" });
      inp.value = typeof value === "string" ? value : "";
      inp.addEventListener("change", () => { if (inp.value.trim()) setVal(inp.value.trim()); });
      row.append(label, inp, el("span"));
      return row;
    }
    if (spec.kind === "pair") {
      const frag = el("div", { class: "hp-grid" });
      const cur = Array.isArray(value) ? value.slice() : spec.default.slice();
      cur.forEach((v, i) => {
        const sub = { ...spec, name: `${name}[${i}]`, kind: "real", default: spec.default[i] };
        frag.append(hpControl(sub, v, (_, nv) => { cur[i] = nv; setVal(cur.slice()); }, ctx));
      });
      return frag;
    }
    if (spec.kind === "int_list") {
      const inp = el("input", { type: "text", id, placeholder: "e.g. 100, 200" });
      inp.value = Array.isArray(value) ? value.join(", ") : "";
      inp.addEventListener("change", () => {
        const items = inp.value.split(/[\s,]+/).filter(Boolean).map(Number);
        if (items.every(Number.isInteger)) setVal(items);
      });
      row.append(label, inp, el("span"));
      return row;
    }
    const base = name.replace(/\[\d\]$/, "");
    const out = el("output", { for: id });
    const owner = typeof ctx === "number" && S.opts[ctx] ? `${S.opts[ctx].name} ` : "";
    const spoken = `${owner}${HP_WORDS[base] || name}`;  // what a screen reader calls the control
    const span = spec.kind === "real" && !(spec.optional && value == null) ? sliderSpan(spec, base) : null;
    if (span) {
      const [lo, hi, log] = span;
      const v = value == null ? spec.default : value;
      const toPos = (x) => (log ? (x > 0 ? Math.log10(x) : lo) : x);
      const fromPos = (p) => (log ? round3(10 ** p) : Number(p.toPrecision(6)));
      const inp = el("input", { type: "range", id, min: lo, max: hi, step: log ? "0.01" : "any",
        "aria-label": spoken, "aria-valuetext": fmt(v) });
      inp.value = String(toPos(v));
      out.textContent = fmt(v);
      const show = (nv) => { out.textContent = fmt(nv); inp.setAttribute("aria-valuetext", fmt(nv)); };
      inp.addEventListener("input", () => {
        const nv = fromPos(Number(inp.value));
        show(nv);
        if (box) box.value = String(nv);
        setVal(nv);
      });
      let box = null;
      if (log) {  // a log slider also takes an exact value, typed
        box = el("input", { type: "number", class: "exact", step: "any", "aria-label": `${spoken}, exact value` });
        if (spec.low != null) box.min = String(spec.low);
        if (spec.high != null) box.max = String(spec.high);
        box.value = String(v);
        box.addEventListener("change", () => {
          const nv = Number(box.value);
          const okLow = spec.low == null || (spec.low_open ? nv > spec.low : nv >= spec.low);
          const okHigh = spec.high == null || (spec.high_open ? nv < spec.high : nv <= spec.high);
          if (box.value === "" || !Number.isFinite(nv) || !okLow || !okHigh) {
            box.setCustomValidity(`${name} must be in ${rangeText(spec)}`);
            box.reportValidity();
            return;
          }
          box.setCustomValidity("");
          inp.value = String(toPos(nv));
          show(nv);
          setVal(nv);
        });
      }
      row.append(label, inp, out);
      if (box) row.append(box);
      return row;
    }
    // numbers: real or int, possibly optional (empty = not set)
    const inp = el("input", { type: "number", id, step: spec.kind === "int" ? "1" : "any" });
    if (spec.low != null) inp.min = String(spec.low);
    if (spec.high != null) inp.max = String(spec.high);
    if (value != null) inp.value = String(value);
    if (spec.optional) inp.placeholder = "auto";
    inp.addEventListener("change", () => {
      if (inp.value === "") { if (spec.optional) setVal(null); return; }
      const nv = spec.kind === "int" ? parseInt(inp.value, 10) : Number(inp.value);
      if (Number.isFinite(nv)) setVal(nv);
    });
    row.append(label, inp, el("span"));
    return row;
  }

  // ---------------------------------------------------------------------------------------------
  // panels
  // ---------------------------------------------------------------------------------------------
  function buildStatic() {
    const ls = $("landscape");
    ls.innerHTML = "";
    for (const l of META.landscapes) ls.append(el("option", { value: l.name, text: l.title || l.name }));
    ls.append(el("option", { value: "__custom__", text: "Custom expression…" }));
    ls.addEventListener("change", () => {
      if (ls.value === "__custom__") {
        showCustomBox(true);
        $("expr").focus();
        if ($("expr").value.trim()) validateExpr.now(true);
        return;
      }
      S.landscape = ls.value; S.params = {}; S.start = null; S.lesson = null;
      showCustomBox(false);
      afterProblemChange();
    });
    $("expr").addEventListener("input", () => validateExpr(true));
    $("expr").addEventListener("keydown", (e) => { if (e.key === "Enter") validateExpr.now(true); });

    const add = $("add-opt-name");
    add.innerHTML = "";
    for (const o of META.optimizers) add.append(el("option", { value: o.name, text: o.name }));
    $("add-opt").addEventListener("click", () => {
      if (S.opts.length >= META.limits.max_optimizers) {
        showError(`at most ${META.limits.max_optimizers} optimizers`);
        return;
      }
      const used = new Set(S.opts.map((o) => o.color));
      const color = PALETTE.find((c) => !used.has(c)) || PALETTE[S.opts.length % 12];
      S.opts.push({ name: add.value, hp: {}, color });
      S.lesson = null;
      renderOptimizers();
      requestRun();
    });

    const sc = $("schedule");
    sc.innerHTML = "";
    sc.append(el("option", { value: "", text: "none (constant lr)" }));
    for (const s of META.schedules) if (s.name !== "constant") sc.append(el("option", { value: s.name, text: s.name }));
    sc.addEventListener("change", () => {
      S.schedule = sc.value ? { name: sc.value, params: suggestedSchedule(sc.value) } : null;
      S.lesson = null;
      renderSchedule();
      requestRun();
    });

    const startChange = () => {
      const x = Number($("start-x").value), y = Number($("start-y").value);
      const s = dim() === 1 ? [x] : [x, y];
      if (s.every(Number.isFinite)) setStart(s);
    };
    $("start-x").addEventListener("change", startChange);
    $("start-y").addEventListener("change", startChange);
    $("steps").max = String(META.limits.max_steps);
    $("steps").addEventListener("change", () => {
      const n = parseInt($("steps").value, 10);
      if (!Number.isFinite(n) || n < 1) return;
      S.steps = Math.min(n, META.limits.max_steps);
      $("steps").value = String(S.steps);
      if (S.schedule) { renderSchedule(); }
      requestRun();
    });

    $("tol").addEventListener("change", () => {
      const t = Number($("tol").value);
      if (!Number.isFinite(t) || t < 0 || $("tol").value === "") { $("tol").value = String(S.tol); return; }
      S.tol = t;
      S.lesson = null;
      requestRun();
    });

    const pr = $("presets");
    pr.innerHTML = "";
    for (const p of META.presets) {
      pr.append(el("button", { type: "button", "data-preset": p.id, "aria-pressed": "false", title: p.summary || "",
        text: p.title, onclick: () => chooseLesson(p) }));
    }
    $("lesson-more").addEventListener("click", () => $("presets").scrollIntoView({ block: "nearest" }));

    $("play").addEventListener("click", togglePlay);
    $("step").addEventListener("click", () => stepBy(1));
    $("reset").addEventListener("click", resetAnim);
    $("speed").addEventListener("input", () => { A.speed = round3(10 ** Number($("speed").value)); showSpeed(); });
    A.speed = round3(10 ** Number($("speed").value));
    showSpeed();
    $("scrub").addEventListener("input", () => { pause(); A.t = Number($("scrub").value); frame(true); writeHash(); });
    $("view3d").addEventListener("change", () => { S.view3d = $("view3d").checked; drawPlot(); writeHash(); });
    $("arrows").addEventListener("change", () => { S.arrows = $("arrows").checked; frame(true); writeHash(); });
    $("copy-link").addEventListener("click", copyLink);
    $("export-png").addEventListener("click", exportPNG);
    $("export-json").addEventListener("click", exportJSON);

    document.addEventListener("keydown", (e) => {
      const t = e.target;
      const typing = t && (t.tagName === "INPUT" && !["range", "checkbox", "color"].includes(t.type)
        || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
      if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === " " || e.code === "Space") {
        if (t && t.tagName === "BUTTON") return; // the button itself handles Space
        e.preventDefault(); togglePlay();
      } else if (e.key === "ArrowRight" && !(t && t.type === "range")) {
        e.preventDefault(); stepBy(1);
      } else if (e.key === "ArrowLeft" && !(t && t.type === "range")) {
        e.preventDefault(); stepBy(-1);
      } else if (e.key === "Home" && !(t && t.type === "range")) {
        e.preventDefault(); resetAnim();
      }
    });
    window.addEventListener("resize", debounce(() => {
      for (const id of ["plot", "loss", "schedule-preview"]) {
        const gd = $(id), P = plotlyOf(gd);
        if (P && gd.data) P.Plots.resize(gd);
      }
    }, 100));
  }

  function showSpeed() { $("speed-out").textContent = `${fmt(A.speed, 2)}/s`; }

  function showCustomBox(custom) {
    $("landscape").value = custom ? "__custom__" : S.landscape;
    $("expr").disabled = !custom;
    $("custom-box").classList.toggle("off", !custom);
  }

  let paramsFor = null;
  const paramChanged = debounce(() => { S.lesson = null; afterProblemChange(); }, 150);
  function renderLandscapeParams() {
    const lm = landscapeMeta();
    const key = lm ? lm.name + JSON.stringify(S.params) : null;
    if (key === paramsFor) return;
    paramsFor = key;
    const box = $("landscape-params");
    box.innerHTML = "";
    if (!lm) return;
    const onChange = (name, v) => {
      const spec = lm.params.find((h) => h.name === name);
      if (v === null || same(v, spec.default)) delete S.params[name]; else S.params[name] = v;
      paramsFor = lm.name + JSON.stringify(S.params);
      paramChanged();
    };
    for (const spec of lm.params) box.append(hpControl(spec, S.params[spec.name] ?? spec.default, onChange, "l"));
  }

  function renderProblem() {
    const lm = landscapeMeta();
    renderLandscapeParams();
    showCustomBox(!lm);
    if (!lm) $("expr").value = S.expr;
    $("landscape-doc").textContent = lm ? (lm.description || "") : (META.expression_help || "");
    const s = currentStart();
    $("start-x").value = s ? String(round6(s[0])) : "";
    const one = dim() === 1;
    $("start-y-label").hidden = one;
    $("start-y").value = s && !one ? String(round6(s[1])) : "";
    $("steps").value = String(S.steps);
    $("tol").value = String(S.tol);
    $("view3d").checked = S.view3d;
    $("arrows").checked = S.arrows;
    $("view3d").disabled = one;
  }
  const round6 = (v) => Number(Number(v).toPrecision(6));

  function currentStart() {
    if (S.start) return S.start;
    const lm = landscapeMeta();
    if (lm) return lm.default_start;
    return surfaceIsCurrent() ? D.surface.default_start : null;
  }
  const surfaceIsCurrent = () => !!D.surface && D.surfaceKey === JSON.stringify(problem());

  function renderOptimizers() {
    const list = $("opt-list");
    list.innerHTML = "";
    S.opts.forEach((o, i) => {
      const meta = optMeta(o.name);
      const card = el("div", { class: "opt-card", "data-index": String(i) });
      card.style.setProperty("--c", o.color);
      const sel = el("select", { "aria-label": `optimizer ${i + 1}`, id: `opt-name-${i}` });
      for (const m of META.optimizers) {
        const op = el("option", { value: m.name, text: m.name });
        if (m.name === o.name) op.selected = true;
        sel.append(op);
      }
      sel.addEventListener("change", () => { o.name = sel.value; o.hp = {}; S.lesson = null; renderOptimizers(); requestRun(); });
      const colour = el("input", { type: "color", value: o.color, "aria-label": `colour of optimizer ${i + 1}` });
      colour.addEventListener("input", () => {
        o.color = colour.value; card.style.setProperty("--c", o.color);
        if (D.runs && D.runs.runs[i]) D.runs.runs[i].color = o.color;
        drawLoss(); frame(true); drawSchedulePreview(); writeHash();
      });
      const remove = el("button", { type: "button", class: "remove", "aria-label": `remove optimizer ${i + 1}`, text: "✕" });
      remove.disabled = S.opts.length <= 1;
      remove.addEventListener("click", () => { S.opts.splice(i, 1); S.lesson = null; renderOptimizers(); requestRun(); });
      card.append(el("div", { class: "opt-head" }, colour, sel, remove));
      card.append(el("p", { class: "opt-status", id: `opt-status-${i}` }));
      // announced only when a run's status changes (the line above changes every frame while playing)
      card.append(el("p", { class: "sr-only", id: `opt-announce-${i}`, "aria-live": "polite" }));
      card.append(el("p", { class: "opt-warn", id: `opt-warn-${i}` }));
      card.append(el("p", { class: "opt-rule doc", id: `opt-rule-${i}` }));
      card.append(el("div", { class: "opt-tex", id: `opt-tex-${i}`, "aria-label": `${o.name} update rule` }));
      const grid = el("div", { class: "hp-grid" });
      const more = el("details", { class: "more" }, el("summary", { text: "more hyperparameters" }));
      const moreGrid = el("div", { class: "hp-grid" });
      more.append(moreGrid);
      const onChange = (name, v) => {
        const spec = meta.hyperparams.find((h) => h.name === name);
        if (v === null || same(v, spec.default)) delete o.hp[name]; else o.hp[name] = v;
        S.lesson = null;
        updateWarnings();
        renderRule(i);
        requestRun();
      };
      for (const spec of meta.hyperparams) {
        const ctl = hpControl(spec, o.hp[spec.name] ?? spec.default, onChange, i);
        (PRIMARY_HP.has(spec.name) ? grid : moreGrid).append(ctl);
      }
      card.append(grid);
      if (moreGrid.childElementCount) card.append(more);
      card.append(noiseControls(o, i));
      list.append(card);
    });
    S.opts.forEach((_, i) => renderRule(i));
    $("add-opt").disabled = S.opts.length >= META.limits.max_optimizers;
    updateStatuses();
    updateWarnings();
  }

  // Stochastic gradients: g̃ = ∇f + (σ/√B)·ξ, ξ ~ N(0, I), seeded (the server draws the noise), so a
  // run repeats from its URL. σ = 0 or "off" is plain gradient descent.
  function validNoise(z) {
    if (!z || typeof z !== "object") return null;
    const L = META.limits;
    const sigma = Number(z.sigma), B = Number(z.batch_size ?? 1), seed = Number(z.seed ?? 0);
    if (!(Number.isFinite(sigma) && sigma >= 0 && sigma <= (L.max_noise_sigma ?? 1e3))) return null;
    if (!(Number.isInteger(B) && B >= 1 && B <= (L.max_noise_batch ?? 1e6))) return null;
    if (!(Number.isInteger(seed) && seed >= 0 && seed <= (L.max_noise_seed ?? 2147483647))) return null;
    return { sigma, batch_size: B, seed };
  }
  // ---------------------------------------------------------------------------------------------
  // the update rule of each optimizer, typeset by KaTeX (vendored) with the current values filled in
  // ---------------------------------------------------------------------------------------------
  const tn = (v) => {
    const t = fmt(v, 3);
    const m = /^(-?[\d.]+)e([+-]?\d+)$/.exec(t);
    return m ? `${m[1]}\\cdot 10^{${Number(m[2])}}` : t;
  };
  function ruleTeX(name, hp) {
    const g = "\\nabla f(\\theta_k)";
    const wd = hp.weight_decay ? ` + ${tn(hp.weight_decay)}\\,\\theta_k` : "";
    const gk = `g_k = ${g}${wd}`;
    const b = hp.betas || [0.9, 0.999];
    const eps = tn(hp.eps ?? 1e-8);
    const lr = tn(hp.lr);
    switch (name) {
      case "sgd": {
        if (!(hp.momentum > 0)) return `${gk},\\quad \\theta_{k+1} = \\theta_k - ${lr}\\,g_k`;
        const damp = hp.dampening ? `(1-${tn(hp.dampening)})\\,` : "";
        const step = hp.nesterov ? `(g_k + ${tn(hp.momentum)}\\,b_k)` : "b_k";
        return `${gk},\\quad b_k = ${tn(hp.momentum)}\\,b_{k-1} + ${damp}g_k,\\quad \\theta_{k+1} = \\theta_k - ${lr}\\,${step}`;
      }
      case "momentum":
        return `v_k = ${tn(hp.momentum)}\\,v_{k-1} + ${lr}\\,${g}${wd},\\quad \\theta_{k+1} = \\theta_k - v_k`;
      case "nesterov":
        return `v_k = ${tn(hp.momentum)}\\,v_{k-1} + ${lr}\\,\\nabla f(\\theta_k - ${tn(hp.momentum)}\\,v_{k-1}),\\quad \\theta_{k+1} = \\theta_k - v_k`;
      case "adam": case "adamw": case "radam": case "nadam": {
        const mv = `m_k = ${tn(b[0])}\\,m_{k-1} + ${tn(1 - b[0])}\\,g_k,\\quad v_k = ${tn(b[1])}\\,v_{k-1} + ${tn(1 - b[1])}\\,g_k^2`;
        const hats = `\\hat m_k = \\frac{m_k}{1-${tn(b[0])}^k},\\quad \\hat v_k = \\frac{v_k}{1-${tn(b[1])}^k}`;
        const dec = name === "adamw" ? ` - ${lr}\\cdot${tn(hp.weight_decay ?? 0.01)}\\,\\theta_k` : "";
        const gg = name === "adamw" ? `g_k = ${g}` : gk;
        const lead = name === "nadam" ? `\\mu_k\\hat m_k + \\tfrac{1-\\mu_k}{1-${tn(b[0])}^k}g_k` : "\\hat m_k";
        const rect = name === "radam" ? "r_k\\," : "";
        return `${gg},\\; ${mv},\\; ${hats},\\quad \\theta_{k+1} = \\theta_k - ${lr}\\,\\frac{${rect}${lead}}{\\sqrt{\\hat v_k} + ${eps}}${dec}`;
      }
      case "adamax":
        return `${gk},\\; m_k = ${tn(b[0])}\\,m_{k-1} + ${tn(1 - b[0])}\\,g_k,\\; u_k = \\max(${tn(b[1])}\\,u_{k-1}, |g_k| + ${eps}),\\quad \\theta_{k+1} = \\theta_k - \\frac{${lr}}{1-${tn(b[0])}^k}\\,\\frac{m_k}{u_k}`;
      case "adagrad": {
        const eta = hp.lr_decay ? `\\frac{${lr}}{1 + (k-1)\\,${tn(hp.lr_decay)}}` : lr;
        return `${gk},\\quad s_k = s_{k-1} + g_k^2,\\quad \\theta_{k+1} = \\theta_k - ${eta}\\,\\frac{g_k}{\\sqrt{s_k} + ${tn(hp.eps ?? 1e-10)}}`;
      }
      case "rmsprop": {
        const a = tn(hp.alpha ?? 0.99);
        const s2 = `s_k = ${a}\\,s_{k-1} + ${tn(1 - (hp.alpha ?? 0.99))}\\,g_k^2`;
        const den = hp.centered ? `\\sqrt{s_k - \\bar g_k^2} + ${eps}` : `\\sqrt{s_k} + ${eps}`;
        if (hp.momentum > 0) return `${gk},\\; ${s2},\\; b_k = ${tn(hp.momentum)}\\,b_{k-1} + \\frac{g_k}{${den}},\\quad \\theta_{k+1} = \\theta_k - ${lr}\\,b_k`;
        return `${gk},\\; ${s2},\\quad \\theta_{k+1} = \\theta_k - ${lr}\\,\\frac{g_k}{${den}}`;
      }
      case "adadelta": {
        const r = tn(hp.rho ?? 0.9), e = tn(hp.eps ?? 1e-6), r1 = tn(1 - (hp.rho ?? 0.9));
        return `${gk},\\; s_k = ${r}\\,s_{k-1} + ${r1}\\,g_k^2,\\; \\Delta_k = \\frac{\\sqrt{u_{k-1} + ${e}}}{\\sqrt{s_k + ${e}}}\\,g_k,\\; u_k = ${r}\\,u_{k-1} + ${r1}\\,\\Delta_k^2,\\quad \\theta_{k+1} = \\theta_k - ${lr}\\,\\Delta_k`;
      }
      case "lion":
        return `${gk.replace(wd, "")},\\; c_k = ${tn(b[0])}\\,m_{k-1} + ${tn(1 - b[0])}\\,g_k,\\quad \\theta_{k+1} = \\theta_k - ${lr}\\,(\\operatorname{sign} c_k + ${tn(hp.weight_decay ?? 0)}\\,\\theta_k),\\; m_k = ${tn(b[1])}\\,m_{k-1} + ${tn(1 - b[1])}\\,g_k`;
      case "newton":
        return `\\theta_{k+1} = \\theta_k - ${lr}\\,\\bigl(\\nabla^2 f(\\theta_k) + ${tn(hp.damping ?? 0)}\\,I\\bigr)^{-1}\\,${g}`;
      case "lbfgs":
        return `\\theta_{k+1} = \\theta_k - ${lr}\\,H_k\\,${g},\\quad H_k \\approx \\nabla^2 f^{-1}\\text{ from the last ${hp.history_size ?? 100} steps}`;
      case "sam":
        return `\\hat\\epsilon_k = ${tn(hp.rho ?? 0.05)}\\,\\frac{${g}}{\\lVert ${g}\\rVert},\\quad \\theta_{k+1} = \\theta_k - ${tn(hp.eta ?? 0.01)}\\,\\nabla f(\\theta_k + \\hat\\epsilon_k)`;
      default:
        return null;
    }
  }
  let katexReady = null;
  let pageReady = null;
  const whenReady = new Promise((resolve) => { pageReady = resolve; });
  function loadKatex() {
    if (!katexReady) {
      katexReady = new Promise((res, rej) => {
        const css = el("link", { rel: "stylesheet", href: "/static/vendor/katex/katex.min.css" });
        const js = el("script", { src: "/static/vendor/katex/katex.min.js" });
        js.onload = () => res(window.katex);
        js.onerror = () => rej(new Error("KaTeX did not load"));
        document.head.append(css, js);
      });
      katexReady.catch(() => {});
    }
    return katexReady;
  }
  function fullHp(o) {
    const hp = {};
    for (const spec of optMeta(o.name).hyperparams) hp[spec.name] = o.hp[spec.name] ?? spec.default;
    return hp;
  }
  function renderRule(i) {
    const o = S.opts[i], box = $(`opt-tex-${i}`);
    if (!o || !box) return;
    const tex = ruleTeX(o.name, fullHp(o));
    box.hidden = !tex;
    if (!tex) return;
    box.dataset.tex = tex;
    whenReady.then(loadKatex).then((katex) => {  // after the page is up: the first visit's requests go first
      if (box.dataset.tex !== tex) return; // a newer value is on its way
      katex.render(tex, box, { throwOnError: false, displayMode: false, output: "htmlAndMathml" });
    }).catch(() => { box.textContent = tex; });
  }
  function noiseControls(o, i) {
    const box = el("details", { class: "more noise" }, el("summary", { text: o.noise ? `gradient noise σ = ${fmt(o.noise.sigma)}, B = ${o.noise.batch_size}` : "gradient noise (SGD)" }));
    const grid = el("div", { class: "hp-grid" });
    const cur = o.noise || { sigma: 0, batch_size: 1, seed: 0 };
    const field = (key, label, attrs) => {
      const id = `noise-${key}-${i}`;
      const inp = el("input", { type: "number", id, ...attrs, "aria-label": `${o.name} noise ${label}` });
      inp.value = String(cur[key]);
      inp.addEventListener("change", () => {
        const next = validNoise({ ...cur, [key]: Number(inp.value) });
        if (!next) { inp.setCustomValidity(`${label}: out of range`); inp.reportValidity(); return; }
        inp.setCustomValidity("");
        Object.assign(cur, next);
        o.noise = cur.sigma > 0 ? { ...cur } : null;
        S.lesson = null;
        requestRun();
      });
      grid.append(el("div", { class: "hp", "data-hp": `noise-${key}` }, el("label", { for: id, text: label }), inp, el("span")));
    };
    field("sigma", "σ", { min: "0", step: "any" });
    field("batch_size", "batch B", { min: "1", step: "1" });
    field("seed", "seed", { min: "0", step: "1" });
    box.append(grid, el("p", { class: "doc", text: "Each step sees ∇f + (σ/√B)·ξ with ξ ~ N(0, I): a mini-batch of B samples whose gradients scatter by σ. Seeded: the run repeats." }));
    if (o.noise) box.open = true;
    return box;
  }

  function suggestedSchedule(name) {
    const n = S.steps;
    const q = Math.max(1, Math.round(n / 4));
    switch (name) {
      case "step": return { step_size: q, gamma: 0.5 };
      case "multistep": return { milestones: [Math.round(n / 2), Math.round((3 * n) / 4)], gamma: 0.3 };
      case "exponential": return { gamma: round3(Math.exp(Math.log(0.01) / Math.max(n, 1))) };
      case "cosine": return { T_max: n };
      case "cosine_warm_restarts": return { T_0: q };
      case "warmup_cosine": return { warmup_steps: Math.max(1, Math.round(n / 10)), total_steps: Math.max(2, n) };
      case "onecycle": return { total_steps: Math.max(2, n) };
      case "cyclic": {
        const lr = S.opts.length ? (S.opts[0].hp.lr ?? optMeta(S.opts[0].name).hyperparams.find((h) => h.name === "lr").default) : 0.01;
        return { max_lr: round3(lr * 10), step_size_up: q };
      }
      case "linear": return { total_iters: q };
      case "polynomial": return { total_iters: n };
      case "constant_lr": return { total_iters: q };
      default: return {};
    }
  }

  function renderSchedule() {
    $("schedule").value = S.schedule ? S.schedule.name : "";
    const box = $("schedule-params");
    box.innerHTML = "";
    if (S.schedule) {
      const meta = schedMeta(S.schedule.name);
      const onChange = (name, v) => {
        const spec = meta.hyperparams.find((h) => h.name === name);
        if (v === null || (same(v, spec.default) && spec.default !== null)) delete S.schedule.params[name];
        else S.schedule.params[name] = v;
        S.lesson = null;
        requestRun();
      };
      for (const spec of meta.hyperparams) box.append(hpControl(spec, S.schedule.params[spec.name] ?? spec.default, onChange, "s"));
    }
    requestPreview();
  }

  // ---------------------------------------------------------------------------------------------
  // requests
  // ---------------------------------------------------------------------------------------------
  function optPayload() {
    return S.opts.map((o) => ({ name: o.name, hyperparams: o.hp, color: o.color, ...(o.noise ? { noise: o.noise } : {}) }));
  }

  async function loadSurface() {
    const key = JSON.stringify(problem());
    if (D.surfaceKey === key && D.surface) return true;
    const data = await api("/api/surface", { ...problem(), grid: GRID }, "surface");
    if (!data) return false;
    D.surface = data;
    D.surfaceKey = key;
    return true;
  }

  let runSeq = 0;
  async function runNow() {
    const seq = ++runSeq;
    const t0 = performance.now();
    try {
      const body = { ...problem(), optimizers: optPayload(), steps: S.steps, tol: S.tol };
      const s = currentStart();
      if (s) body.start = s;
      if (S.schedule) body.schedule = S.schedule;
      const data = await api("/api/run", body, "run");
      if (!data || seq !== runSeq) return;
      D.runs = data;
      G.lastRunMs = performance.now() - t0;
      showError(null);
      A.maxLen = Math.max(1, ...data.runs.map((r) => r.trajectory.length));
      $("scrub").max = String(A.maxLen - 1);
      if (A.t > A.maxLen - 1) A.t = A.maxLen - 1;
      drawLoss();
      if (S.view3d && dim() === 2) drawPlot(); else frame(true);
      updateStatuses();
      updateWarnings();
      writeHash();
      if (!S.landscape) analyze();
      requestRates();
    } catch (err) {
      if (seq === runSeq) showError(err.message);
    }
  }
  const requestRun = throttle(() => { writeHash(); runNow(); requestPreview(); }, 50);

  async function analyze() {
    const s = currentStart();
    if (!s) return;
    try {
      const body = { ...problem(), point: s };
      if (!S.landscape && D.runs) {
        // no known minima: the points where runs converged are the candidates for "the nearest minimum"
        body.candidates = D.runs.runs.filter((r) => r.status === "converged").map((r) => r.trajectory.at(-1))
          .slice(0, META.limits.max_optimizers);
      }
      const data = await api("/api/analyze", body, "analyze");
      if (!data) return;
      D.analysis = data;
      renderStability();
      updateWarnings();
    } catch (err) {
      D.analysis = null;
      $("stability").textContent = err.message;
    }
  }

  const requestPreview = debounce(async () => {
    try {
      const lrs = S.opts.map((o) => o.hp.lr ?? (optMeta(o.name).hyperparams.find((h) => h.name === "lr") || { default: 0.01 }).default);
      const data = await api("/api/schedule", { schedule: S.schedule, lrs: lrs.length ? lrs : [0.01], steps: S.steps }, "preview");
      if (!data) return;
      D.preview = data;
      $("schedule-note").textContent = data.needs_loss
        ? "This schedule reacts to the loss: the preview shows its starting rate; the runs record the rates used." : "";
      drawSchedulePreview();
    } catch (err) {
      D.preview = null;
      showError(err.message);
    }
  }, 100);

  async function afterProblemChange() {
    pause();
    A.t = 0;
    D.runs = null;
    D.analysis = null;
    const runP = runNow();
    const anP = currentStart() ? analyze() : null;
    try {
      const ok = await loadSurface();
      if (!ok) return;
      showError(null);
    } catch (err) {
      showError(err.message);
      return;
    }
    await plotlyReady;
    mark("surface");
    renderProblem();
    drawPlot();
    mark("contour");
    writeHash();
    await Promise.all([runP, anP || analyze()]);
  }

  function setStart(s) {
    S.start = s.map(round6);
    S.lesson = null;
    renderProblem();
    frame(true);
    writeHash();
    requestRun.now();
    analyze();
  }

  // custom expression: validate as you type, apply when valid
  const validateExpr = debounce(async (apply) => {
    const text = $("expr").value;
    const msg = $("expr-msg");
    if (!text.trim()) { msg.textContent = ""; msg.className = "expr-msg"; $("expr").classList.remove("invalid"); return; }
    try {
      const data = await api("/api/validate-expr", { expr: text }, "validate");
      if (!data || text !== $("expr").value) return;
      D.exprStatus = data;
      if (data.valid) {
        msg.textContent = `✓ valid (${data.dim}-D)`;
        msg.className = "expr-msg ok";
        $("expr").classList.remove("invalid");
        $("expr").removeAttribute("aria-invalid");
        if (apply && (S.landscape !== null || S.expr !== text)) {
          S.landscape = null; S.expr = text; S.params = {}; S.start = null; S.lesson = null;
          afterProblemChange();
        }
      } else {
        msg.textContent = data.message;
        msg.className = "expr-msg bad";
        $("expr").classList.add("invalid");
        $("expr").setAttribute("aria-invalid", "true");
      }
    } catch (err) {
      msg.textContent = err.message;
      msg.className = "expr-msg bad";
    }
  }, 250);

  // ---------------------------------------------------------------------------------------------
  // statuses, warnings, stability
  // ---------------------------------------------------------------------------------------------
  function statusText(r, k) {
    if (k < r.stopped_at) return `still going · step ${k}`;
    if (r.status === "converged") return `converged at step ${r.stopped_at}`;
    if (r.status === "diverged") return `✕ diverged at step ${r.stopped_at}`;
    return `max steps (${r.stopped_at}) reached`;
  }
  function updateStatuses() {
    const k = Math.floor(A.t);
    S.opts.forEach((o, i) => {
      const p = $(`opt-status-${i}`);
      if (!p) return;
      const r = D.runs && D.runs.runs[i];
      if (!r) { p.textContent = "…"; p.className = "opt-status"; return; }
      const txt = statusText(r, k);
      const done = k >= r.stopped_at;
      const loss = r.loss[Math.min(k, r.loss.length - 1)];
      const full = `${txt} · f = ${fmt(loss)}`;
      if (p.textContent !== full) p.textContent = full;
      const news = `${o.name}: ${done ? txt : "running"}`;
      const said = $(`opt-announce-${i}`);
      if (said && said.textContent !== news) said.textContent = news;
      const cls = "opt-status" + (done ? " " + r.status : "");
      if (p.className !== cls) p.className = cls;
      p.title = r.reason || "";
    });
  }
  function lrOf(o) {
    if (o.hp.lr !== undefined) return o.hp.lr;
    const spec = optMeta(o.name).hyperparams.find((h) => h.name === "lr");
    return spec ? spec.default : null;
  }
  // Each run is checked against its own method's stability rule (from the server, along the run, at
  // the rate the schedule gives): GD's 2/λmax, heavy ball's 2(1+μ)/λmax, Nesterov's, Adam's
  // preconditioned sharpness; other methods have no known limit and are never flagged.
  function updateWarnings() {
    S.opts.forEach((o, i) => {
      const w = $(`opt-warn-${i}`);
      const rule = $(`opt-rule-${i}`);
      if (!w) return;
      const r = D.runs && D.runs.runs[i];
      const st = r && r.stability;
      if (!st) { w.textContent = ""; if (rule) rule.textContent = ""; return; }
      if (rule) {
        const rate = r.measured_rate != null ? ` · measured rate ${fmt(r.measured_rate, 3)} per step` : "";
        rule.textContent = (st.rule === "none" ? "stability: no known limit for this method" : `stability: ${st.text}`) + rate;
      }
      if (st.rule === "none" || st.first_exceeded == null) { w.textContent = ""; return; }
      const ratio = st.ratio[st.first_exceeded];
      w.textContent = `⚠ unstable from step ${st.first_exceeded}: ${fmt(ratio, 3)}× its limit (${st.text})`;
    });
  }
  function renderStability() {
    const an = D.analysis;
    const box = $("stability");
    box.innerHTML = "";
    if (!an) return;
    const table = el("table");
    table.append(el("tr", {}, el("th", { text: "" }), el("th", { text: "start" }), el("th", { text: "nearest minimum" })));
    const cols = [an.start, an.nearest_minimum];
    const row = (name, f) => table.append(el("tr", {}, el("th", { text: name }),
      ...cols.map((c) => el("td", { text: c ? f(c) : "—" }))));
    row("point", (c) => "(" + c.point.map((v) => fmt(v, 3)).join(", ") + ")");
    row("f", (c) => fmt(c.value));
    row("eigenvalues λ", (c) => (c.eigenvalues.length ? c.eigenvalues.map((v) => fmt(v, 3)).join(", ") : "—"));
    row("2/λmax", (c) => {
      if (c.lambda_max == null) return "—";
      return c.critical_lr == null ? "∞ (λmax ≤ 0)" : fmt(c.critical_lr, 3);
    });
    row("type", (c) => c.classification);
    box.append(table);
    box.append(el("p", { class: "doc", text: "Gradient descent is stable near a point where lr < 2/λmax (λmax: largest Hessian "
      + "eigenvalue); heavy-ball momentum where lr < 2(1+μ)/λmax; Adam where lr·λmax(diag(1/(√v̂+ε))·H) < (2+2β₁)/(1−β₁). "
      + "Each optimizer card says which rule applies to it and flags its run only when that rule is broken." }));
  }

  // ---------------------------------------------------------------------------------------------
  // drawing: the landscape
  // ---------------------------------------------------------------------------------------------
  function zTransform(sf) {
    // contour levels spaced geometrically in f − min, so steep walls do not hide the valley floor
    let n = 0;
    for (const row of sf.z) for (const v of row) if (v !== null) n++;
    if (!n) return { z: sf.z, log: false };
    const flat = new Float64Array(n); // a typed array sorts numbers fast
    n = 0;
    for (const row of sf.z) for (const v of row) if (v !== null) flat[n++] = v;
    let lo = Infinity, hi = -Infinity, pos = Infinity;
    for (const v of flat) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (!(hi > lo)) return { z: sf.z, log: false, lo };
    flat.sort();
    const median = flat[Math.floor(flat.length / 2)];
    if ((median - lo) / (hi - lo) > 0.2) return { z: sf.z, log: false, lo }; // not a steep valley: linear levels
    for (const v of flat) if (v > lo && v - lo < pos) pos = v - lo;
    const floor = Math.max((hi - lo) * 1e-4, Number.isFinite(pos) ? Math.min(pos, (hi - lo) * 1e-2) : 0, 1e-300);
    const z = sf.z.map((row) => row.map((v) => (v === null ? null : Math.log10(v - lo + floor))));
    const tickvals = [], ticktext = [];
    for (let e = Math.ceil(Math.log10(floor)); e <= Math.floor(Math.log10(hi - lo + floor)); e++) {
      tickvals.push(e);
      ticktext.push(fmt(10 ** e, 1));
    }
    return { z, log: true, lo, floor, tickvals, ticktext };
  }

  function criticalTrace(sf, three) {
    const m = sf.critical_points || [];
    if (!m.length) return null;
    const text = m.map((p) => `${p.kind} f=${fmt(p.value)}`);
    const marker = { symbol: three ? "cross" : "x-thin-open", size: three ? 4 : 11, color: "#ffffff", line: { color: "#ffffff", width: 2 } };
    if (sf.dim === 1) {
      return { type: "scatter", mode: "markers", x: m.map((p) => p.location[0]), y: m.map((p) => p.value), text,
        hoverinfo: "text", marker: { ...marker, color: "#333", line: { color: "#333", width: 2 } }, showlegend: false };
    }
    if (three) {
      return { type: "scatter3d", mode: "markers", x: m.map((p) => p.location[0]), y: m.map((p) => p.location[1]),
        z: m.map((p) => p.value), text, hoverinfo: "text", marker, showlegend: false };
    }
    return { type: "scatter", mode: "markers", x: m.map((p) => p.location[0]), y: m.map((p) => p.location[1]), text,
      hoverinfo: "text", marker, showlegend: false };
  }

  function minimaTrace(sf, three) {
    const m = sf.minima || [];
    if (!m.length) return null;
    const text = m.map((p) => `${p.kind} f=${fmt(p.value)}`);
    const marker = { symbol: "star", size: three ? 5 : 14, color: "#ffffff", line: { color: "#111", width: 1.5 } };
    if (sf.dim === 1) {
      return { type: "scatter", mode: "markers", x: m.map((p) => p.location[0]), y: m.map((p) => p.value), text,
        hoverinfo: "text", marker, name: "minima", showlegend: false };
    }
    if (three) {
      return { type: "scatter3d", mode: "markers", x: m.map((p) => p.location[0]), y: m.map((p) => p.location[1]),
        z: m.map((p) => p.value), text, hoverinfo: "text", marker: { ...marker, symbol: "diamond" }, name: "minima", showlegend: false };
    }
    return { type: "scatter", mode: "markers", x: m.map((p) => p.location[0]), y: m.map((p) => p.location[1]), text,
      hoverinfo: "text", marker, name: "minima", showlegend: false };
  }

  let plotKind = null; // "contour" | "curve" | "surface"
  const plotDiv = () => $(plotKind === "surface" ? "plot3d" : "plot");  // the div on show
  // The 3-D figure: a lighter mesh of the surface, its critical points and every run's whole path.
  function surfaceFigure(sf, gd) {
    const stride = Math.max(1, Math.ceil(sf.x.length / 64)); // a lighter mesh for WebGL
    const pick = (arr) => arr.filter((_, i) => i % stride === 0);
    const small = { ...sf, x: pick(sf.x), y: pick(sf.y), z: pick(sf.z).map(pick) };
    const zt = zTransform(small);
    const traces = [{ type: "surface", x: small.x, y: small.y, z: small.z, surfacecolor: zt.z, colorscale: "Viridis",
      showscale: false, opacity: 1, hovertemplate: "x=%{x:.3g}<br>y=%{y:.3g}<br>f=%{z:.4g}<extra></extra>" }];
    for (const t of [minimaTrace(sf, true), criticalTrace(sf, true)]) if (t) traces.push(t);
    for (const r of (D.runs ? D.runs.runs : [])) {
      // the whole path, drawn once: a frame moves only the balls (no WebGL redraw)
      traces.push({ type: "scatter3d", mode: "lines", x: r.trajectory.map((q) => q[0]), y: r.trajectory.map((q) => q[1]),
        z: r.loss, line: { color: r.color, width: 5 }, hoverinfo: "skip", showlegend: false });
    }
    const layout = { margin: { l: 0, r: 0, t: 0, b: 0 }, scene: { xaxis: { title: { text: "x" } }, yaxis: { title: { text: "y" } },
      zaxis: { title: { text: "f" } }, camera: gd._fullLayout && gd._fullLayout.scene ? gd._fullLayout.scene.camera : undefined },
      paper_bgcolor: "#ffffff", uirevision: JSON.stringify([D.surfaceKey, "surface"]) };
    return [traces, layout];
  }
  const PLOT_CONFIG = { displaylogo: false, responsive: true, showSendToCloud: false, showEditInChartStudio: false,
    modeBarButtonsToRemove: ["toImage", "select2d", "lasso2d", "sendDataToCloud"] };
  // While the page is idle in 2-D, the 3-D scene is built in its hidden div (once per surface), so
  // that the switch only shows it.
  function prebuild3d() {
    const sf = D.surface;
    if (S.view3d || !PL.full || !sf || sf.dim !== 2 || D.built3d === D.surfaceKey) return;
    if (A.playing || G.requests > 0) {  // a long task: never in the middle of an animation or a request
      setTimeout(() => (window.requestIdleCallback || setTimeout)(prebuild3d), 1000);
      return;
    }
    const gd = $("plot3d");
    const [traces, layout] = surfaceFigure(sf, gd);
    plotWith(PL.full, gd, traces, layout, PLOT_CONFIG);
    hookOnce(gd, hookPlot);
    D.built3d = D.surfaceKey;
  }
  function drawPlot() {
    const sf = D.surface;
    if (!sf || !PL.base) return;
    const three = S.view3d && sf.dim === 2;
    if (three && !PL.full) { await3d(); return; } // the 2-D picture stays until the full bundle is here
    const gd = $(three ? "plot3d" : "plot");
    const P = three ? PL.full : PL.base;
    const margin = { l: 48, r: 12, t: 10, b: 40 };
    let traces, layout;
    if (sf.dim === 1) {
      traces = [{ type: "scatter", mode: "lines", x: sf.x, y: sf.z, line: { color: "#333", width: 2 }, name: "f",
        hovertemplate: "x=%{x:.4g}<br>f=%{y:.4g}<extra></extra>", showlegend: false }];
      for (const t of [minimaTrace(sf, false), criticalTrace(sf, false)]) if (t) traces.push(t);
      const ys = sf.z.filter((v) => v !== null);
      const lo = minOf(ys), hi = maxOf(ys), pad = 0.06 * (hi - lo || 1);
      layout = { margin, xaxis: { title: { text: "x" }, range: sf.domain[0], zeroline: false },
        yaxis: { title: { text: "f(x)" }, range: [lo - pad, hi + pad] }, hovermode: "x", dragmode: false,
        plot_bgcolor: "#fbfbfd" };
      plotKind = "curve";
    } else if (!three) {
      const zt = zTransform(sf);
      D.zt = zt;
      traces = [{
        type: "contour", x: sf.x, y: sf.y, z: zt.z, customdata: sf.z, colorscale: "Viridis", reversescale: false,
        ncontours: 28, contours: { coloring: "fill", showlines: true }, line: { width: 0.5, color: "rgba(255,255,255,0.35)" },
        colorbar: { thickness: 10, title: { text: zt.log ? "f − min" : "f", side: "right" },
          ...(zt.log ? { tickvals: zt.tickvals, ticktext: zt.ticktext } : {}) },
        hovertemplate: "x=%{x:.4g}<br>y=%{y:.4g}<br>f=%{customdata:.4g}<extra></extra>", connectgaps: false,
      }];
      for (const t of [minimaTrace(sf, false), criticalTrace(sf, false)]) if (t) traces.push(t);
      layout = { margin, xaxis: { title: { text: "x" }, range: sf.domain[0], constrain: "domain" },
        yaxis: { title: { text: "y" }, range: sf.domain[1] }, dragmode: false, hovermode: "closest" };
      plotKind = "contour";
    } else {
      [traces, layout] = surfaceFigure(sf, gd);
      plotKind = "surface";
      D.built3d = D.surfaceKey;
    }
    layout.paper_bgcolor = "#ffffff";
    layout.uirevision = JSON.stringify([D.surfaceKey, plotKind]);
    $("plot-wrap").classList.toggle("three", three);
    $("overlay").hidden = false;  // in 3-D it carries the balls, projected with the scene's camera
    plotWith(P, gd, traces, layout, PLOT_CONFIG);
    hookOnce(gd, hookPlot);
    frame(true);
  }

  // map data → overlay pixels using the plot's axes (2-D contour and 1-D curve)
  function axes() {
    const fl = $("plot")._fullLayout;
    if (!fl || !fl.xaxis || !fl.yaxis || plotKind === "surface") return null;
    const xa = fl.xaxis, ya = fl.yaxis;
    return {
      x: (v) => xa._offset + xa.l2p(v), y: (v) => ya._offset + ya.l2p(v),
      ix: (p) => xa.p2l(p - xa._offset), iy: (p) => ya.p2l(p - ya._offset),
      box: [xa._offset, ya._offset, xa._length, ya._length],
    };
  }

  function sizeCanvas(canvas, host) {
    const dpr = window.devicePixelRatio || 1;
    const w = host.clientWidth, h = host.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
      canvas.style.width = w + "px"; canvas.style.height = h + "px";
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return ctx;
  }

  const clampPx = (v) => Math.max(-1e4, Math.min(1e4, v));
  function pointOf(r, i) {
    const p = r.trajectory[i];
    return dim() === 1 ? [p[0], r.loss[i]] : p;
  }

  function drawOverlay(k, frac) {
    const canvas = $("overlay");
    const ctx = sizeCanvas(canvas, $("plot"));
    const ax = axes();
    if (!ax) return;
    ctx.save();
    ctx.beginPath();
    ctx.rect(...ax.box);
    ctx.clip();
    const runs = D.runs ? D.runs.runs : [];
    G.balls = [];
    G.arrows = [];
    const balls = [];
    runs.forEach((r, ri) => {
      const n = r.trajectory.length;
      if (!n) return;
      const px = (i) => { const p = pointOf(r, i); return [clampPx(ax.x(p[0])), clampPx(ax.y(p[1]))]; };
      // long paths are drawn through every stride-th point (a screen cannot show more)
      const stride = Math.max(1, Math.floor(n / 1500));
      const polyline = (last) => {
        ctx.beginPath();
        let [x, y] = px(0);
        ctx.moveTo(x, y);
        for (let i = stride; i < last; i += stride) { [x, y] = px(i); ctx.lineTo(x, y); }
        if (last > 0) { [x, y] = px(last); ctx.lineTo(x, y); }
        ctx.stroke();
      };
      // whole path, faint
      ctx.lineWidth = 1.2;
      ctx.strokeStyle = r.color + "55";
      polyline(n - 1);
      const kk = Math.min(k, n - 1);
      // travelled path
      ctx.lineWidth = 1.6;
      ctx.strokeStyle = r.color + "aa";
      polyline(kk);
      // fading trail
      ctx.lineWidth = 3;
      for (let i = Math.max(1, kk - TRAIL + 1); i <= kk; i++) {
        const a = 1 - (kk - i) / TRAIL;
        ctx.strokeStyle = r.color;
        ctx.globalAlpha = a;
        ctx.beginPath();
        const [x0, y0] = px(i - 1), [x1, y1] = px(i);
        ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
      }
      ctx.globalAlpha = 1;
      // the ball (interpolated between steps)
      let [bx, by] = px(kk);
      if (kk < n - 1 && frac > 0) {
        const [nx, ny] = px(kk + 1);
        bx += (nx - bx) * frac; by += (ny - by) * frac;
      }
      const [bx0, by0, bw, bh] = ax.box; // a ball that left the picture waits on its edge
      bx = Math.min(Math.max(bx, bx0 + 4), bx0 + bw - 4);
      by = Math.min(Math.max(by, by0 + 4), by0 + bh - 4);
      const stopped = kk >= n - 1 && k >= r.stopped_at;
      balls.push({ x: bx, y: by, crossed: stopped && r.status === "diverged", color: r.color, run: ri });
      if (S.arrows && kk < n - 1) drawArrows(ctx, ax, r, kk);
    });
    drawBalls(ctx, balls);
    G.balls = balls.map(({ x, y, crossed, radius }) => ({ x, y, crossed, radius }));
    // the start point
    const s = currentStart();
    if (s) {
      const p = dim() === 1 ? [s[0], startValue()] : s;
      if (p[1] !== null && p[1] !== undefined) {
        const x = ax.x(p[0]), y = ax.y(p[1]);
        ctx.lineWidth = 2; ctx.strokeStyle = "#111"; ctx.beginPath(); ctx.arc(x, y, 9, 0, 2 * Math.PI); ctx.stroke();
        ctx.lineWidth = 1; ctx.strokeStyle = "#fff"; ctx.beginPath(); ctx.arc(x, y, 10.5, 0, 2 * Math.PI); ctx.stroke();
      }
    }
    ctx.restore();
  }
  // Balls where several runs coincide (the same start, or runs that met) are drawn as concentric
  // rings, the first run outermost, so that every run stays visible.
  const BALL = 8, RING = 4;
  function drawBalls(ctx, balls) {
    const groups = [];
    for (const b of balls) {
      const g = groups.find((gr) => Math.hypot(gr[0].x - b.x, gr[0].y - b.y) < 3);
      if (g) g.push(b); else groups.push([b]);
    }
    for (const g of groups) {
      g.forEach((b, j) => { b.radius = BALL + RING * (g.length - 1 - j); });
      for (const b of g) {  // outermost first
        if (b.crossed) {
          const s = b.radius;
          ctx.strokeStyle = "#fff"; ctx.lineWidth = 6; crossAt(ctx, b.x, b.y, s);
          ctx.strokeStyle = b.color; ctx.lineWidth = 3.5; crossAt(ctx, b.x, b.y, s);
        } else {
          ctx.beginPath();
          ctx.arc(b.x, b.y, b.radius, 0, 2 * Math.PI);
          ctx.fillStyle = b.color; ctx.fill();
          ctx.lineWidth = 2; ctx.strokeStyle = "#ffffff"; ctx.stroke();
        }
      }
    }
  }

  // Arrows at a run's ball k, in data units (comparable with each other): the step it takes,
  // x_{k+1} − x_k; −η_k∇f(x_k), the step plain gradient descent would take at that rate; and for
  // heavy-ball momentum (torch's sgd with μ > 0 and no dampening, or the seeds' momentum form) the
  // momentum's share μ(x_k − x_{k−1}), which with −η∇f makes up the step under a constant rate.
  const ARROW_MAX_PX = 140;
  function arrowParts(r, k) {
    const x = r.trajectory[k], next = r.trajectory[k + 1];
    const parts = [{ kind: "step", v: next.map((c, j) => c - x[j]), color: r.color }];
    const lr = r.lr && r.lr[k];
    if (r.grad && r.grad[k] && lr != null) parts.push({ kind: "gradient", v: r.grad[k].map((g) => -lr * g), color: "#222" });
    const hp = r.hyperparams || {};
    const mu = r.optimizer === "momentum" ? hp.momentum
      : (r.optimizer === "sgd" && !hp.nesterov && !(hp.dampening > 0)) ? hp.momentum : 0;
    if (mu > 0 && k > 0) {
      const prev = r.trajectory[k - 1];
      parts.push({ kind: "velocity", v: x.map((c, j) => mu * (c - prev[j])), color: "#8e44ad" });
    }
    return parts;
  }
  function drawArrows(ctx, ax, r, k) {
    const x = r.trajectory[k];
    if (x.length !== 2) return;
    const parts = arrowParts(r, k);
    const px = (p) => [ax.x(p[0]), ax.y(p[1])];
    const [x0, y0] = px(x);
    const ends = parts.map((p) => px([x[0] + p.v[0], x[1] + p.v[1]]));
    const longest = Math.max(...ends.map(([ex, ey]) => Math.hypot(ex - x0, ey - y0)));
    if (!Number.isFinite(longest) || longest === 0) return;
    const scale = Math.min(1, ARROW_MAX_PX / longest);  // one factor for all: lengths stay comparable
    parts.forEach((p, i) => {
      const ex = x0 + (ends[i][0] - x0) * scale, ey = y0 + (ends[i][1] - y0) * scale;
      if (Math.hypot(ex - x0, ey - y0) < 2) return;
      ctx.save();
      ctx.strokeStyle = p.color; ctx.fillStyle = p.color;
      ctx.lineWidth = p.kind === "step" ? 3 : 2;
      if (p.kind === "velocity") ctx.setLineDash([5, 3]);
      ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(ex, ey); ctx.stroke();
      ctx.setLineDash([]);
      const a = Math.atan2(ey - y0, ex - x0), h = 9;
      ctx.beginPath(); ctx.moveTo(ex, ey);
      ctx.lineTo(ex - h * Math.cos(a - 0.4), ey - h * Math.sin(a - 0.4));
      ctx.lineTo(ex - h * Math.cos(a + 0.4), ey - h * Math.sin(a + 0.4));
      ctx.closePath(); ctx.fill();
      ctx.restore();
    });
    G.arrows.push({ run: r.index, parts: parts.map((p) => p.kind) });
  }
  function startValue() {
    const r = D.runs && D.runs.runs[0];
    return r && r.loss.length ? r.loss[0] : null;
  }
  function crossAt(ctx, x, y, s) {
    ctx.beginPath(); ctx.moveTo(x - s, y - s); ctx.lineTo(x + s, y + s); ctx.moveTo(x + s, y - s); ctx.lineTo(x - s, y + s); ctx.stroke();
  }

  // The balls in 3-D are drawn on the 2-D overlay, projected with the scene's own camera (its model,
  // view and projection matrices over the data scaled as the scene scales it): a frame costs a few
  // canvas arcs, and the WebGL scene (surface and paths, drawn once) is never redrawn while playing.
  function project3d(sc, rect, x, y, z) {
    const cp = sc.glplot.cameraParams, ds = sc.dataScale;
    let v = [x * ds[0], y * ds[1], z * ds[2], 1];
    for (const m of [cp.model, cp.view, cp.projection]) {  // column-major 4×4
      v = [0, 1, 2, 3].map((r) => m[r] * v[0] + m[4 + r] * v[1] + m[8 + r] * v[2] + m[12 + r] * v[3]);
    }
    if (!(v[3] > 0)) return null;  // behind the camera
    return [rect.left + (v[0] / v[3] + 1) / 2 * rect.width, rect.top + (1 - v[1] / v[3]) / 2 * rect.height];
  }
  function draw3d(k) {
    const gd = $("plot3d");
    const canvas = $("overlay");
    const ctx = sizeCanvas(canvas, $("plot"));
    G.balls = [];
    const sc = gd._fullLayout && gd._fullLayout.scene && gd._fullLayout.scene._scene;
    if (plotKind !== "surface" || !D.runs || !sc || !sc.glplot || !sc.glplot.cameraParams) return;
    const host = gd.getBoundingClientRect(), glr = sc.glplot.canvas.getBoundingClientRect();
    const rect = { left: glr.left - host.left, top: glr.top - host.top, width: glr.width, height: glr.height };
    const balls = [];
    D.runs.runs.forEach((r, ri) => {
      const kk = Math.min(k, r.trajectory.length - 1);
      const q = r.trajectory[kk], z = r.loss[kk];
      if (!q || z == null) return;
      const p = project3d(sc, rect, q[0], q[1], z);
      if (!p) return;
      const crossed = kk >= r.trajectory.length - 1 && k >= r.stopped_at && r.status === "diverged";
      balls.push({ x: p[0], y: p[1], crossed, color: r.color, run: ri });
    });
    drawBalls(ctx, balls);
    G.balls = balls.map(({ x, y, crossed, radius }) => ({ x, y, crossed, radius }));
  }

  // ---------------------------------------------------------------------------------------------
  // drawing: the loss chart and the schedule preview
  // ---------------------------------------------------------------------------------------------
  function lossMode() {
    // what the y axis shows: f − f* (known minimum), f (all positive) or f on a linear axis
    const sf = D.surface;
    const runs = D.runs ? D.runs.runs : [];
    const mins = (sf && sf.minima || []).filter((m) => m.kind.startsWith("global") && m.value !== null);
    if (mins.length) {
      const fstar = Math.min(...mins.map((m) => m.value));
      const ok = runs.every((r) => r.loss.every((v) => v === null || v >= fstar - 1e-9 * (1 + Math.abs(fstar))));
      if (ok) return { log: true, shift: fstar, title: fstar === 0 ? "f (log)" : "f − f* (log)" };
    }
    const allPos = runs.every((r) => r.loss.every((v) => v === null || v > 0));
    if (allPos) return { log: true, shift: 0, title: "f (log)" };
    // values of both signs (e.g. unbounded below): a linear axis over the plotted region's values
    let lo = sf && sf.zmin !== null ? sf.zmin : Infinity, hi = -Infinity;
    for (const r of runs) if (r.loss.length && r.loss[0] !== null) { hi = Math.max(hi, r.loss[0]); lo = Math.min(lo, r.loss[0]); }
    const range = Number.isFinite(lo) && Number.isFinite(hi) && hi > lo ? [lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)] : undefined;
    return { log: false, shift: 0, title: "f", range };
  }
  function lossY(mode, v) {
    if (v === null) return null;
    const y = v - mode.shift;
    return mode.log && !(y > 0) ? null : y;
  }
  function drawLoss() {
    const gd = $("loss");
    if (!PL.base || !D.runs) return;
    const mode = lossMode();
    D.lossMode = mode;
    const traces = D.runs.runs.map((r) => ({
      type: "scatter", mode: "lines", x: r.loss.map((_, i) => i), y: r.loss.map((v) => lossY(mode, v)),
      line: { color: r.color, width: 1.8 }, name: r.label, hovertemplate: `${r.label}<br>step %{x}<br>%{y:.4g}<extra></extra>`,
    }));
    let dtick;
    if (mode.log) { // whole decades (as many as fit, ~20 px apart), unless the curves span less than two
      const ys = traces.flatMap((t) => t.y.filter((v) => v !== null && v > 0));
      const span = ys.length ? Math.log10(maxOf(ys)) - Math.log10(minOf(ys)) : 0;
      const fit = Math.max(2, Math.floor((gd.clientHeight - 42) / 20));
      dtick = span >= 2 ? Math.max(1, Math.ceil(span / fit)) : "D2";
    }
    const layout = { margin: { l: 56, r: 12, t: 8, b: 34 }, showlegend: false,
      xaxis: { title: { text: "step" }, range: [0, Math.max(1, A.maxLen - 1)] },
      yaxis: { title: { text: mode.title }, type: mode.log ? "log" : "linear", exponentformat: "power",
        ...(mode.range ? { range: mode.range } : {}), ...(dtick ? { dtick } : {}) },
      paper_bgcolor: "#ffffff", plot_bgcolor: "#fbfbfd", dragmode: false, hovermode: "closest" };
    plotWith(PL.base, gd, traces, layout, { displaylogo: false, responsive: true, displayModeBar: false });
    D.lossDrawn = { runs: D.runs, surface: D.surface };
    hookOnce(gd, (g) => g.on("plotly_afterplot", () => drawLossCursor(Math.floor(A.t))));
    drawLossCursor(Math.floor(A.t));
  }
  function drawLossCursor(k) {
    const gd = $("loss");
    const canvas = $("loss-overlay");
    const ctx = sizeCanvas(canvas, gd);
    const fl = gd._fullLayout;
    if (!fl || !fl.xaxis || !D.runs || !D.lossMode) return;
    const xa = fl.xaxis, ya = fl.yaxis;
    const x = xa._offset + xa.c2p(k);
    ctx.strokeStyle = "#333"; ctx.lineWidth = 1; ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(x, ya._offset); ctx.lineTo(x, ya._offset + ya._length); ctx.stroke();
    ctx.setLineDash([]);
    for (const r of D.runs.runs) {
      const kk = Math.min(k, r.loss.length - 1);
      const y = lossY(D.lossMode, r.loss[kk]);
      if (y === null) continue;
      const py = ya._offset + ya.c2p(y);
      if (!Number.isFinite(py)) continue;
      ctx.beginPath(); ctx.arc(xa._offset + xa.c2p(kk), Math.max(ya._offset, Math.min(ya._offset + ya._length, py)), 4, 0, 2 * Math.PI);
      ctx.fillStyle = r.color; ctx.fill();
    }
  }
  function drawSchedulePreview() {
    const gd = $("schedule-preview");
    if (!PL.base || !D.preview) return;
    const traces = D.preview.curves.map((c, i) => ({
      type: "scatter", mode: "lines", x: D.preview.steps, y: c.lr, line: { color: (S.opts[i] || {}).color || "#333", width: 1.6 },
      hovertemplate: "step %{x}<br>lr %{y:.3g}<extra></extra>",
    }));
    const vals = D.preview.curves.flatMap((c) => c.lr.filter((v) => v !== null));
    const lo = minOf(vals), hi = maxOf(vals);
    const log = lo > 0 && hi / lo > 20;
    plotWith(PL.base, gd, traces, {
      margin: { l: 52, r: 8, t: 6, b: 28 }, showlegend: false, paper_bgcolor: "#ffffff",
      xaxis: { title: { text: "step" } },
      yaxis: { title: { text: "lr" }, type: log ? "log" : "linear", exponentformat: "power", ...(log ? { dtick: 1 } : { rangemode: "tozero" }) },
      dragmode: false,
    }, { displayModeBar: false, responsive: true, staticPlot: false });
    D.previewDrawn = D.preview;
  }

  // ---------------------------------------------------------------------------------------------
  // convergence rates on the quadratic (Distill's "Why Momentum Really Works")
  // ---------------------------------------------------------------------------------------------
  // The optimizer the rate panel speaks for: the first heavy-ball one (sgd with momentum and no
  // Nesterov, or the seeds' momentum form), else the first sgd; its lr and momentum.
  function rateSubject() {
    const i = S.opts.findIndex((o) => (o.name === "sgd" && !o.hp.nesterov) || o.name === "momentum");
    if (i < 0) return null;
    const o = S.opts[i];
    const lr = lrOf(o);
    const mu = o.hp.momentum ?? (optMeta(o.name).hyperparams.find((h) => h.name === "momentum") || {}).default ?? 0;
    return { index: i, lr, momentum: mu };
  }
  function quadraticParams() {
    const lm = landscapeMeta();
    const get = (name) => S.params[name] ?? lm.params.find((h) => h.name === name).default;
    return { condition: get("condition"), angle: get("angle") };
  }
  const ratesOn = () => S.landscape === "quadratic" && dim() === 2;
  const fetchRates = debounce(updateRates, 120);
  function requestRates() {
    $("rates-panel").hidden = !ratesOn();  // at once: the panel never outlives its landscape
    if (ratesOn()) fetchRates();
  }
  async function updateRates() {
    if (!ratesOn()) return;
    const q = quadraticParams();
    const subj = rateSubject();
    const text = $("rates-text");
    try {
      const lr = subj ? subj.lr : lrOf(S.opts[0]);
      const rates = await api("/api/rates", { ...q, lr, momentum: subj ? Math.min(subj.momentum, 0.9999) : 0 }, "rates");
      if (!rates) return;
      D.rates = rates;
      const measured = (D.runs ? D.runs.runs : []).map((r, i) =>
        el("tr", {}, el("th", { text: `${S.opts[i] ? S.opts[i].name : r.optimizer} (measured)` }),
          el("td", { text: r.measured_rate == null ? "—" : fmt(r.measured_rate, 4) })));
      const row = (name, v) => el("tr", {}, el("th", { text: name }), el("td", { text: v }));
      const o = rates.optimal;
      text.innerHTML = "";
      text.append(el("table", {},
        row("eigenvalues λ", rates.eigenvalues.map((v) => fmt(v, 3)).join(", ") + ` (κ = ${fmt(rates.condition, 4)})`),
        row(`GD at lr ${fmt(lr, 3)}: max |1 − ηλ|`, fmt(rates.gd_rate, 4)),
        ...(subj ? [row(`heavy ball at lr ${fmt(lr, 3)}, β ${fmt(subj.momentum, 3)}`, fmt(rates.momentum_rate, 4))] : []),
        row("optimal GD: lr 2/(λmin+λmax)", `${fmt(o.gd_lr, 4)} → rate ${fmt(o.gd_rate, 4)}`),
        row("optimal heavy ball: β ((√κ−1)/(√κ+1))²", `${fmt(o.momentum, 4)}, lr ${fmt(o.momentum_lr, 4)} → rate ${fmt(o.momentum_rate, 4)}`),
        ...measured));
      await drawRateMap(q, subj, o);
    } catch (err) {
      text.textContent = err.message;
    }
  }
  async function drawRateMap(q, subj, optimal) {
    const gd = $("ratemap");
    if (!PL.base) await plotlyReady;  // the first runs can be back before Plotly.js
    // lr from 10⁻⁴ of to a little past heavy ball's largest stable rate, 2(1+β)/λmax < 4/λmax
    const lrHi = 4.4 / maxOf(D.rates.eigenvalues);
    const key = JSON.stringify([q, lrHi]);
    if (D.ratemapKey !== key) {
      const map = await api("/api/ratemap", { ...q, lr: [lrHi / 1e4, lrHi], momentum: [0, 0.99], n: 48, steps: 200 }, "ratemap");
      if (!map) return;
      D.ratemap = map;
      D.ratemapKey = key;
    }
    const map = D.ratemap;
    const traces = [{ type: "heatmap", x: map.lr, y: map.momentum, z: map.measured, zmin: 0, zmax: 1, colorscale: "Viridis",
      reversescale: true, colorbar: { thickness: 8, title: { text: "rate" } },
      hovertemplate: "lr %{x:.3g}<br>β %{y:.3g}<br>rate %{z:.3f}<extra></extra>" }];
    if (subj) traces.push({ type: "scatter", mode: "markers", x: [subj.lr], y: [subj.momentum], hoverinfo: "skip",
      marker: { symbol: "x-thin", size: 14, line: { color: "#e74c3c", width: 3 } }, showlegend: false });
    traces.push({ type: "scatter", mode: "markers", x: [optimal.momentum_lr], y: [optimal.momentum], hoverinfo: "skip",
      marker: { symbol: "star", size: 12, color: "#fff", line: { color: "#111", width: 1 } }, showlegend: false });
    plotWith(PL.base, gd, traces, {
      margin: { l: 48, r: 8, t: 6, b: 32 }, showlegend: false, paper_bgcolor: "#ffffff",
      xaxis: { title: { text: "lr" }, type: "log", exponentformat: "power" }, yaxis: { title: { text: "momentum β" } },
      dragmode: false,
    }, { displayModeBar: false, responsive: true });
    hookOnce(gd, (g) => g.on("plotly_click", (ev) => {
      const p = ev.points && ev.points[0];
      const s = rateSubject();
      if (!p || !s) return;
      const o = S.opts[s.index];
      o.hp.lr = round3(p.x);
      o.hp.momentum = round3(p.y);
      S.lesson = null;
      renderOptimizers();
      requestRun();
    }));
  }

  // ---------------------------------------------------------------------------------------------
  // animation
  // ---------------------------------------------------------------------------------------------
  let lastDrawnK = -1;
  function frame(force = false) {
    const k = Math.floor(A.t);
    const frac = A.t - k;
    if (plotKind === "surface") {
      draw3d(k);
    } else {
      drawOverlay(k, A.playing ? frac : 0);
    }
    if (force || k !== lastDrawnK) {
      drawLossCursor(k);
      $("scrub").value = String(k);
      $("step-out").textContent = `${k}`;
      updateStatuses();
      lastDrawnK = k;
    }
  }
  function tick(ts) {
    if (!A.playing) return;
    const dt = A.last ? Math.min((ts - A.last) / 1000, 0.25) : 0;
    A.last = ts;
    A.t += dt * A.speed;
    if (A.t >= A.maxLen - 1) { A.t = A.maxLen - 1; frame(true); pause(); return; }
    frame();
    A.frames.push(ts);
    while (A.frames.length && ts - A.frames[0] > 1000) A.frames.shift();
    if (A.frames.length > 1) A.fps = (A.frames.length - 1) / ((ts - A.frames[0]) / 1000);
    window.gdlabFps = A.fps;
    writeHash();
    requestAnimationFrame(tick);
  }
  function play() {
    if (A.playing || !D.runs) return;
    if (A.t >= A.maxLen - 1) A.t = 0;
    A.playing = true; A.last = 0; A.frames = [];
    $("play").textContent = "❚❚ Pause";
    $("play").setAttribute("aria-pressed", "true");
    requestAnimationFrame(tick);
  }
  function pause() {
    if (!A.playing) return;
    A.playing = false;
    $("play").textContent = "▶ Play";
    $("play").setAttribute("aria-pressed", "false");
    frame(true);
    writeHash(true);
  }
  function togglePlay() { if (A.playing) pause(); else play(); }
  function stepBy(n) {
    pause();
    A.t = Math.max(0, Math.min(A.maxLen - 1, Math.floor(A.t) + n));
    frame(true);
    writeHash(true);
  }
  function resetAnim() { pause(); A.t = 0; frame(true); writeHash(true); }

  // ---------------------------------------------------------------------------------------------
  // presets, export, sharing
  // ---------------------------------------------------------------------------------------------
  async function applyPreset(p) {
    const st = clone(p.state);
    S.landscape = st.landscape || null;
    S.expr = st.expr || "";
    S.params = st.params || {};
    S.opts = st.optimizers.map((o, i) => ({ name: o.name, hp: o.hyperparams || {}, color: o.color || PALETTE[i % 12],
      noise: validNoise(o.noise) }));
    S.start = st.start || null;
    S.steps = st.steps || 200;
    S.tol = st.tol ?? 1e-6;
    S.schedule = st.schedule || null;
    if (st.view3d !== undefined) S.view3d = !!st.view3d;  // a lesson keeps the view the user chose
    S.lesson = p.id;
    A.t = 0;
    if (!S.landscape) $("expr").value = S.expr;
    renderOptimizers();
    renderSchedule();
    renderLesson();
    await afterProblemChange();
  }
  // A lesson chosen on a narrow screen (one column, lessons below the picture) brings the picture
  // into view; on a wide one the panels return to their top: the lesson's text and its optimizers.
  async function chooseLesson(p) {
    const narrow = window.matchMedia("(max-width: 900px)").matches;
    const done = applyPreset(p);
    if (narrow) $("plot").scrollIntoView({ block: "start" });
    else document.querySelector(".panels").scrollTop = 0;  // the lesson's text and its optimizers, on top
    await done;
  }
  function renderLesson() {
    const p = META.presets.find((x) => x.id === S.lesson);
    $("lesson-text").textContent = p ? p.text : "";
    $("lesson-title").textContent = p ? `Lesson: ${p.title}` : "";
    $("lesson-now").hidden = !p;
    document.querySelectorAll("#presets button").forEach((b) => b.setAttribute("aria-pressed", String(!!p && b.dataset.preset === p.id)));
  }
  async function copyLink() {
    writeHash(true);
    const url = location.href;
    try {
      await navigator.clipboard.writeText(url);
      flash("Link copied");
    } catch (err) {
      window.prompt("Copy this link:", url);
    }
  }
  function flash(msg) {
    const s = $("status-line");
    s.textContent = msg;
    setTimeout(() => { if (s.textContent === msg) s.textContent = ""; }, 2000);
  }
  function download(name, url) {
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
  }
  async function exportPNG() {
    const gd = plotDiv();
    const P = plotlyOf(gd);
    if (!P || !gd.data) return;
    const w = gd.clientWidth, h = gd.clientHeight;
    const url = await P.toImage(gd, { format: "png", width: w, height: h, scale: 2 });
    const img = new Image();
    await new Promise((res, rej) => { img.onload = res; img.onerror = rej; img.src = url; });
    const c = document.createElement("canvas");
    c.width = w * 2; c.height = h * 2;
    const ctx = c.getContext("2d");
    ctx.drawImage(img, 0, 0, c.width, c.height);
    ctx.drawImage($("overlay"), 0, 0, c.width, c.height);
    drawLegend(ctx, 2);
    download("gdlab.png", c.toDataURL("image/png"));
  }
  // The runs' legend (colour, optimizer, its status) in the top-left corner of an exported image.
  function legendEntries() {
    return S.opts.map((o, i) => {
      const r = D.runs && D.runs.runs[i];
      const lr = lrOf(o);
      return { color: o.color, text: `${o.name} (lr ${fmt(lr)})${r ? " · " + statusText(r, Math.floor(A.t)) : ""}` };
    });
  }
  function drawLegend(ctx, scale) {
    const entries = legendEntries();
    if (!entries.length) return;
    ctx.save();
    ctx.scale(scale, scale);
    ctx.font = "12px system-ui, sans-serif";
    const width = Math.max(...entries.map((e) => ctx.measureText(e.text).width)) + 34;
    const x0 = 60, y0 = 12, lh = 18;
    ctx.fillStyle = "rgba(255, 255, 255, 0.88)";
    ctx.strokeStyle = "#888";
    ctx.fillRect(x0, y0, width, entries.length * lh + 8);
    ctx.strokeRect(x0, y0, width, entries.length * lh + 8);
    entries.forEach((e, k) => {
      const y = y0 + 4 + k * lh + lh / 2;
      ctx.fillStyle = e.color;
      ctx.beginPath();
      ctx.arc(x0 + 14, y, 5, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = "#111";
      ctx.textBaseline = "middle";
      ctx.fillText(e.text, x0 + 26, y);
    });
    ctx.restore();
  }
  function exportJSON() {
    const payload = { gdlab: META.version, url: location.href, state: snapshot(), runs: D.runs, analysis: D.analysis };
    const blob = new Blob([JSON.stringify(payload, null, 1)], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    download("gdlab-runs.json", url);
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }
  function snapshot() {
    const opts = S.opts.map((o) => ({ ...o, noise: o.noise || null }));
    return clone({ landscape: S.landscape, expr: S.landscape ? "" : S.expr, params: S.params, opts,
      start: currentStart(), steps: S.steps, tol: S.tol, schedule: S.schedule, view3d: S.view3d, arrows: S.arrows,
      step: Math.floor(A.t) });
  }

  // click on the plot: set the start point
  function installClick() {
    const g3 = $("plot3d");
    let down3 = null;
    g3.addEventListener("pointerdown", (e) => { down3 = [e.clientX, e.clientY]; }, true);
    g3.addEventListener("click", (e) => {
      if (plotKind !== "surface" || !hovered3d) return;
      if (e.target.closest && e.target.closest(".modebar, .modebar-container")) return;
      if (down3 && Math.hypot(e.clientX - down3[0], e.clientY - down3[1]) > 4) return;  // a rotation
      setStart(hovered3d.slice());
    });
    const gd = $("plot");
    let down = null;
    gd.addEventListener("pointerdown", (e) => { down = [e.clientX, e.clientY]; }, true);
    gd.addEventListener("click", (e) => {
      if (plotKind === "surface") return;
      if (e.target.closest && e.target.closest(".modebar, .modebar-container")) return;
      if (down && Math.hypot(e.clientX - down[0], e.clientY - down[1]) > 4) return;  // the end of a pan or zoom
      const ax = axes();
      if (!ax) return;
      const rect = gd.getBoundingClientRect();
      const px = e.clientX - rect.left, py = e.clientY - rect.top;
      const [bx, by, bw, bh] = ax.box;
      if (px < bx || px > bx + bw || py < by || py > by + bh) return;
      const x = ax.ix(px), y = ax.iy(py);
      setStart(dim() === 1 ? [x] : [x, y]);
    });
  }
  // 3-D: the point of the surface under the mouse (Plotly's hover picking), which a click on the
  // scene that is not the end of a rotation makes the start. Plotly's own plotly_click on a surface
  // is not emitted reliably (not at all with software WebGL).
  let hovered3d = null;
  function hookPlot(gd) { // through hookOnce: once per Plotly instance (and per purge) of the plot
    gd.on("plotly_hover", (ev) => {
      const p = ev.points && ev.points[0];
      hovered3d = plotKind === "surface" && p && p.x != null && p.y != null ? [p.x, p.y] : null;
    });
    gd.on("plotly_unhover", () => { hovered3d = null; });
    gd.on("plotly_afterplot", () => frame(true));
    gd.on("plotly_relayouting", () => { if (plotKind === "surface") frame(true); });  // the camera turns
    gd.on("plotly_relayout", () => { if (plotKind === "surface") frame(true); });
  }

  // ---------------------------------------------------------------------------------------------
  // start
  // ---------------------------------------------------------------------------------------------
  // ---------------------------------------------------------------------------------------------
  // Plotly.js: two bundles, two instances
  // ---------------------------------------------------------------------------------------------
  // The page draws with Plotly's cartesian partial bundle (1.5 MB: contour, heatmap, scatter; quick
  // to compile) and fetches the full bundle (4.8 MB, with surface and scatter3d) only for the 3-D
  // view, or at once when the URL asks for 3-D. Each bundle is a separate Plotly instance: a div
  // drawn by one is purged by that one before the other draws it (plotWith), and the event hooks
  // live on the drawing instance's emitter, so they are installed again after a switch (hookOnce).
  const PREFETCH_3D_MS = 2000;  // after the page is ready: the first visit's own requests go first
  const BUNDLES = { cartesian: "/static/vendor/plotly-cartesian.min.js", full: "/static/plotly.min.js" };
  const PL = {
    base: null, // the instance for the 2-D plots (cartesian; full when the page opened in 3-D)
    full: null, // the full bundle, once loaded
    pending: {}, // bundle name → promise of its instance
    owner: new WeakMap(), // plot div → the instance that drew it
    names: new Map(), // instance → bundle name
  };
  function loadBundle(name) {
    if (!PL.pending[name]) {
      PL.pending[name] = new Promise((resolve, reject) => {
        const before = window.Plotly;
        const tag = document.createElement("script");
        tag.src = BUNDLES[name];
        tag.async = true;
        tag.onload = () => {
          const P = window.Plotly;
          if (before) window.Plotly = before; // window.Plotly stays the page's first instance
          if (!P || P === before) { reject(new Error(`Plotly.js (${name} bundle) did not load`)); return; }
          PL.names.set(P, name);
          if (name === "full") PL.full = P;
          resolve(P);
        };
        tag.onerror = () => {
          delete PL.pending[name];
          tag.remove();
          reject(new Error(`cannot load Plotly.js (${name} bundle) from the lab server`));
        };
        document.head.append(tag);
      });
    }
    return PL.pending[name];
  }
  const plotlyOf = (gd) => PL.owner.get(gd) || null;
  function plotWith(P, gd, traces, layout, config) {
    const prev = plotlyOf(gd);
    if (prev && prev !== P) prev.purge(gd); // the instance that drew the div takes it down
    PL.owner.set(gd, P);
    return P.react(gd, traces, layout, config);
  }
  function hookOnce(gd, install) {
    // gd.on belongs to the event emitter of the instance that drew gd; a purge, or another
    // instance's first plot, replaces it: install the hooks once per emitter
    if (!gd.on || gd._gdlabHooked === gd.on) return;
    gd._gdlabHooked = gd.on;
    install(gd);
  }
  let waiting3d = null;
  function await3d() {
    if (waiting3d) return;
    $("status-line").textContent = "loading the 3-D view…";
    waiting3d = loadBundle("full").then(() => {
      waiting3d = null;
      if ($("status-line").textContent === "loading the 3-D view…") $("status-line").textContent = "";
      drawPlot();
    }, (err) => {
      waiting3d = null;
      S.view3d = false;
      $("view3d").checked = false;
      showError(err.message);
      writeHash();
    });
  }
  // Start-up: the page's metadata (preloaded by index.html) and the bundle are requested at once.
  // The bundle compiles off the main thread while it streams in (the server sends it with a compile
  // hint), while the page builds its panels and asks for the first surface and runs.
  const metaReady = api("/api/meta");
  metaReady.catch(() => {}); // handled in main
  const plotlyReady = loadBundle(/(?:^#|&)v=3d(?:&|$)/.test(location.hash) ? "full" : "cartesian")
    .then((P) => { PL.base = P; mark("plotly"); });
  plotlyReady.catch(() => {}); // handled where awaited

  async function main() {
    window.addEventListener("error", (e) => G.errors.push(String(e.message)));
    try {
      META = await metaReady;
    } catch (err) {
      showError(err.message);
      return;
    }
    const fromUrl = decodeState(location.hash);
    if (!fromUrl) {
      const def = META.presets.find((p) => p.id === META.default_preset) || META.presets[0];
      const st = def.state;
      S.landscape = st.landscape || null; S.expr = st.expr || ""; S.params = st.params || {};
      S.opts = st.optimizers.map((o, i) => ({ name: o.name, hp: o.hyperparams || {}, color: o.color || PALETTE[i % 12] }));
      S.start = st.start || null; S.steps = st.steps || 200; S.schedule = st.schedule || null; S.lesson = def.id;
    }
    if (!S.opts.length) S.opts = [{ name: META.optimizers[0].name, hp: {}, color: PALETTE[0] }];
    const wantStep = S.step;
    // the first surface, run and analysis requests go out before the panels are built (their answers
    // are handled once this function awaits)
    const first = afterProblemChange();
    buildStatic();
    if (!S.landscape) $("expr").value = S.expr;
    installClick();
    renderOptimizers();
    renderSchedule();
    requestPreview.now();
    renderLesson();
    await first;
    await plotlyReady;
    mark("runs");
    // the answers that came in before Plotly.js was there are drawn now (the others already are)
    if (!D.lossDrawn || D.lossDrawn.runs !== D.runs || D.lossDrawn.surface !== D.surface) drawLoss();
    mark("loss");
    if (D.previewDrawn !== D.preview) drawSchedulePreview();
    mark("preview");
    A.t = Math.min(wantStep, A.maxLen - 1);
    frame(true);
    writeHash(true);
    G.ready = true;
    window.gdlabReadyAt = performance.now();
    document.body.dataset.ready = "1";
    pageReady();
    // the 3-D bundle, fetched and compiled once the page is idle, so that the first switch is quick
    const idle = window.requestIdleCallback || ((f) => setTimeout(f, 50));
    setTimeout(() => idle(() => { loadBundle("full").then(() => idle(prebuild3d, { timeout: 5000 })).catch(() => {}); },
      { timeout: 5000 }), PREFETCH_3D_MS);
  }

  window.gdlab = {
    get state() { return snapshot(); },
    get runs() { return D.runs; },
    get analysis() { return D.analysis; },
    get surface() { return D.surface; },
    get fps() { return A.fps; },
    get playing() { return A.playing; },
    get step() { return Math.floor(A.t); },
    get ready() { return G.ready; },
    get busy() { return G.requests > 0; },
    get errors() { return G.errors.slice(); },
    get lastRunMs() { return G.lastRunMs; },
    get marks() { return G.marks.slice(); },
    get balls() { return (G.balls || []).map((b) => ({ ...b })); },
    get arrows() { return (G.arrows || []).map((a) => ({ ...a })); },
    arrowParts(i, k) { const r = D.runs && D.runs.runs[i]; return r ? arrowParts(r, k) : null; },
    get view() { return plotKind; },
    get bundle() { return PL.names.get(plotlyOf(plotDiv())) || null; },
    get bundles() { return [...PL.names.values()]; }, // the Plotly.js bundles loaded so far
    play, pause, stepBy, resetAnim, setStart,
    setSpeed(v) { A.speed = v; showSpeed(); },
    toData(x, y) { const ax = axes(); return ax ? [ax.ix(x), ax.iy(y)] : null; },
    toPixel(x, y) { const ax = axes(); return ax ? [ax.x(x), ax.y(y)] : null; },
  };
  window.gdlabFps = 0;
  const start = () => main().catch((err) => { G.errors.push(String(err && err.stack || err)); showError(`the page failed to start: ${err.message}`); });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
