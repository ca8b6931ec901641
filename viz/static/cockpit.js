/* streetbrain cockpit: the live map, the dispatcher's board and the handler's phone view.
   Talks only to the server that served it (the API under /api/v1); deck.gl is served by it too. */
"use strict";

const T = {
  en: {title: "Street brain", signin_title: "Sign in", token: "Access token", signin: "Sign in", signout: "Sign out",
    token_hint: "The token is kept for this tab only.", board: "Board", feed: "Feed", kpis: "Targets",
    open_events: "open events", overdue: "overdue", event: "Event", scenario: "Scenario", state: "State", age: "Age",
    assignee: "Assignee", result: "Result", photo: "Photo", send_result: "Report result", history: "History",
    my_assignments: "My assignments", none: "Nothing assigned to you.", bad_token: "This token is not valid.",
    sign: "Sign", arrive: "On scene", escalate: "Escalate", reinforcement: "Ask reinforcement", verify: "Close",
    merge: "Merge into…", merge_into: "Merge into which event id?", reported: "reported", dispatched: "dispatched",
    signed: "signed", on_scene: "on scene", reinforcement_requested: "reinforcement asked", resolved: "resolved",
    closed: "closed", escalated: "escalated", consultation: "consultation", merged: "merged", false_alarm: "false alarm",
    respond: "signed ≤ 1 min", on_scene_kpi: "on scene ≤ 3 min", reinforced: "reinforced ≤ 5 min", tier: "Team",
    events: "events", members_busy: "members busy", waiting: "waiting", place: "Place", reported_at: "Reported",
    source: "Source", description: "Description", evidence: "Evidence", peacetime: "peacetime", wartime: "wartime",
    grid_worker: "grid worker", co_governance: "co-governance", enforcement: "enforcement",
    whatif: "What if", replay: "Replay", hours: "Hours ahead", replications: "Replications", change: "Change",
    brigade: "Co-governance brigade (people)", grid_workers: "Grid workers (people)", enforcers: "Enforcement officers",
    cameras: "City Eye cameras", max_reassign: "Reassignments before escalating",
    wartime_mode: "Wartime (60/180/300 s targets)", run_whatif: "Run the what-if",
    whatif_hint: "Run the next hours from now in the simulator, as is and with a change (same model, common random numbers); 95% intervals.",
    running: "Running…", as_is: "As is", proposed: "Proposed", difference: "Difference", kpi: "Figure",
    within_targets: "within own targets", wait_mean_s: "mean wait (s)", escalations: "escalations",
    max_backlog: "largest backlog", window: "Window", speed: "Speed", play: "Play", back_to_live: "Back to live",
    replaying: "Replaying", custom: "from … to …", from: "From (district time)", to: "To (district time)", replay_done: "Replay finished", records: "records", area_map: "Map: areas by the change in events within their targets (green better, red worse)",
    handler_token: "Phone token for", handler_token_hint: "Sign in on the handler's phone with this token (shown once):",
    area: "Area", shift: "Shift", day: "day shift", evening: "evening shift", night: "night shift",
    staffing: "Staffing plan", staffing_hint: "The fewest members per area and shift that meet the target, and the people that takes (simulated: minutes).",
    role: "Role", target: "Target share of events within 1/3/5 minutes", sim_days: "Days per simulation",
    run_staffing: "Plan the staffing", positions: "positions a day", people: "people", met: "met", not_met: "not met",
    curve: "Cost and service: people against the share within targets (95% intervals)"},
  zh: {title: "街道大脑", signin_title: "登录", token: "访问令牌", signin: "登录", signout: "退出",
    token_hint: "令牌只保存在本标签页。", board: "调度台", feed: "动态", kpis: "时效",
    open_events: "件在办", overdue: "件超时", event: "事件", scenario: "场景", state: "状态", age: "时长",
    assignee: "处置人", result: "处置结果", photo: "照片", send_result: "上报结果", history: "流转记录",
    my_assignments: "我的任务", none: "暂无派给你的任务。", bad_token: "令牌无效。",
    sign: "签收", arrive: "到场", escalate: "上报升级", reinforcement: "请求增援", verify: "办结",
    merge: "合并到…", merge_into: "合并到哪个事件编号？", reported: "已上报", dispatched: "已派遣", signed: "已签收",
    on_scene: "已到场", reinforcement_requested: "请求增援", resolved: "已处置", closed: "已办结", escalated: "已升级",
    consultation: "会商中", merged: "已合并", false_alarm: "误报", respond: "1分钟签收", on_scene_kpi: "3分钟到场",
    reinforced: "5分钟增援", tier: "层级", events: "事件", members_busy: "人员忙碌", waiting: "待派",
    place: "位置", reported_at: "上报时间", source: "来源", description: "描述", evidence: "证据",
    peacetime: "平时", wartime: "战时", grid_worker: "网格员", co_governance: "共治队", enforcement: "执法队",
    whatif: "推演", replay: "回放", hours: "推演时长（小时）", replications: "重复次数", change: "调整",
    brigade: "共治队人数", grid_workers: "网格员人数", enforcers: "执法队员人数", cameras: "城市之眼摄像头数",
    max_reassign: "升级前改派次数", wartime_mode: "战时（60/180/300秒时效）", run_whatif: "开始推演",
    whatif_hint: "从现在起在仿真中推演未来几小时：现状与调整后对比（同一模型、共同随机数），给出95%区间。",
    running: "推演中…", as_is: "现状", proposed: "调整后", difference: "差值", kpi: "指标",
    within_targets: "按场景时效办结", wait_mean_s: "平均等待（秒）", escalations: "升级次数", max_backlog: "最大积压",
    window: "时间段", speed: "速度", play: "播放", back_to_live: "回到实时", replaying: "回放中", custom: "自定义时段", from: "起（本地时间）", to: "止（本地时间）", replay_done: "回放结束",
    staffing: "排班测算", staffing_hint: "满足目标的各片区各班次最少人数，以及所需人员（仿真测算，需数分钟）。",
    role: "队伍", target: "1/3/5分钟达标比例目标", sim_days: "每次仿真天数", run_staffing: "开始测算",
    positions: "个岗位/天", people: "人", met: "达标", not_met: "未达标", curve: "成本与服务：人数与达标比例（95%区间）",
    handler_token: "生成手机令牌：", handler_token_hint: "处置人用此令牌在手机上登录（只显示一次）：",
    records: "条记录", area: "片区", shift: "班次", day: "白班", evening: "中班", night: "夜班", area_map: "地图：各片区时效达标变化（绿好红差）"},
};
const OPEN = new Set(["reported", "dispatched", "signed", "on_scene", "reinforcement_requested", "escalated",
  "consultation", "resolved"]);
