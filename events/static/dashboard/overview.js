/* The overview: event types with their rate charts, subscriptions, health. */
"use strict";

(() => {
  const script = document.currentScript;
  const { el, syncRows, setText, number, ago } = Dash;
  const rates = new Map(); // event type -> [[t, events/s], …] of the last hour

  function eventTypeRow(item) {
    const row = el("tr", {},
      el("td", {}, el("a", { href: item.url, class: "name" }, item.name)),
      el("td", { class: "num rate", "data-field": "rate" }),
      el("td", { class: "spark" }),
      el("td", { class: "num", "data-field": "partitions" }),
      el("td", { class: "num", "data-field": "size" }),
      el("td", { class: "num", "data-field": "published" }));
    return row;
  }

  function updateEventType(row, item, now) {
    const points = Dash.keepHour(rates.get(item.name) || [], item.points, now);
    rates.set(item.name, points);
    const current = points.length ? points[points.length - 1][1] : 0;
    setText(row.querySelector("[data-field=rate]"), number(current));
    setText(row.querySelector("[data-field=partitions]"), item.partitions);
    setText(row.querySelector("[data-field=size]"), number(item.size));
    setText(row.querySelector("[data-field=published]"), number(item.published));
    if (!row._chart) row._chart = Dash.chart(row.querySelector(".spark"), ["events/s"], 90);
    Dash.draw(row._chart, [points.map((p) => p[0]), points.map((p) => p[1])]);
  }

  function subscriptionRow(item) {
    return el("tr", {},
      el("td", {}, el("a", { href: item.url, class: "name" }, item.name),
        el("div", { class: "meta mono" }, item.mode)),
      el("td", { "data-field": "event_types" }),
      el("td", {}, el("div", { class: "lag" })),
      el("td", { class: "num", "data-field": "unconsumed" }),
      el("td", { class: "num", "data-field": "sessions" }),
      el("td", { class: "num", "data-field": "dead_letters" }));
  }

  function updateSubscription(row, item) {
    setText(row.querySelector("[data-field=event_types]"), item.event_types.join(", "));
    setText(row.querySelector("[data-field=unconsumed]"), number(item.unconsumed));
    setText(row.querySelector("[data-field=sessions]"), item.sessions);
    const dead = row.querySelector("[data-field=dead_letters]");
    setText(dead, item.dead_letters);
    dead.className = "num " + (item.dead_letters ? "bad" : "");
    const lag = row.querySelector(".lag");
    const text = item.partitions.map((p) =>
      `${p.event_type}/${p.partition}: ${number(p.unconsumed)} (${p.lag_seconds} s)`);
    if (lag.dataset.text !== text.join("|")) {
      lag.dataset.text = text.join("|");
      lag.replaceChildren(...text.map((t) => el("span", {}, t)));
    }
  }

  function health(data) {
    const list = document.getElementById("health");
    const parts = [["Redis", data.health.redis], ["Database", data.health.database],
      ["Workers", data.health.workers]];
    syncRows(list, parts, (p) => p[0],
      (p) => el("li", {}, el("strong", {}, p[0]), el("span", {})),
      (li, p) => {
        li.className = p[1].ok ? "ok" : "bad";
        setText(li.querySelector("span"), (p[1].ok ? "✔ " : "✘ ") + p[1].detail);
      });
    syncRows(document.querySelector("#jobs tbody"), data.health.jobs, (j) => j.name,
      (j) => el("tr", {}, el("td", {}, j.name), el("td", {}), el("td", {})),
      (tr, j) => {
        const cells = tr.children;
        setText(cells[1], ago(j.ended_at || j.enqueued_at, data.now));
        setText(cells[2], j.status);
        cells[2].className = j.status === "failed" || j.status === "never run" ? "bad" : "";
      });
  }

  Dash.poll(script.dataset.poll, (data) => {
    const types = document.querySelector("#event-types tbody");
    syncRows(types, data.event_types, (i) => i.name, eventTypeRow,
      (row, item) => updateEventType(row, item, data.now));
    document.getElementById("no-event-types").hidden = data.event_types.length > 0;
    const subs = document.querySelector("#subscriptions tbody");
    syncRows(subs, data.subscriptions, (i) => i.id, subscriptionRow, updateSubscription);
    document.getElementById("no-subscriptions").hidden = data.subscriptions.length > 0;
    health(data);
    return data.newest_sample;
  });
})();
