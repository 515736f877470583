/// The dashboard's files, in the binary (not SwiftPM resources, which are lost once the binary
/// is installed elsewhere): two pages here, the script in DashboardScript.swift and the style in
/// DashboardStyle.swift. Nothing comes from elsewhere: the page works offline, and its content
/// security policy allows only this gateway's own script, style and connections. Every value
/// from the broker reaches the page as text (`textContent`), never as markup.
enum DashboardAssets {
    static func dashboard(csrf: String, who: String, admin: Bool) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="csrf-token" content="\(csrf)">
        <meta name="can-admin" content="\(admin)">
        <title>Conveyor</title>
        <link rel="stylesheet" href="/dashboard/app.css">
        <script src="/dashboard/app.js" defer></script>
        </head>
        <body>
        <header>
          <h1>Conveyor</h1>
          <span id="connection" class="pill">connecting…</span>
          <span id="uptime"></span>
          <span class="spacer"></span>
          <span id="who">\(escape(who))\(admin ? "" : " (read only)")</span>
          <button id="sign-out" type="button">Sign out</button>
        </header>
        <main>
          <section class="tiles">
            <div class="tile"><span class="label">queued</span><span class="value" id="queued-total">–</span></div>
            <div class="tile"><span class="label">running</span><span class="value" id="running-total">–</span></div>
            <div class="tile"><span class="label">reserved</span><span class="value" id="reserved-total">–</span></div>
            <div class="tile"><span class="label">done / s (10 s)</span><span class="value" id="rate">–</span></div>
            <div class="tile"><span class="label">completed</span><span class="value" id="completed-total">–</span></div>
            <div class="tile"><span class="label">dead letters</span><span class="value" id="dead-total">–</span></div>
            <div class="tile"><span class="label">consumers</span><span class="value" id="consumer-count">–</span></div>
          </section>
          <section class="charts">
            <figure><figcaption>Throughput, tasks/s (last 5 min)</figcaption><canvas id="throughput-chart" width="560" height="160"></canvas></figure>
            <figure><figcaption>Latency, ms: p50 and p99 (last 5 min)</figcaption><canvas id="latency-chart" width="560" height="160"></canvas></figure>
          </section>
          <p id="message" role="status"></p>
          <section>
            <h2>Task names</h2>
            <table id="names"><thead><tr><th>name</th><th>queued</th><th>running</th><th>reserved</th><th>succeeded</th><th>failed</th><th>timed out</th><th>cancelled</th><th>oldest queued</th><th></th></tr></thead><tbody></tbody></table>
          </section>
          <section>
            <h2>Consumers</h2>
            <table id="consumers"><thead><tr><th>host</th><th>pid</th><th>process</th><th>identity</th><th>threads</th><th>busy</th><th>reserved</th><th>prefetch</th><th>completed</th><th>serves</th></tr></thead><tbody></tbody></table>
          </section>
          <section>
            <h2>Recent failures</h2>
            <table id="failures"><thead><tr><th>when</th><th>id</th><th>name</th><th>status</th><th>attempts</th><th>error</th></tr></thead><tbody></tbody></table>
          </section>
          <section>
            <h2>Dead letters <button id="requeue-all" type="button" class="admin">Requeue all</button> <button id="purge-all" type="button" class="admin danger">Purge all</button></h2>
            <table id="dead-letters"><thead><tr><th>id</th><th>name</th><th>attempts</th><th>reason</th><th></th></tr></thead><tbody></tbody></table>
          </section>
          <footer id="journal"></footer>
        </main>
        </body>
        </html>
        """
    }

    static func signIn(problem: String?) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Conveyor: sign in</title>
        <link rel="stylesheet" href="/dashboard/app.css">
        </head>
        <body class="sign-in">
        <form method="post" action="/dashboard/login">
          <h1>Conveyor</h1>
          <p>Sign in with a token of the gateway's <code>--token-file</code> (read scope; actions need admin).</p>
          \(problem.map { #"<p class="problem" id="problem">"# + escape($0) + "</p>" } ?? "")
          <label for="token">Token</label>
          <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
          <button type="submit" id="sign-in">Sign in</button>
        </form>
        </body>
        </html>
        """
    }

    /// Text made safe for HTML.
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