const DISPATCH_ROLES = new Set(["admin", "dispatcher"]);

const S = {token: sessionStorage.getItem("sb-token"), lang: sessionStorage.getItem("sb-lang") || "en", me: null,
  catalog: null, events: new Map(), deck: null, base: [], members: [], now: null, nowAt: 0, selected: null,
  dirty: false, stream: null, drawn: 0, frames: 0, feed: [], version: 0, lastBoard: 0,
  drawnAt: new Map(), longTasks: []};  // (when each event was first drawn, and long tasks: for benchmarks)
if (window.PerformanceObserver && PerformanceObserver.supportedEntryTypes.includes("longtask")) {
  new PerformanceObserver((list) => { for (const e of list.getEntries()) S.longTasks.push(e.duration); })
    .observe({type: "longtask", buffered: true});
}
window.cockpit = S;  // (for tests and the curious)

const $ = (sel) => document.querySelector(sel);
const t = (key) => (T[S.lang] && T[S.lang][key]) || T.en[key] || key;

async function api(path, opts = {}) {
  const headers = Object.assign({"Authorization": "Bearer " + S.token}, opts.headers || {});
  const r = await fetch(path, Object.assign({}, opts, {headers}));
  if (r.status === 401) { signOut(t("bad_token")); throw new Error("unauthorised"); }
  const ct = r.headers.get("content-type") || "";
  const body = ct.includes("json") ? await r.json() : await r.text();
  if (!r.ok) {
    const err = body && body.error ? body.error.message || body.error.reason : String(body);
    throw new Error(err);
  }
  return body;
}

// --- language -----------------------------------------------------------------------------------------
function applyLang() {
  document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $("#lang").textContent = S.lang === "zh" ? "English" : "中文";
  render();
}
$("#lang").addEventListener("click", () => {
  S.lang = S.lang === "zh" ? "en" : "zh";
  sessionStorage.setItem("sb-lang", S.lang);
  applyLang();
});

function scenarioName(code) {
  const s = S.catalog && S.catalog.scenarios[code];
  return s ? (S.lang === "zh" ? s.name_zh : s.name_en) : code;
}
const hhmmss = (iso) => (iso ? iso.slice(11, 19) : "");  // the district's own time (the API gives its offset)
function twinNow() { return S.now === null ? Date.now() / 1000 : S.now + (performance.now() - S.nowAt) / 1000 * (S.speed || 1); }
function age(e) {
  const s = Math.max(0, twinNow() - e.reported);
  return s < 3600 ? Math.floor(s / 60) + ":" + String(Math.floor(s % 60)).padStart(2, "0") : (s / 3600).toFixed(1) + " h";
}

// --- sign-in ------------------------------------------------------------------------------------------
$("#signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  S.token = $("#token").value.trim();
  $("#signin-error").textContent = "";
  try { await start(); } catch (e) { if (String(e) !== "Error: unauthorised") $("#signin-error").textContent = String(e); }
});
$("#signout").addEventListener("click", () => signOut(""));

function signOut(message) {
  sessionStorage.removeItem("sb-token");
  S.token = null; S.me = null;
  if (S.stream) S.stream.abort();
  $("#signin").hidden = false; $("#desk").hidden = true; $("#phone").hidden = true; $("#signout").hidden = true;
  $("#who").textContent = "";
  $("#signin-error").textContent = message || "";
}

async function start() {
  S.me = await api("/api/v1/me");
  sessionStorage.setItem("sb-token", S.token);
  const health = await api("/health");
  S.now = Date.parse(health.now) / 1000; S.nowAt = performance.now(); S.speed = health.speed || 1;
  S.catalog = await api("/api/v1/catalog");
  $("#district").textContent = S.catalog.title || S.catalog.district;
  $("#who").textContent = S.me.name || S.me.role + (S.me.member_id ? " " + S.me.member_id : "");
  $("#signin").hidden = true; $("#signout").hidden = false;
  document.body.className = S.me.role;
  const handler = S.me.role === "handler";
  $("#desk").hidden = handler; $("#phone").hidden = !handler;
  await loadEvents();
  if (!handler) await drawMap();
  follow();
  applyLang();
}

// --- events: loaded once, then kept current from the stream ---------------------------------------------
function fromApi(e) {
  const c = e.location.coordinates;
  return {id: e.id, scenario: e.scenario, state: e.state, severity: e.severity, assignee: e.assignee,
    lon: c[0], lat: c[1], reported: Date.parse(e.reported_at) / 1000, reported_at: e.reported_at,
    dispatched: e.dispatched_at ? Date.parse(e.dispatched_at) / 1000 : null,
    signed: !!e.signed_at, on_scene: !!e.on_scene_at, road: e.road_id, area: e.area_id, source: e.source};
}

