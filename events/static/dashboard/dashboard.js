/* The dashboard's shared helpers: polling with a visible connection state, building rows,
   formatting, and uPlot charts. Plain JavaScript, no build step. */
"use strict";

const Dash = (() => {
  const status = document.getElementById("connection");

  function setStatus(text, kind) {
    status.textContent = text;
    status.className = "connection " + (kind || "");
  }

  /* Fetch `url` (plus ?since=) every `interval` ms after the last answer; `onData(json)`
     returns the next `since` (or nothing). A failure says so in the header and retries. */
  function poll(url, onData, interval = 1000) {
    let since = 0;
    let failures = 0;
    async function once() {
      try {
        const response = await fetch(`${url}?since=${since}`, {
          headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store",
        });
        if (response.status === 403) {
          setStatus("logged out: reload to log in again", "lost");
          return;
        }
        if (!response.ok) {
          let detail = `HTTP ${response.status}`;
          try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
          throw new Error(detail);
        }
        const next = onData(await response.json());
        if (typeof next === "number") since = next;
        failures = 0;
        setStatus(`live · ${new Date().toLocaleTimeString()}`, "live");
      } catch (error) {
        failures += 1;
        setStatus(`connection lost (${error.message}); retrying…`, "lost");
      }
      setTimeout(once, failures ? Math.min(5000, interval * failures) : interval);
    }
    once();
  }

  /* An element: el("td", {class: "num"}, "text", child, …). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  /* Keep one <tr> per item in `tbody`, in the items' order, keyed by key(item): create(item)
     makes a row once, update(row, item) refreshes it in place on every poll. */
  function syncRows(tbody, items, key, create, update) {
    const existing = new Map([...tbody.children].map((row) => [row.dataset.key, row]));
    let previous = null;
    for (const item of items) {
      const k = String(key(item));
      let row = existing.get(k);
      if (!row) {
        row = create(item);
        row.dataset.key = k;
      }
      existing.delete(k);
      const position = previous ? previous.nextSibling : tbody.firstChild;
      if (row !== position) tbody.insertBefore(row, position);
      update(row, item);
      previous = row;
    }
    for (const [, row] of existing) {
      if (row._chart) row._chart.destroy();
      row.remove();
    }
  }

  /* Set a cell's text only when it changed (keeps selections and avoids reflows). */
  function setText(node, text) {
    const value = text === null || text === undefined ? "–" : String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  function number(n) {
    if (n === null || n === undefined) return "?";
    return Number(n).toLocaleString("en", { maximumFractionDigits: n < 10 ? 2 : 1 });
  }

  function ago(ms, now) {
    if (!ms) return "never";
    const seconds = Math.max(0, Math.round((now - ms) / 1000));
    if (seconds < 90) return `${seconds} s ago`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
    return `${Math.round(seconds / 3600)} h ago`;
  }

  function short(id) { return id ? id.slice(0, 8) : "–"; }

  /* A uPlot chart of one or more series over time in `node`, sized to its width. */
  function chart(node, labels, height) {
    const colors = ["#1f5fbf", "#c0262d", "#19803d", "#a86500", "#6f42c1", "#0f7c8c"];
    const width = () => Math.max(120, node.clientWidth || 240);
    const options = {
      width: width(), height,
      legend: { show: labels.length > 1 },
      cursor: { show: labels.length > 1 },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [
        { size: 24, font: "10px sans-serif", stroke: "#5f6b7a" },
        { size: 36, font: "10px sans-serif", stroke: "#5f6b7a" },
      ],
      series: [{}, ...labels.map((label, i) => ({
        label, stroke: colors[i % colors.length], width: 1.5,
        fill: labels.length === 1 ? "rgba(31, 95, 191, 0.12)" : undefined,
      }))],
    };
    const plot = new uPlot(options, [[], ...labels.map(() => [])], node);
    window.addEventListener("resize", () => plot.setSize({ width: width(), height }));
    return plot;
  }

  /* Show `data` ([xs, ys…]) over what there is of the last hour, at least a minute, so
     that a lone point stays visible. */
  function draw(plot, data) {
    const xs = data[0];
    plot.setData(data);
    if (!xs.length) return;
    const last = xs[xs.length - 1];
    plot.setScale("x", { min: Math.min(xs[0], last - 60), max: last });
  }

  /* Points [[t seconds, y], …] kept per key for an hour: add new ones, drop old ones. */
  function keepHour(list, points, now) {
    const last = list.length ? list[list.length - 1][0] : -Infinity;
    for (const p of points) if (p[0] > last) list.push(p);
    const cutoff = now / 1000 - 3600;
    while (list.length && list[0][0] < cutoff) list.shift();
    return list;
  }

  function csrf() {
    return document.querySelector("meta[name=csrf-token]").content;
  }

  return { poll, el, syncRows, setText, number, ago, short, chart, draw, keepHour, csrf, setStatus };
})();
