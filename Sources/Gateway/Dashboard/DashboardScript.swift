extension DashboardAssets {
    /// The dashboard's script: reads `/dashboard/events` (server-sent events, one snapshot a
    /// second) and draws the page; actions are `POST`s with the session's CSRF token. Plain
    /// JavaScript, no library; charts on a canvas.
    static let script = #"""
    "use strict";
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const canAdmin = document.querySelector('meta[name="can-admin"]').content === "true";
    let renders = 0;

    function $(id) { return document.getElementById(id); }
    function text(id, value) { $(id).textContent = value; }
    function cell(value, className) {
      const td = document.createElement("td");
      td.textContent = value === undefined || value === null ? "" : String(value);
      if (className) td.className = className;
      return td;
    }
    function button(label, onClick, className) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.className = "admin" + (className ? " " + className : "");
      b.disabled = !canAdmin;
      b.addEventListener("click", onClick);
      return b;
    }
    function fillTable(id, rows, makeRow, empty) {
      const body = $(id).tBodies[0];
      const fresh = document.createElement("tbody");
      for (const row of rows) fresh.appendChild(makeRow(row));
      if (rows.length === 0) {
        const tr = document.createElement("tr");
        const td = cell(empty, "empty");
        td.colSpan = $(id).tHead.rows[0].cells.length;
        tr.appendChild(td);
        fresh.appendChild(tr);
      }
      body.replaceWith(fresh);
    }
    function seconds(s) {
      if (s === undefined || s === null) return "";
      if (s < 60) return s.toFixed(1) + " s";
      if (s < 3600) return (s / 60).toFixed(1) + " min";
      if (s < 86400) return (s / 3600).toFixed(1) + " h";
      return (s / 86400).toFixed(1) + " d";
    }
    function clock(t) { return new Date(t * 1000).toLocaleTimeString(); }

    function render(s) {
      renders += 1;
      document.body.dataset.renders = String(renders);
      document.body.dataset.at = String(s.at);
      const connection = $("connection");
      if (!s.reachable) {
        connection.textContent = "broker unreachable";
        connection.className = "pill bad";
        text("message", s.error || "");
        return;
      }
      connection.textContent = "live";
      connection.className = "pill good";
      text("uptime", "broker up " + seconds(s.uptime_s));
      text("queued-total", s.queued_total);
      text("running-total", s.running);
      text("reserved-total", s.reserved);
      text("rate", s.completed_per_second === undefined ? "–" : s.completed_per_second.toFixed(1));
      text("completed-total", s.totals ? s.totals.completed : "–");
      text("dead-total", s.dead_letter_total);
      text("consumer-count", s.consumers.length);
      fillTable("names", s.names, n => {
        const tr = document.createElement("tr");
        tr.dataset.name = n.name;
        if (n.paused) tr.className = "paused";
        tr.appendChild(cell(n.name + (n.paused ? " (paused)" : ""), "name"));
        for (const key of ["queued", "running", "reserved", "succeeded", "failed", "timed_out", "cancelled"]) tr.appendChild(cell(n[key], key));
        tr.appendChild(cell(seconds(n.oldest_queued_age_s), "age"));
        const actions = document.createElement("td");
        actions.appendChild(n.paused
          ? button("Resume", () => act("/dashboard/api/names/" + encodeURIComponent(n.name) + "/resume", {}, "resumed " + n.name), "resume")
          : button("Pause", () => act("/dashboard/api/names/" + encodeURIComponent(n.name) + "/pause", {}, "paused " + n.name), "pause"));
        tr.appendChild(actions);
        return tr;
      }, "no tasks yet");
      fillTable("consumers", s.consumers, c => {
        const tr = document.createElement("tr");
        tr.dataset.pid = c.pid;
        for (const value of [c.host, c.pid, c.process, c.identity, c.threads, c.busy, c.reserved, c.prefetch, c.completed, c.tasks.join(", ")]) tr.appendChild(cell(value));
        if (c.quarantined) tr.className = "bad";
        return tr;
      }, "no consumer connected");
      fillTable("failures", s.failures, f => {
        const tr = document.createElement("tr");
        for (const value of [clock(f.at), f.id, f.name, f.status, f.attempts, f.error]) tr.appendChild(cell(value));
        return tr;
      }, "no failures");
      fillTable("dead-letters", s.dead_letters, d => {
        const tr = document.createElement("tr");
        tr.dataset.id = d.id;
        for (const value of [d.id, d.name, d.attempts, d.reason]) tr.appendChild(cell(value));
        const actions = document.createElement("td");
        actions.appendChild(button("Requeue", () => act("/dashboard/api/dead-letters/requeue", { id: d.id }, "requeued " + d.id), "requeue"));
        actions.appendChild(button("Purge", () => act("/dashboard/api/dead-letters/purge", { id: d.id }, "purged " + d.id), "danger purge"));
        tr.appendChild(actions);
        return tr;
      }, "no dead letters");
      const j = s.journal;
      text("journal", j ? "journal " + j.directory + ": " + (j.size_bytes / 1048576).toFixed(1) + " MiB, fsync " + j.fsync : "in memory: no journal");
      chart($("throughput-chart"), s.history, [["throughput", "#2b6cb0", "tasks/s"]], v => v.toPrecision(3) + "/s");
      chart($("latency-chart"), s.history, [["p50_ms", "#2f855a", "p50"], ["p99_ms", "#c05621", "p99"]],
            v => v >= 1000 ? (v / 1000).toPrecision(3) + " s" : v.toPrecision(3) + " ms");
    }

    function chart(canvas, points, series, format) {
      const g = canvas.getContext("2d");
      const w = canvas.width, h = canvas.height, left = 56, bottom = 20;
      g.clearRect(0, 0, w, h);
      g.font = "11px sans-serif";
      g.fillStyle = "#555";
      if (points.length < 2) { g.fillText("gathering…", left, h / 2); return; }
      let max = 0;
      for (const p of points) for (const [key] of series) if (p[key] > max) max = p[key];
      max = max > 0 ? max * 1.1 : 1;
      const t0 = points[0].t, t1 = points[points.length - 1].t, span = Math.max(1, t1 - t0);
      g.strokeStyle = "#ddd";
      g.beginPath(); g.moveTo(left, 4); g.lineTo(left, h - bottom); g.lineTo(w - 4, h - bottom); g.stroke();
      g.fillText(format(max), 2, 12);
      let legend = w - 8;
      for (const [, color, label] of series.slice().reverse()) {
        legend -= g.measureText(label).width;
        g.fillStyle = color;
        g.fillText(label, legend, 12);
        legend -= 12;
      }
      g.fillStyle = "#555";
      g.fillText("0", left - 12, h - bottom);
      g.fillText(Math.round(span) + " s", w - 40, h - 4);
      for (const [key, color] of series) {
        g.strokeStyle = color;
        g.lineWidth = 1.5;
        g.beginPath();
        let started = false;
        for (const p of points) {
          if (p[key] === undefined || p[key] === null) { started = false; continue; }
          const x = left + (w - left - 4) * (p.t - t0) / span;
          const y = (h - bottom) - (h - bottom - 4) * p[key] / max;
          if (started) g.lineTo(x, y); else g.moveTo(x, y);
          started = true;
        }
        g.stroke();
      }
    }

    async function act(path, body, done) {
      const message = $("message");
      try {
        const response = await fetch(path, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify(body),
        });
        const reply = await response.json().catch(() => ({}));
        if (!response.ok) throw new Error(reply.error ? reply.error.message : response.status + " " + response.statusText);
        message.textContent = done + (reply.count !== undefined ? " (" + reply.count + ")" : "");
        message.className = "good";
      } catch (error) {
        message.textContent = "failed: " + error.message;
        message.className = "bad";
      }
    }

    function connect() {
      const events = new EventSource("/dashboard/events");
      events.addEventListener("snapshot", e => render(JSON.parse(e.data)));
      events.onerror = () => { $("connection").textContent = "reconnecting…"; $("connection").className = "pill"; };
    }

    document.addEventListener("DOMContentLoaded", () => {
      $("requeue-all").disabled = !canAdmin;
      $("purge-all").disabled = !canAdmin;
      $("requeue-all").addEventListener("click", () => act("/dashboard/api/dead-letters/requeue", {}, "requeued all dead letters"));
      $("purge-all").addEventListener("click", () => { if (confirm("Purge every dead letter?")) act("/dashboard/api/dead-letters/purge", {}, "purged all dead letters"); });
      $("sign-out").addEventListener("click", async () => {
        await fetch("/dashboard/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } });
        location.href = "/";
      });
      fetch("/dashboard/api/snapshot", { credentials: "same-origin" }).then(r => r.json()).then(render).catch(() => {});
      connect();
    });
    """#
}
