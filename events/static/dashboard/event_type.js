/* An event type's page: rate and partitions (polled), and a live tail read from the reader
   endpoint through EventSource with the page's session. */
"use strict";

(() => {
  const script = document.currentScript;
  const { el, syncRows, setText, number } = Dash;
  const CAP = 200; // rows the tail keeps
  let points = [];
  let plot = null;

  Dash.poll(script.dataset.poll, (data) => {
    points = Dash.keepHour(points, data.points, data.now);
    const current = points.length ? points[points.length - 1][1] : 0;
    setText(document.getElementById("rate"), number(current));
    setText(document.getElementById("published"), number(data.published));
    setText(document.getElementById("size"), number(data.size));
    if (!plot) plot = Dash.chart(document.getElementById("rate-chart"), ["events/s"], 160);
    Dash.draw(plot, [points.map((p) => p[0]), points.map((p) => p[1])]);
    syncRows(document.querySelector("#partitions tbody"), data.partitions, (p) => p.partition,
      () => el("tr", {}, el("td", { class: "num" }), el("td", { class: "mono" }),
        el("td", { class: "mono" }), el("td", { class: "num" })),
      (tr, p) => {
        const cells = tr.children;
        setText(cells[0], p.partition);
        setText(cells[1], p.oldest);
        setText(cells[2], p.newest);
        setText(cells[3], number(p.size));
      });
    return data.newest_sample;
  });

  // -- the tail ----------------------------------------------------------------------
  const body = document.querySelector("#tail tbody");
  const status = document.getElementById("tail-status");
  const pause = document.getElementById("tail-pause");
  const textFilter = document.getElementById("tail-text");
  const topicFilter = document.getElementById("tail-topics");
  document.getElementById("tail-cap").textContent = CAP;
  let source = null;
  let lastId = "";
  let paused = false;
  let waiting = []; // rows received while paused, newest last

  function tailStatus(text, lost) {
    status.textContent = text;
    status.className = "tail-status" + (lost ? " lost" : "");
  }

  function matches(row) {
    const text = textFilter.value.trim().toLowerCase();
    return !text || row.dataset.search.includes(text);
  }

  function countHidden() {
    setText(document.getElementById("tail-hidden"),
      [...body.children].filter((row) => row.hidden).length);
  }

  function rowOf(cursor, event) {
    const metadata = event.metadata || {};
    const { metadata: _, ...payload } = event; // the row shows metadata in its own cells
    const json = JSON.stringify(payload);
    const row = el("tr", { class: "fresh" },
      el("td", { class: "mono" }, (metadata.received_at || "").replace("T", " ").slice(0, 23)),
      el("td", { class: "mono" }, `${cursor.partition}@${cursor.offset}`),
      el("td", {}, metadata.topic || ""),
      el("td", { class: "event mono", title: `eid ${metadata.eid || "?"}` },
        json.length > 600 ? json.slice(0, 600) + "…" : json));
    row.dataset.search = JSON.stringify(event).toLowerCase();
    row.hidden = !matches(row);
    return row;
  }

  function show(rows) {
    for (const row of rows) body.prepend(row);
    while (body.children.length > CAP) body.lastElementChild.remove();
    countHidden();
  }

  function onBatch(message) {
    lastId = message.lastEventId || lastId;
    const batch = JSON.parse(message.data);
    const rows = (batch.events || []).map((event) => rowOf(batch.cursor, event));
    if (paused) {
      waiting.push(...rows);
      waiting = waiting.slice(-CAP);
      pause.textContent = `Resume (${waiting.length} new)`;
    } else {
      show(rows);
    }
  }

  /* EventSource does not say why it was refused: ask once more, read the problem's
     detail (e.g. a user linked to no client may not read), and stop reading. */
  async function refused(url) {
    tailStatus("the server refused the stream; retrying in 5 s", true);
    const abort = new AbortController();
    try {
      const response = await fetch(url, {
        headers: { Accept: "text/event-stream" }, credentials: "same-origin", signal: abort.signal,
      });
      if (!response.ok) {
        let detail = `HTTP ${response.status}`;
        try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
        tailStatus(`refused: ${detail}; retrying in 5 s`, true);
      }
    } catch (e) { /* the server is away: the status says so already */ }
    abort.abort();
  }

  function connect() {
    if (source) source.close();
    const params = new URLSearchParams();
    const topics = topicFilter.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (topics.length) params.set("topics", topics.join(","));
    if (lastId) params.set("lastEventId", lastId); // continue where the tail was
    else params.set("read_from", "end");
    source = new EventSource(`${script.dataset.stream}?${params}`);
    tailStatus("connecting…");
    source.onopen = () => tailStatus(topics.length ? `live, topics ${topics.join(", ")}` : "live");
    source.addEventListener("batch", onBatch);
    source.addEventListener("reset", (message) => {
      const data = JSON.parse(message.data || "{}");
      tailStatus(`continued after a reset: ${data.reason || "unknown"}`, true);
    });
    source.addEventListener("close", (message) => {
      const data = JSON.parse(message.data || "{}");
      tailStatus(`closed by the server: ${data.close_reason || "?"}; reconnecting…`, true);
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        refused(source.url);
        setTimeout(connect, 5000);
      } else {
        tailStatus("connection lost; reconnecting…", true);
      }
    };
  }

  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      show(waiting);
      waiting = [];
    }
  });
  textFilter.addEventListener("input", () => {
    for (const row of body.children) row.hidden = !matches(row);
    countHidden();
  });
  topicFilter.addEventListener("change", connect);
  connect();
})();