async function loadEvents() {
  const q = S.me.role === "handler" ? "?state=open&limit=1000&assignee=" + encodeURIComponent(S.me.member_id)
    : "?state=open&limit=1000";
  const body = await api("/api/v1/events" + q);
  S.events.clear();
  for (const e of body.events) S.events.set(e.id, fromApi(e));
  S.dirty = true;
}

function apply(rec) {  // one log record from the stream
  let e = S.events.get(rec.event_id);
  if (rec.action === "report" && !e) {
    const d = rec.data, loc = d.location;
    e = {id: rec.event_id, scenario: d.scenario, state: rec.to_state, severity: d.severity, assignee: rec.assignee,
      lon: loc.lon, lat: loc.lat, reported: rec.at, reported_at: rec.at_iso, dispatched: null, signed: false,
      on_scene: false, road: loc.road_id, area: rec.area_id, source: d.source};
    S.events.set(rec.event_id, e);
  }
  S.now = rec.at; S.nowAt = performance.now();
  if (!e) {  // an event this page has not seen (handed to this handler later; a gap after a reconnect)
    if (rec.to_state && OPEN.has(rec.to_state)) refreshOne(rec.event_id).catch(() => {});
    return;
  }
  e.state = rec.to_state; e.assignee = rec.assignee;
  if (rec.action === "dispatch" || rec.action === "reassign" || rec.action === "escalate") e.dispatched = rec.at;
  if (rec.action === "sign") e.signed = true;
  if (rec.action === "arrive") e.on_scene = true;
  S.feed.push(rec);  // (drawn in batches by render: at 200 records a second a DOM node each would stall the page)
  if (S.feed.length > 400) S.feed.splice(0, S.feed.length - 200);
  if (S.selected === rec.event_id) showDetail(rec.event_id);
  S.dirty = true;
}

function renderFeed() {
  if ($("#tab-feed").hidden) return;
  const items = S.feed.slice(-100).reverse().map((rec) => {
    const e = S.events.get(rec.event_id);
    return `<li>${hhmmss(rec.at_iso)} ${rec.event_id} ${esc(scenarioName(e ? e.scenario : ""))} → ${t(rec.to_state)}`
      + (rec.assignee ? ` (${rec.assignee})` : "") + "</li>";
  });
  $("#feed").innerHTML = items.join("");
}

async function follow() {  // server-sent events over fetch (a header carries the token)
  const scope = S.me.role === "handler" ? "handler:" + S.me.member_id : "dashboard";
  const ctrl = new AbortController();
  S.stream = ctrl;
  for (;;) {
    try {
      const r = await fetch("/api/v1/stream?scope=" + encodeURIComponent(scope),
        {headers: {"Authorization": "Bearer " + S.token}, signal: ctrl.signal});
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buf += dec.decode(value, {stream: true});
        let k;
        while ((k = buf.indexOf("\n\n")) >= 0) {
          const chunk = buf.slice(0, k); buf = buf.slice(k + 2);
          for (const line of chunk.split("\n")) if (line.startsWith("data:")) apply(JSON.parse(line.slice(5)));
        }
      }
    } catch (e) { if (ctrl.signal.aborted) return; }
    await new Promise((res) => setTimeout(res, 1000));  // reconnect
    if (ctrl.signal.aborted) return;
    await loadEvents();
  }
}

// --- the map ------------------------------------------------------------------------------------------
async function drawMap() {
  const spec = await api("/api/v1/map/base");
  const areas = spec.layers.find((l) => l.id === "areas");
  S.areaShapes = areas ? areas.data : [];
  const conv = new deck.JSONConverter({configuration: new deck.JSONConfiguration({classes: deck})});
  const props = conv.convert(spec);
  S.base = props.layers;
  if (S.deck) { S.deck.finalize(); S.baseDeck.finalize(); }
  // Two decks stacked: the district (drawn again only when the view moves) under what changes
  // (events, members: redrawn with every update). In software WebGL one frame of the whole
  // base map takes hundreds of ms; the overlay's frames take a few.
  const box = $("#map");
  box.innerHTML = '<div class="deck-base"></div><div class="deck-overlay"></div>';
  S.baseDeck = new deck.Deck({parent: box.firstChild, initialViewState: props.initialViewState, controller: false,
    layers: S.base, onAfterRender: () => { S.drawn += 1; }});
  S.deck = new deck.Deck({parent: box.lastChild, initialViewState: props.initialViewState, controller: true,
    layers: [], getTooltip: tooltip, onAfterRender: () => { S.frames += 1; },
    onViewStateChange: ({viewState}) => { S.baseDeck.setProps({viewState}); return viewState; },
    onClick: (info) => { if (info.object && info.layer && info.layer.id === "events") showDetail(info.object.id); }});
  refreshMembers();
  setInterval(refreshMembers, 5000);
}

function tooltip(info) {
  let o = info.object;
  if (!o && S.baseDeck && info.x >= 0) {  // nothing of the overlay here: the district beneath
    const hit = S.baseDeck.pickObject({x: info.x, y: info.y, radius: 2});
    if (hit) { o = hit.object; info = hit; }
  }
  if (!o) return null;
  if (info.layer.id === "whatif-areas") return o.id + " " + o.name + ": " + o.text;
  if (info.layer.id === "events") return o.id + " " + scenarioName(o.scenario) + " — " + t(o.state);
  if (info.layer.id === "members") return o.member_id + " " + t(o.role) + (o.event_id ? " → " + o.event_id : "");
  return [o.id, o.name, o.squad].filter(Boolean).join(" ");
}

