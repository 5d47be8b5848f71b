/* A subscription's page: lag per partition over time, owners, sessions, closes and dead
   letters with replay. */
"use strict";

(() => {
  const script = document.currentScript;
  const { el, syncRows, setText, number, ago, short } = Dash;
  const mayReplay = script.dataset.mayReplay === "1";
  let samples = []; // [{at, unconsumed: {"type/p": n}}], the last hour
  let plot = null;
  let plotKeys = "";

  function drawLag(now) {
    const keys = [...new Set(samples.flatMap((s) => Object.keys(s.unconsumed)))].sort();
    if (keys.join("|") !== plotKeys) { // partitions changed: a new chart
      if (plot) plot.destroy();
      plotKeys = keys.join("|");
      plot = Dash.chart(document.getElementById("lag-chart"), keys, 200);
    }
    Dash.draw(plot, [
      samples.map((s) => s.at / 1000),
      ...keys.map((k) => samples.map((s) => (s.unconsumed[k] === undefined ? null : s.unconsumed[k]))),
    ]);
  }

  async function replay(button, id) {
    button.disabled = true;
    button.textContent = "Replaying…";
    try {
      const response = await fetch(script.dataset.replay.replace("/0/", `/${id}/`), {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRFToken": Dash.csrf(), Accept: "application/json" },
      });
      const body = await response.json();
      button.textContent = response.ok ? `Replayed at ${body.offset}` : body.detail;
    } catch (error) {
      button.textContent = `Failed: ${error.message}`;
      button.disabled = false;
    }
  }

  Dash.poll(script.dataset.poll, (data) => {
    samples = samples.concat(data.lag).filter((s) => s.at > data.now - 3600 * 1000);
    setText(document.getElementById("unconsumed"), number(data.unconsumed));
    drawLag(data.now);

    syncRows(document.querySelector("#partitions tbody"), data.partitions,
      (p) => `${p.event_type}/${p.partition}`,
      (p) => el("tr", {}, el("td", {}, `${p.event_type}/${p.partition}`), el("td", {}),
        el("td", { class: "mono" }), el("td", { class: "mono" }), el("td", { class: "num" }),
        el("td", { class: "num" }), el("td", { class: "num" })),
      (tr, p) => {
        const c = tr.children;
        setText(c[1], p.state);
        c[1].className = p.state === "assigned" ? "ok" : p.state === "reassigning" ? "warn" : "";
        setText(c[2], p.state === "assigned" ? p.session : "–");
        c[2].title = p.session || "";
        setText(c[3], p.committed);
        setText(c[4], number(p.unconsumed));
        setText(c[5], p.pending === null ? "–" : p.pending);
        setText(c[6], p.lag_seconds);
      });

    syncRows(document.querySelector("#sessions tbody"), data.sessions, (s) => s.id,
      (s) => el("tr", { class: "session" }, el("td", { class: "mono" }, s.id), el("td", {})),
      (tr, s) => setText(tr.children[1],
        s.partitions.length ? s.partitions.join(", ") : data.mode === "shared" ? "every partition (shared)" : "none yet"));
    document.getElementById("no-sessions").hidden = data.sessions.length > 0;

    syncRows(document.querySelector("#closes tbody"), data.closes, (c) => `${c.session}@${c.at}`,
      (c) => el("tr", {}, el("td", {}), el("td", { class: "mono", title: c.session }, short(c.session)),
        el("td", {}, c.reason)),
      (tr, c) => setText(tr.children[0], ago(c.at, data.now)));
    document.getElementById("no-closes").hidden = data.closes.length > 0;

    syncRows(document.querySelector("#dead-letters tbody"), data.dead_letters, (d) => d.id,
      (d) => {
        const button = mayReplay
          ? el("button", { type: "button", class: "replay" }, "Replay") : null;
        if (button) button.addEventListener("click", () => replay(button, d.id));
        return el("tr", {},
          el("td", { class: "mono" }, `${d.event_type}/${d.partition}@${d.offset}`),
          el("td", { class: "num" }, d.deliveries), el("td", {}, d.reason), el("td", {}),
          el("td", {}, el("pre", { class: "body mono" }, d.body)), el("td", {}, button));
      },
      (tr, d) => setText(tr.children[3], ago(d.created_at, data.now)));
    document.getElementById("no-dead-letters").hidden = data.dead_letters.length > 0;
    return data.lag.length ? data.lag[data.lag.length - 1].at : undefined;
  });
})();