async function refreshMembers() {
  try { S.members = (await api("/api/v1/members/positions")).members.filter((m) => m.on_duty); S.dirty = true; }
  catch (e) { /* next time */ }
}

function dynamicLayers() {
  const sc = S.catalog.state_colours, rc = S.catalog.role_colours;
  const extra = [];
  if (S.whatifAreas) {
    extra.push(new deck.PolygonLayer({id: "whatif-areas", data: S.whatifAreas, getPolygon: (a) => a.polygon,
      getFillColor: (a) => a.fill, getLineColor: [60, 60, 60, 200], lineWidthMinPixels: 1, filled: true, stroked: true,
      pickable: true, updateTriggers: {getFillColor: [S.whatifStamp]}}));
  }
  if (S.replay) {
    const shown = [...S.replay.events.values()];
    return [...extra, new deck.ScatterplotLayer({id: "replay-events", data: shown, getPosition: (e) => [e.lon, e.lat],
      getFillColor: (e) => sc[e.state] || [0, 0, 0, 200], getLineColor: [255, 255, 255, 255], stroked: true,
      lineWidthMinPixels: 1, getRadius: 20, radiusMinPixels: 5, radiusMaxPixels: 14,
      updateTriggers: {getFillColor: [S.replay.stamp]}})];
  }
  const open = [...S.events.values()].filter((e) => OPEN.has(e.state));
  return [...extra,
    new deck.ScatterplotLayer({id: "members", data: S.members, getPosition: (m) => [m.lon, m.lat],
      getFillColor: (m) => rc[m.role] || [0, 0, 0, 200], getLineColor: (m) => (m.busy ? [40, 40, 40, 255] : [255, 255, 255, 255]),
      stroked: true, lineWidthMinPixels: 1, getRadius: 8, radiusMinPixels: 3, pickable: true}),
    new deck.ScatterplotLayer({id: "events", data: open, getPosition: (e) => [e.lon, e.lat],
      getFillColor: (e) => (overdue(e) ? [198, 40, 40, 255] : sc[e.state] || [0, 0, 0, 200]),
      getLineColor: [255, 255, 255, 255], stroked: true, lineWidthMinPixels: 1, getRadius: 20, radiusMinPixels: 5,
      radiusMaxPixels: 14, pickable: true,
      updateTriggers: {getFillColor: [S.version, Math.floor(twinNow() / 5)]}}),  // (overdue moves with time)
  ];
}

// --- overdue: the scenario's own targets (respond once dispatched, on scene once reported) ----------------
function overdue(e) {
  const s = S.catalog.scenarios[e.scenario];
  if (!s) return false;
  const now = twinNow();
  if (e.state === "dispatched" && e.dispatched !== null && now - e.dispatched > s.respond_s) return true;
  if (!e.on_scene && OPEN.has(e.state) && e.state !== "resolved" && now - e.reported > s.on_scene_s) return true;
  return false;
}

// --- rendering (batched: at most a few times a second, however fast records come) ----------------------
function render() {
  if (!S.me || !S.catalog) return;
  const tick = performance.now();
  if (!S.dirty && tick - S.lastBoard < 1000) return;  // (ages move once a second; changes at once)
  S.lastBoard = tick;
  if (S.dirty) S.version += 1;
  S.dirty = false;
  if (!S.replay || S.replay.done) {
    $("#clock").textContent = new Date(twinNow() * 1000).toLocaleTimeString("en-GB", {timeZone: S.catalog.tz});
  }
  if (S.me.role === "handler") { renderMine(); return; }
  const open = [...S.events.values()].filter((e) => OPEN.has(e.state)).sort((a, b) => a.reported - b.reported);
  let late = 0;
  // rows kept and updated in place (a row under the pointer is never replaced), in order of age
  const tbody = $("#board tbody");
  const rows = new Map([...tbody.children].map((tr) => [tr.dataset.id, tr]));
  open.slice(0, 200).forEach((e, i) => {
    const o = overdue(e); if (o) late += 1;
    let tr = rows.get(e.id);
    if (!tr) {
      tr = document.createElement("tr"); tr.dataset.id = e.id;
      tr.innerHTML = "<td></td><td></td><td><span class=\"dot\"></span><span></span></td><td></td><td></td>";
    }
    rows.delete(e.id);
    const c = S.catalog.state_colours[e.state] || [0, 0, 0, 255];
    const cells = tr.children;
    setText(cells[0], e.id); setText(cells[1], scenarioName(e.scenario));
    cells[2].firstChild.style.background = `rgb(${c[0]},${c[1]},${c[2]})`; setText(cells[2].lastChild, t(e.state));
    setText(cells[3], age(e)); setText(cells[4], e.assignee || "");
    tr.classList.toggle("overdue", o);
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
  });
  for (const tr of rows.values()) tr.remove();
  for (const e of open.slice(200)) if (overdue(e)) late += 1;
  renderFeed();
  $("#open-count").textContent = open.length;
  $("#overdue-count").textContent = late;
  if (S.deck) {
    S.deck.setProps({layers: dynamicLayers()});
    const at = Date.now();
    for (const e of open) if (!S.drawnAt.has(e.id)) S.drawnAt.set(e.id, at);
    if (S.drawnAt.size > 50000) S.drawnAt.clear();
  }
}
function setText(el, text) { if (el.textContent !== text) el.textContent = text; }
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));

$("#board tbody").addEventListener("click", (ev) => {
  const tr = ev.target.closest("tr");
  if (tr) showDetail(tr.dataset.id);
});
document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => {
  document.querySelectorAll("#tabs button").forEach((x) => x.classList.toggle("on", x === b));
  document.querySelectorAll(".tab").forEach((s) => { s.hidden = s.id !== "tab-" + b.dataset.tab; });
  if (b.dataset.tab === "kpis") renderKpis();
  if (b.dataset.tab === "feed") { S.dirty = true; render(); }
}));
setInterval(render, 250);

async function renderKpis() {
  const k = await api("/api/v1/kpis");
  const pct = (v) => (v === null || v === undefined ? "–" : Math.round(v * 100) + "%");
  const cells = (v) => `<td>${v.events}</td><td>${pct(v.responded_within_60s)}</td><td>${pct(v.on_scene_within_180s)}</td>`
    + `<td>${pct(v.reinforced_within_300s)}</td>`;
  const head = (first) => `<thead><tr><th>${first}</th><th>${t("events")}</th><th>${t("respond")}</th>`
    + `<th>${t("on_scene_kpi")}</th><th>${t("reinforced")}</th></tr></thead>`;
  const table = (first, groups, name, id) => `<table data-group="${id}">${head(first)}<tbody>`
    + Object.entries(groups || {}).map(([g, v]) => `<tr data-key="${esc(g)}"><td>${esc(name(g))}</td>${cells(v)}</tr>`).join("")
    + "</tbody></table>";
  const areaName = (a) => { const shape = (S.areaShapes || []).find((x) => x.id === a); return shape ? `${a} ${shape.name}` : a; };
  $("#kpi").innerHTML = `<p>${k.events} ${t("events")}, ${k.waiting} ${t("waiting")}, ${k.members_busy}/${k.members_on_duty} `
    + `${t("members_busy")} · ${t(k.mode)}</p>`
    + `<table data-group="all">${head("")}<tbody><tr><td><b>∑</b></td>${cells(k)}</tr></tbody></table>`
    + `<h4>${t("tier")}</h4>` + table(t("tier"), k.by_tier, t, "tier")
    + `<h4>${t("area")}</h4>` + table(t("area"), k.by_area, areaName, "area")
    + `<h4>${t("shift")}</h4>` + table(t("shift"), k.by_shift, t, "shift");
  $("#mode").textContent = t(k.mode); $("#mode").className = k.mode;
}
setInterval(() => { if (S.me && S.me.role !== "handler" && !$("#tab-kpis").hidden) renderKpis(); }, 5000);

// --- one event: fields, evidence, history, what this role may do ----------------------------------------
async function showDetail(id) {
  S.selected = id;
  const e = await api("/api/v1/events/" + encodeURIComponent(id));
  $("#detail").hidden = false;
  if (S.tokenFor !== id) { $("#handler-token").hidden = true; S.tokenFor = id; }
  $("#detail-title").textContent = e.id + " · " + scenarioName(e.scenario);
  const f = [["state", t(e.state)], ["assignee", e.assignee || "–"], ["place", e.road_id + " · " + e.grid_id + " · " + e.area_id],
    ["reported_at", hhmmss(e.reported_at)], ["source", e.source], ["description", e.description || ""]];
  $("#detail-fields").innerHTML = f.map(([k, v]) => `<dt>${t(k)}</dt><dd>${esc(v)}</dd>`).join("");
  $("#detail-history").innerHTML = e.history.map((h) => `<li>${hhmmss(h.at_iso)} ${esc(h.action)} → ${t(h.to_state)} `
    + `<small>${esc(h.actor)} ${esc(h.reason || "")}</small></li>`).join("");
  const box = $("#detail-evidence");
  box.innerHTML = "";
  for (const url of S.objectUrls || []) URL.revokeObjectURL(url);  // (the photos shown before)
  S.objectUrls = [];
  for (const ev of e.stored_evidence || []) {
    if (!ev.content_type.startsWith("image/")) continue;
    const r = await fetch("/api/v1/evidence/" + encodeURIComponent(ev.id), {headers: {"Authorization": "Bearer " + S.token}});
    if (!r.ok) continue;
    const img = document.createElement("img");
    img.alt = t("evidence") + " " + ev.id.slice(0, 15);
    img.src = URL.createObjectURL(await r.blob());
    S.objectUrls.push(img.src);
    box.append(img);
  }
  renderActions(e, $("#actions"), $("#result-form"));
}
$("#detail-close").addEventListener("click", () => { $("#detail").hidden = true; S.selected = null; });

function allowed(e) {
  const role = S.me.role, mine = e.assignee && e.assignee === S.me.member_id;
  const acts = [];
  const dispatcher = DISPATCH_ROLES.has(role);
  if (!(dispatcher || mine)) return acts;
  if (e.state === "dispatched") acts.push("sign");
  if (e.state === "signed" || e.state === "escalated" && e.signed_at) acts.push("arrive");
  if (["dispatched", "signed", "on_scene", "escalated"].includes(e.state)) acts.push("escalate");
  if (e.state === "on_scene") acts.push("reinforcement", "result");
  if (dispatcher && e.state === "resolved") acts.push("verify");
  if (dispatcher && OPEN.has(e.state) && e.state !== "resolved") acts.push("merge");
  return acts;
}

function renderActions(e, box, form, error = $("#action-error")) {  // (the desk's detail, or a phone card)
  box.innerHTML = "";
  if (S.me.role === "admin" && e.assignee && OPEN.has(e.state)) {  // a token for the handler's phone
    const b = document.createElement("button");
    b.type = "button"; b.dataset.action = "handler-token";
    b.textContent = t("handler_token") + " " + e.assignee;
    b.addEventListener("click", async () => {
      try {
        const out = await api("/api/v1/tokens", {method: "POST", headers: {"Content-Type": "application/json"},
          body: JSON.stringify({role: "handler", member_id: e.assignee, name: e.assignee})});
        const p = $("#handler-token");
        p.hidden = false;
        p.innerHTML = `${t("handler_token_hint")} <code>${esc(out.token)}</code>`;
      } catch (err) { error.textContent = String(err.message || err); }
    });
    box.append(b);
  }
  // (a record arriving for this event redraws it: a result form being filled in stays open)
  if (form.dataset.event !== e.id || !allowed(e).includes("result")) form.hidden = true;
  error.textContent = "";
  for (const a of allowed(e)) {
    const b = document.createElement("button");
    b.type = "button"; b.dataset.action = a;
    b.textContent = a === "result" ? t("send_result") : t(a);
    if (a === "escalate") b.className = "danger";
    b.addEventListener("click", () => act(e, a, form, error));
    box.append(b);
  }
}

async function act(e, action, form, error) {
  error.textContent = "";
  try {
    if (action === "result") { showResultForm(e, form, error); return; }
    let body = {};
    if (action === "merge") {
      const into = prompt(t("merge_into"));
      if (!into) return;
      body = {into: into.trim()};
    }
    await api(`/api/v1/events/${encodeURIComponent(e.id)}/${action}`, {method: "POST",
      headers: {"Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID()}, body: JSON.stringify(body)});
    await refreshOne(e.id);
  } catch (err) { error.textContent = String(err.message || err); }
}

function showResultForm(e, form, error) {
  form.hidden = false;
  form.dataset.event = e.id;
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    if (!data.get("photo") || !data.get("photo").size) data.delete("photo");
    try {
      await api(`/api/v1/events/${encodeURIComponent(e.id)}/result`, {method: "POST", body: data,
        headers: {"Idempotency-Key": crypto.randomUUID()}});
      form.reset(); form.hidden = true;
      await refreshOne(e.id);
    } catch (err) { error.textContent = String(err.message || err); }
  };
}

async function refreshOne(id) {
  const e = await api("/api/v1/events/" + encodeURIComponent(id));
  S.events.set(id, fromApi(e));
  S.dirty = true;
  if (S.me.role === "handler") renderMine(); else if (S.selected === id) showDetail(id);
}

// --- the handler's phone view ---------------------------------------------------------------------------
function renderMine() {
  const mine = [...S.events.values()].filter((e) => e.assignee === S.me.member_id && OPEN.has(e.state))
    .sort((a, b) => a.reported - b.reported);
  const list = $("#mine");
  const shown = list.dataset.shown || "";
  const key = mine.map((e) => e.id + e.state).join(",") + S.lang;
  if (key === shown) return;  // (do not redraw under a finger or a half-filled form)
  list.dataset.shown = key;
  list.innerHTML = mine.length ? "" : `<li>${t("none")}</li>`;
  for (const e of mine) {
    const li = document.createElement("li");
    li.dataset.id = e.id;
    li.innerHTML = `<strong>${esc(scenarioName(e.scenario))}</strong><br>${e.id} · ${esc(e.road)} · ${t(e.state)}`
      + ` · ${hhmmss(e.reported_at)}<div class="acts"></div><form class="result" hidden>`
      + `<label><span>${t("result")}</span><textarea name="result" required></textarea></label>`
      + `<label><span>${t("photo")}</span><input type="file" name="photo" accept="image/*" capture="environment"></label>`
      + `<button type="submit">${t("send_result")}</button></form><p class="error" role="alert"></p>`;
    renderActions({id: e.id, assignee: e.assignee, state: e.state, signed_at: e.signed}, li.querySelector(".acts"),
      li.querySelector("form"), li.querySelector(".error"));
    list.append(li);
  }
}

applyLang();
if (S.token) start().catch(() => {});

// --- what if: the live state run ahead in the simulator, as is and with a change ------------------------
$("#whatif-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target, data = new FormData(form), change = {};
  for (const [k, v] of data.entries()) {
    if (k === "hours" || k === "replications" || k === "wartime" || v === "") continue;
    change[k] = Number(v);
  }
  if (data.get("wartime")) change.mode = "wartime";
  const body = {hours: Number(data.get("hours")), replications: Number(data.get("replications")), change};
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  $("#whatif-status").textContent = t("running");
  $("#whatif-result").innerHTML = "";
  const t0 = performance.now();
  try {
    const out = await api("/api/v1/whatif", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body)});
    S.whatif = out;
    $("#whatif-status").textContent = `${out.from.slice(11, 16)} + ${out.hours} h · ${out.replications} × 2 · `
      + `${((performance.now() - t0) / 1000).toFixed(1)} s`;
    renderWhatif(out);
  } catch (err) {
    $("#whatif-status").textContent = String(err.message || err);
  } finally { button.disabled = false; }
});

const SHARES = ["responded_within_60s", "on_scene_within_180s", "reinforced_within_300s", "within_targets"];
const LOWER_BETTER = new Set(["wait_mean_s", "escalations", "max_backlog"]);
function kpiName(k) {
  return {responded_within_60s: t("respond"), on_scene_within_180s: t("on_scene_kpi"),
    reinforced_within_300s: t("reinforced")}[k] || t(k);
}

function renderWhatif(out) {
  const fmt = (k, v) => (v === null || v === undefined ? "–" : SHARES.includes(k) ? (v * 100).toFixed(1) + "%"
    : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1));
  const ci = (k, lo, hi) => (lo === null || lo === undefined ? "" : `<br><small>[${fmt(k, lo)}, ${fmt(k, hi)}]</small>`);
  const rows = [...SHARES, "wait_mean_s", "escalations", "max_backlog", "events"].map((k) => {
    const a = out.as_is[k] || {}, b = out.proposed[k] || {}, d = out.difference[k], dci = out.difference_ci95[k] || [];
    const sure = dci[0] !== null && dci[0] !== undefined && (dci[0] > 0 || dci[1] < 0);
    const good = sure && ((d > 0) !== LOWER_BETTER.has(k));
    const cls = !sure || k === "events" ? "" : good ? "better" : "worse";
    return `<tr data-kpi="${k}"><td>${kpiName(k)}</td><td>${fmt(k, a.mean)}${ci(k, a.ci95_lo, a.ci95_hi)}</td>`
      + `<td>${fmt(k, b.mean)}${ci(k, b.ci95_lo, b.ci95_hi)}</td><td class="${cls}">${d === null ? "–" : (d > 0 ? "+" : "")
      + fmt(k, d)}${ci(k, dci[0], dci[1])}</td></tr>`;
  });
  $("#whatif-result").innerHTML = `<table><thead><tr><th>${t("kpi")}</th><th>${t("as_is")}</th><th>${t("proposed")}</th>`
    + `<th>${t("difference")}</th></tr></thead><tbody>${rows.join("")}</tbody></table>${chart(out)}`
    + `<p class="hint">${t("area_map")}</p>`;
  // the map: each area by how the change moves its share of events within their own targets
  const a = out.by_area.as_is, b = out.by_area.proposed;
  S.whatifAreas = (S.areaShapes || []).map((shape) => {
    const x = (a[shape.id] || {}).within_targets, y = (b[shape.id] || {}).within_targets;
    const d = x === null || x === undefined || y === null || y === undefined ? null : y - x;
    const f = d === null ? null : Math.max(-1, Math.min(1, d / 0.1));
    const fill = f === null ? [170, 170, 170, 70] : f >= 0 ? [46, 125, 50, Math.round(40 + 150 * f)]
      : [198, 40, 40, Math.round(40 - 150 * f)];
    const text = d === null ? "–" : `${(x * 100).toFixed(1)}% → ${(y * 100).toFixed(1)}%`;
    return {id: shape.id, name: shape.name, polygon: shape.polygon, fill, text};
  });
  S.whatifStamp = Date.now();
  S.dirty = true;
}

function chart(out) {  // the 1/3/5-minute shares, as is and proposed, with their 95% intervals (SVG)
  const W = 400, H = 170, x0 = 40, bw = 36, gap = 30;
  const y = (v) => H - 20 - v * (H - 40);
  let svg = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="what-if chart"><line x1="${x0}" y1="${y(0)}" x2="${W}" y2="${y(0)}" stroke="#90a4ae"/>`;
  for (const v of [0, 0.5, 1]) svg += `<text x="2" y="${y(v) + 4}" font-size="10">${v * 100}%</text>`;
  SHARES.slice(0, 3).forEach((k, i) => {
    const gx = x0 + 10 + i * (2 * bw + gap);
    [["as_is", "#90a4ae"], ["proposed", "#1565c0"]].forEach(([arm, colour], j) => {
      const e = out[arm][k] || {};
      if (e.mean === null || e.mean === undefined) return;
      const bx = gx + j * bw;
      svg += `<rect x="${bx}" y="${y(e.mean)}" width="${bw - 4}" height="${y(0) - y(e.mean)}" fill="${colour}"/>`;
      if (e.ci95_lo !== null && e.ci95_lo !== undefined) {
        const cx = bx + (bw - 4) / 2;
        svg += `<line x1="${cx}" x2="${cx}" y1="${y(Math.min(1, e.ci95_hi))}" y2="${y(Math.max(0, e.ci95_lo))}" stroke="#263238"/>`;
      }
    });
    svg += `<text x="${gx}" y="${H - 4}" font-size="10">${esc(kpiName(k))}</text>`;
  });
  return svg + "</svg>";
}

// --- replay: a window of the log, drawn at any speed -----------------------------------------------------
$("#replay-form select[name=hours]").addEventListener("change", (ev) => {
  document.querySelectorAll("#replay-form .custom").forEach((l) => { l.hidden = ev.target.value !== "custom"; });
});

function districtTime(text) {  // "YYYY-MM-DDTHH:MM" on the district's clock → POSIX seconds
  const [d, hm] = text.split("T"), [y, mo, da] = d.split("-").map(Number), [h, mi] = hm.split(":").map(Number);
  const guess = Date.UTC(y, mo - 1, da, h, mi) / 1000;
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {timeZone: S.catalog.tz, hourCycle: "h23",
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"})
    .formatToParts(new Date(guess * 1000)).map((p) => [p.type, p.value]));
  const shown = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second) / 1000;
  return guess - (shown - guess);  // (the zone's offset at that moment, taken back)
}

$("#replay-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const data = new FormData(ev.target);
  let until = twinNow(), since = until - Number(data.get("hours")) * 3600;
  if (data.get("hours") === "custom") {
    if (!data.get("from") || !data.get("to")) { $("#replay-status").textContent = t("from") + " / " + t("to"); return; }
    since = districtTime(data.get("from")); until = districtTime(data.get("to"));
  }
  const out = await api(`/api/v1/replay?since=${since}&until=${until}`);
  const recs = out.records;
  S.replay = {records: recs, i: 0, t0: recs.length ? recs[0].at : since, t1: recs.length ? recs[recs.length - 1].at : until,
    speed: Number(data.get("speed")), events: new Map(), done: false, maxShown: 0, stamp: 0, started: performance.now()};
  $("#replay-status").textContent = `${t("replaying")}: ${recs.length} ${t("records")}, ${out.events} ${t("events")}`;
  requestAnimationFrame(stepReplay);
});
$("#replay-stop").addEventListener("click", () => { S.replay = null; $("#replay-status").textContent = ""; S.dirty = true; });

function stepReplay() {
  const R = S.replay;
  if (!R || R.done) return;
  const now = R.t0 + (performance.now() - R.started) / 1000 * R.speed;
  while (R.i < R.records.length && R.records[R.i].at <= now) {
    const rec = R.records[R.i++];
    let e = R.events.get(rec.event_id);
    if (!e && rec.action === "report") {
      e = {id: rec.event_id, scenario: rec.data.scenario, lon: rec.data.location.lon, lat: rec.data.location.lat};
      R.events.set(rec.event_id, e);
    }
    if (e) e.state = rec.to_state;
  }
  R.maxShown = Math.max(R.maxShown, R.events.size);
  R.stamp += 1;
  R.t = now;
  $("#replay-progress").value = R.t1 > R.t0 ? Math.round(1000 * Math.min(1, (now - R.t0) / (R.t1 - R.t0))) : 1000;
  $("#clock").textContent = new Date(Math.min(now, R.t1) * 1000).toLocaleTimeString("en-GB", {timeZone: S.catalog.tz}) + " ⏵";
  if (S.deck) S.deck.setProps({layers: dynamicLayers()});
  if (R.i >= R.records.length) {
    R.done = true;
    $("#replay-status").textContent = `${t("replay_done")}: ${R.events.size} ${t("events")}`;
    return;
  }
  requestAnimationFrame(stepReplay);
}

// --- staffing: the optimiser as a job, followed until its plan comes back --------------------------------
$("#staffing-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const data = new FormData(ev.target);
  const body = {role: data.get("role"), target: Number(data.get("target")), days: Number(data.get("days")),
    replications: Number(data.get("replications"))};
  const button = ev.target.querySelector("button[type=submit]");
  button.disabled = true;
  $("#staffing-result").innerHTML = "";
  try {
    let job = await api("/api/v1/staffing", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body)});
    while (job.state === "running") {
      $("#staffing-status").textContent = t("running") + " " + (job.progress.slice(-1)[0] || "");
      await new Promise((res) => setTimeout(res, 2000));
      job = await api("/api/v1/staffing/" + job.job);
    }
    S.staffing = job;
    if (job.state === "failed") { $("#staffing-status").textContent = job.error; return; }
    $("#staffing-status").textContent = "";
    renderStaffing(job.result);
  } catch (err) {
    $("#staffing-status").textContent = String(err.message || err);
  } finally { button.disabled = false; }
});

function renderStaffing(plan) {
  const areas = Object.keys(plan.per_area).sort();
  const shifts = areas.length ? Object.keys(plan.per_area[areas[0]]) : [];
  const rows = areas.map((a) => `<tr><td>${esc(a)}</td>${shifts.map((sh) => `<td>${plan.per_area[a][sh]}</td>`).join("")}`
    + `<td><b>${plan.headcount[a] ?? "–"}</b></td></tr>`);
  $("#staffing-result").innerHTML = `<p><b>${plan.met ? t("met") : t("not_met")}</b> · ${plan.positions} ${t("positions")} · `
    + `${plan.headcount_total} ${t("people")}${plan.reason ? " · " + esc(plan.reason) : ""}</p>`
    + `<table data-staffing><thead><tr><th>${t("area")}</th>${shifts.map((sh) => `<th>${t(sh)}</th>`).join("")}`
    + `<th>${t("people")}</th></tr></thead><tbody>${rows.join("")}</tbody></table>`
    + `<p class="hint">${t("curve")}</p>${curveSvg(plan.curve, plan.target)}`;
}

function curveSvg(points, target) {
  const pts = points.filter((p) => p.kpi !== null && Number.isFinite(p.kpi));
  if (!pts.length) return "";
  const W = 400, H = 180, x0 = 40, y0 = 160;
  const xs = pts.map((p) => p.people), lo = Math.min(...xs), hi = Math.max(...xs, lo + 1);
  const X = (v) => x0 + (v - lo) / (hi - lo) * (W - x0 - 10), Y = (v) => y0 - v * (y0 - 10);
  let svg = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="cost and service curve">`
    + `<line x1="${x0}" y1="${Y(target)}" x2="${W}" y2="${Y(target)}" stroke="#c62828" stroke-dasharray="4 3"/>`;
  for (const v of [0, 0.5, 1]) svg += `<text x="2" y="${Y(v) + 4}" font-size="10">${v * 100}%</text>`;
  svg += `<text x="${x0}" y="${H - 2}" font-size="10">${lo} ${t("people")}</text><text x="${W - 60}" y="${H - 2}" font-size="10">${hi}</text>`;
  for (const p of pts) {
    if (p.lo !== null && p.hi !== null) svg += `<line x1="${X(p.people)}" x2="${X(p.people)}" y1="${Y(Math.min(1, p.hi))}" y2="${Y(Math.max(0, p.lo))}" stroke="#90a4ae"/>`;
    svg += `<circle cx="${X(p.people)}" cy="${Y(p.kpi)}" r="3.5" fill="${p.efficient ? "#1565c0" : "#b0bec5"}"/>`;
  }
  return svg + "</svg>";
}
