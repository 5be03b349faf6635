import AsyncHTTPClient
import Foundation
import Glibc
import NIOCore
import NIOHTTP1
import StarpipePostgres
import Testing

/// Issue 14's dashboard after a real worker run with one job broken on purpose (its data file truncated): the page,
/// rendered by headless Chromium, shows the broken job red with its reason, its timeline, and the throughput plot;
/// the row-origin form, driven in the browser, names the jobs, files and rows behind a production row; beyond loopback
/// a token is required; a PHI canary planted in the source appears in no page and no JSON.
@Suite("Dashboard: the worker's read-only web page", .serialized)
struct DashboardTests {
    static let canary = "CANARY-dash-kqvw"
    static let cityCanary = "CANARY-dash-c1ty"
    static let token = "dash-test-token-0123456789"

    private func get(_ url: String, headers: [(String, String)] = []) async throws -> (status: HTTPResponseStatus, headers: HTTPHeaders, body: String) {
        var request = HTTPClientRequest(url: url)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 16 << 20)
        return (response.status, response.headers, String(buffer: body))
    }

    /// Waits (bounded) until the dashboard answers at `base`; false if it never does.
    private func waitForDashboard(_ base: String, headers: [(String, String)] = []) async -> Bool {
        let end = Date().addingTimeInterval(60)
        while Date() < end {
            if let response = try? await get(base + "/api/dashboard", headers: headers), response.status == .ok { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return false
    }

    /// `text` as the DOM serializer writes it in an element's content.
    private func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\u{00A0}", with: "&nbsp;")
    }

    /// The serialized element that starts with `opening`, up to the end of its table cell.
    private func cell(_ dom: String, _ opening: String) -> String? {
        guard let start = dom.range(of: opening) else { return nil }
        let rest = dom[start.lowerBound...]
        return String(rest[..<(rest.range(of: "</td>")?.lowerBound ?? rest.endIndex)])
    }

    @Test("after a run with one job broken: the rendered page names the failing job, red, with where it stopped and why, and where a production row came from; never a value")
    func brokenJobOnThePage() async throws {
        let demo = try SyntheaPipeline.withBrokenJob(canary: Self.canary, runID: "dash")
        let pipeline = try demo.pipeline()
        let port = try LoopbackPort.free()
        let base = "http://127.0.0.1:\(port)"
        let worker = try WorkerProcess(database: demo.pipelineURL, bucket: demo.bucketDirectory,
                                       arguments: ["--dashboard-listen", "127.0.0.1:\(port)", "--poll-interval", "0.5"])
        #expect(try demo.waitUntilSettled(pipeline, jobs: 2), "the jobs did not settle: \(worker.log())")
        #expect(await waitForDashboard(base), "the dashboard never answered: \(worker.log())")
        let broken = try #require(try pipeline.query(
            "SELECT job_id::text, status, stage, error FROM starpipe.job WHERE table_name = 'allergies'").rows.first)
        let good = try #require(try pipeline.query(
            "SELECT job_id::text, status, (rows_inserted + rows_updated)::text FROM starpipe.job WHERE table_name = 'patients'").rows.first)
        #expect(broken[1] == "FAILED" && good[1] == "SUCCESS", "\(broken) \(good)")
        let reason = try #require(broken[3])
        #expect(reason.contains("mismatch"), "\(reason)")
        #expect(try demo.count("SELECT count(*) FROM production.patients WHERE first_name = '\(Self.canary)'", on: pipeline) == 1,
                "the canary must reach production, or its absence below proves nothing")

        // The JSON: the grid's allergies cell is the broken job, FAILED at its stage, with its reason.
        let api = try await get(base + "/api/dashboard")
        #expect(api.status == .ok)
        #expect(api.headers.first(name: "content-type")?.hasPrefix("application/json") == true)
        let data = try #require(try JSONSerialization.jsonObject(with: Data(api.body.utf8)) as? [String: Any])
        let grid = try #require(data["grid"] as? [[String: Any]])
        let cellData = try #require(grid.first { $0["table"] as? String == "allergies" })
        #expect("\(cellData["job_id"]!)" == broken[0]! && cellData["status"] as? String == "FAILED")
        #expect(cellData["stage"] as? String == broken[2]! && cellData["error"] as? String == reason)
        let throughput = try #require(data["throughput"] as? [[String: Any]])
        #expect(throughput.count == 24)
        #expect(throughput.reduce(0) { $0 + ($1["rows"] as? Int ?? 0) } == Int(good[2]!)!)
        // Read-only: nothing but GET.
        var post = HTTPClientRequest(url: base + "/api/dashboard")
        post.method = .POST
        let posted = try await HTTPClient.shared.execute(post, timeout: .seconds(30))
        #expect(posted.status != .ok && posted.status.code >= 400, "\(posted.status)")

        // A dead-lettered job too (its only attempt nacked, in one transaction the worker cannot claim into).
        try pipeline.execute("""
            DO $$
            DECLARE
                v_job bigint;
                v_fence bigint;
            BEGIN
                PERFORM starpipe.set_setting('max_attempts', '1');
                SELECT r.job_id INTO v_job FROM starpipe.register(
                    (SELECT manifest || '{"client": "dlqdemo", "run_id": "dlq"}' FROM starpipe.job WHERE table_name = 'allergies'),
                    'm/dlq', 'd/dlq') r;
                SELECT c.fence INTO v_fence FROM starpipe.claim('dashboard-test') c WHERE c.job_id = v_job;
                PERFORM starpipe.nack(v_job, v_fence, 'bucket read timed out');
            END $$
            """)
        let dead = try #require(try pipeline.query("SELECT job_id::text FROM starpipe.job WHERE client = 'dlqdemo' AND status = 'DEAD'").scalar)

        // The page as Chromium renders it, after its script ran.
        let dom = try HeadlessChromium.dumpDOM(base + "/")
        #expect(dom.contains(#"<body data-rendered="true">"#), "\(dom.prefix(3000))")
        let brokenCell = try #require(cell(dom, #"<div class="cell status-failed" id="cell-\#(demo.client)-allergies""#), "\(dom)")
        #expect(brokenCell.contains(#"data-job="\#(broken[0]!)" data-status="FAILED""#), "\(brokenCell)")
        #expect(brokenCell.contains(#"<div class="reason">\#(escaped(reason))</div>"#), "\(brokenCell)")
        #expect(brokenCell.contains("job \(broken[0]!) · \(broken[2]!) · "), "\(brokenCell)")
        let goodCell = try #require(cell(dom, #"<div class="cell status-success" id="cell-\#(demo.client)-patients""#), "\(dom)")
        #expect(!goodCell.contains(#"class="reason""#))
        // Red: the failed class is the one the page's CSS colours red.
        #expect(dom.contains(".status-failed, .status-dead { background: var(--bad); }") && dom.contains("--bad: #d93025"))
        // Its timeline, ending FAILED, with the reason beside it.
        let rowStart = try #require(dom.range(of: #"<tr id="job-\#(broken[0]!)" class="job status-failed-row">"#), "\(dom)")
        let rest = dom[rowStart.lowerBound...]
        let rowText = String(rest[..<(rest.range(of: "</tr>")?.upperBound ?? rest.endIndex)])
        #expect(rowText.contains("<td>\(broken[0]!)</td>"), "\(rowText)")
        #expect(rowText.contains(#"<div class="segment status-failed" "#) && rowText.contains(">failed</div>"), "\(rowText)")
        #expect(rowText.contains(#"<span class="reason-text">\#(escaped(reason))</span>"#), "\(rowText)")
        // The throughput plot: one bar per hour, adding up to the rows promoted.
        let bars = dom.components(separatedBy: #"<rect class="bar" "#).dropFirst()
        #expect(bars.count == 24)
        let plotted = bars.compactMap { bar -> Int? in
            guard let range = bar.range(of: #"data-rows=""#) else { return nil }
            return Int(bar[range.upperBound...].prefix { $0.isNumber })
        }
        #expect(plotted.count == 24 && plotted.reduce(0, +) == Int(good[2]!)!, "\(plotted)")
        #expect(dom.contains(#"<p class="empty">none</p>"#), "drift is empty in this demo")
        // The DLQ: the dead job red in the grid, and listed with its replay button disabled (read-only).
        let deadCell = try #require(cell(dom, #"<div class="cell status-dead" id="cell-dlqdemo-allergies""#), "\(dom)")
        #expect(deadCell.contains(#"<div class="reason">bucket read timed out</div>"#), "\(deadCell)")
        let dlqStart = try #require(dom.range(of: #"<tr id="dlq-\#(dead)">"#), "\(dom)")
        let dlqRow = String(dom[dlqStart.lowerBound...].prefix { $0 != "\n" }.split(separator: "</tr>").first ?? "")
        #expect(dlqRow.contains(#"<button disabled="" title="Read-only dashboard: replay with `starpipe dlq replay \#(dead)`">replay</button>"#),
                "\(dlqRow)")

        // A screenshot for people, under .starpipe/.
        let directory = TestServer.repo.appendingPathComponent(".starpipe")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let png = directory.appendingPathComponent("dashboard.png")
        try? FileManager.default.removeItem(at: png)
        try HeadlessChromium.screenshot(base + "/", to: png.path)
        let image = try Data(contentsOf: png)
        #expect(image.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "not a PNG")
        #expect(image.count > 20_000, "a \(image.count)-byte screenshot is blank")

        // Where a production row came from, asked through the page. The canary's patient moves to a city that is
        // a canary too (day 2), so its lineage has two jobs: the update and, earlier, the insert.
        let patient = try #require(try pipeline.query("SELECT patient_id::text FROM production.patients WHERE first_name = $1",
                                                      [Self.canary]).scalar)
        try demo.source().execute(#"UPDATE public.patients SET "CITY" = '\#(Self.cityCanary)' WHERE "Id" = '\#(patient)'"#)
        try demo.extract(tables: ["patients"], runID: "dash-day2")
        #expect(try demo.waitUntilSettled(pipeline, jobs: 4), "day 2 did not settle: \(worker.log())")
        let jobs = try pipeline.query("""
            SELECT j.job_id::text, j.data_key, r._source_row::text FROM starpipe.job j
              JOIN raw_\(demo.client).patients r ON r._ingestion_id = j.job_id AND r."Id" = $1
             WHERE j.table_name = 'patients' AND j.status = 'SUCCESS' ORDER BY j.job_id
            """, [patient]).rows
        #expect(jobs.count == 2 && jobs.first?[0] == good[0], "\(jobs)")
        let (day1, day2) = (try #require(jobs.first), try #require(jobs.last))
        let browser = try ChromiumSession()
        defer { browser.close() }
        try browser.open(base + "/")
        #expect(try browser.waitUntil(#"document.body.getAttribute("data-rendered") === "true""#), "the page never rendered")
        let targets = try browser.evaluate(##"[...document.querySelectorAll("#origin-target option")].map(o => o.value)"##) as? [String]
        #expect(targets?.contains("production.patients") == true, "\(targets ?? [])")
        /// Chooses `target`, types `value` into each key input and clicks; returns the key columns offered, the
        /// result's state and the DOM then.
        func lookUp(_ target: String, _ value: String) throws -> (columns: [String], state: String, dom: String) {
            let literal = String(decoding: try JSONSerialization.data(withJSONObject: [target, value]), as: UTF8.self)
            let columns = try browser.evaluate("""
                (() => {
                  const [target, value] = \(literal);
                  const select = document.getElementById("origin-target");
                  select.value = target;
                  select.dispatchEvent(new Event("change"));
                  const inputs = [...document.querySelectorAll("#origin-keys input")];
                  inputs.forEach(input => { input.value = value; });
                  document.getElementById("origin-submit").click();
                  return inputs.map(input => input.getAttribute("data-column"));
                })()
                """) as? [String] ?? []
            #expect(try browser.waitUntil(#"["done", "error"].includes(document.getElementById("origin-result").getAttribute("data-state"))"#),
                    "the lookup never answered")
            let state = try browser.evaluate(#"document.getElementById("origin-result").getAttribute("data-state")"#) as? String ?? ""
            let cleared = try browser.evaluate(##"[...document.querySelectorAll("#origin-keys input")].every(i => i.value === "")"##) as? Bool
            #expect(cleared == true, "the typed key stayed in the form")
            return (columns, state, try browser.evaluate("document.documentElement.outerHTML") as? String ?? "")
        }
        /// The text of the element with `id`, up to its first child element.
        func text(_ dom: String, _ id: String) -> String? {
            guard let start = dom.range(of: #"id="\#(id)">"#) else { return nil }
            return String(dom[start.upperBound...].prefix { $0 != "<" })
        }
        let found = try lookUp("production.patients", patient)
        #expect(found.columns == ["patient_id"] && found.state == "done", "\(found.columns) \(found.state)")
        #expect(text(found.dom, "origin-last-job") == day2[0], "\(found.dom)")
        #expect(text(found.dom, "origin-last-file") == day2[1], "\(found.dom)")
        #expect(text(found.dom, "origin-last-row") == day2[2], "\(found.dom)")
        #expect(text(found.dom, "origin-last-at")?.hasSuffix("UTC") == true)
        // The earlier job that touched it: day 1 inserted it, from its own file and row.
        let entries = found.dom.components(separatedBy: #"<tr class="origin-entry" "#).dropFirst().map { String($0.prefix(while: { $0 != "\n" })) }
        #expect(entries.count == 2, "\(entries)")
        #expect(entries.first?.hasPrefix(#"data-job="\#(day2[0]!)" data-action="updated">"#) == true, "\(entries)")
        #expect(entries.first?.contains("<td>city</td>") == true, "the changed column is named: \(entries)")
        #expect(entries.last?.hasPrefix(#"data-job="\#(day1[0]!)" data-action="inserted">"#) == true, "\(entries)")
        #expect(entries.last?.contains(#"<td class="origin-file">\#(day1[1]!)</td><td class="origin-row">\#(day1[2]!)</td>"#) == true,
                "\(entries)")
        // A key nobody promoted, and one its column's type cannot hold: answered, never repeated.
        let nobody = "00000000-0000-4000-8000-00000000beef"
        let absent = try lookUp("production.patients", nobody)
        #expect(absent.state == "done" && absent.dom.contains(#"id="origin-none""#), "\(absent.state)")
        let typed = "CANARY-typed-key-9x"
        let refused = try lookUp("production.patients", typed)
        #expect(refused.state == "error" && text(refused.dom, "origin-error")?.contains("patient_id uuid") == true,
                "\(text(refused.dom, "origin-error") ?? refused.dom)")
        for (name, lookup) in [("found", found), ("absent", absent), ("refused", refused)] {
            for secret in [Self.canary, Self.cityCanary, patient, nobody, typed] {
                #expect(!lookup.dom.contains(secret), "the \(name) lookup's page shows a key or a value")
            }
        }
        // The endpoint itself: JSON only, POST only, and a refusal that does not echo what was sent.
        var form = HTTPClientRequest(url: base + "/api/row-origin")
        form.method = .POST
        form.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        form.body = .bytes(ByteBuffer(string: "target=production.patients&patient_id=\(patient)"))
        #expect(try await HTTPClient.shared.execute(form, timeout: .seconds(30)).status == .unsupportedMediaType)
        var unknown = HTTPClientRequest(url: base + "/api/row-origin")
        unknown.method = .POST
        unknown.headers.add(name: "Content-Type", value: "application/json")
        unknown.body = .bytes(ByteBuffer(string: #"{"target": "production.\#(typed)", "key": {"patient_id": "\#(patient)"}}"#))
        let unknownResponse = try await HTTPClient.shared.execute(unknown, timeout: .seconds(30))
        let unknownBody = String(buffer: try await unknownResponse.body.collect(upTo: 1 << 20))
        #expect(unknownResponse.status == .unprocessableEntity && unknownBody.contains("promotes into"), "\(unknownBody)")
        #expect(!unknownBody.contains(typed) && !unknownBody.contains(patient))
        #expect(try await get(base + "/api/row-origin").status.code >= 400)

        let page = try await get(base + "/")
        #expect(page.status == .ok && page.headers.first(name: "content-type")?.hasPrefix("text/html") == true)
        #expect(page.headers.first(name: "content-security-policy")?.contains("default-src 'none'") == true)
        for (name, text) in [("page", page.body), ("json", api.body), ("dom", dom)] {
            #expect(!text.contains(Self.canary), "the canary leaked into the \(name)")
        }
        worker.signal(SIGTERM)
        let exit = worker.waitForExit(timeout: 60)
        let log = worker.log()
        #expect(exit == 0, "\(log)")
        for secret in [patient, nobody, typed, Self.canary, Self.cityCanary] {
            #expect(!log.contains(secret), "a looked-up key or a value reached the worker's log")
        }
    }

    @Test("beyond loopback: no token, no start; with one, a request without it gets 401 and one with it 200")
    func tokenBeyondLoopback() async throws {
        let demo = try SyntheaPipeline.withBrokenJob(canary: Self.canary, runID: "dash-token")
        let pipeline = try demo.pipeline()
        // Without a token a worker refuses to listen on 0.0.0.0, from the flag or the environment.
        let refusedPort = try LoopbackPort.free()
        let refused = try WorkerProcess(database: demo.pipelineURL, bucket: demo.bucketDirectory,
                                        arguments: ["--dashboard-listen", "0.0.0.0:\(refusedPort)", "--until-idle"])
        #expect(refused.waitForExit(timeout: 60).map { $0 != 0 } == true)
        let refusal = refused.log()
        #expect(refusal.contains("beyond loopback") && refusal.contains("--dashboard-token"), "\(refusal)")
        let refusedByEnvironment = try WorkerProcess(database: demo.pipelineURL, bucket: demo.bucketDirectory, arguments: ["--until-idle"],
                                                     environment: ["STARPIPE_DASHBOARD_LISTEN": "0.0.0.0:\(refusedPort)"])
        #expect(refusedByEnvironment.waitForExit(timeout: 60).map { $0 != 0 } == true)
        #expect(refusedByEnvironment.log().contains("beyond loopback"))
        #expect(try pipeline.query("SELECT count(*) FROM starpipe.job").scalar == "0", "a refused worker did no work")

        let port = try LoopbackPort.free()
        let base = "http://127.0.0.1:\(port)"
        let worker = try WorkerProcess(database: demo.pipelineURL, bucket: demo.bucketDirectory,
                                       arguments: ["--dashboard-listen", "0.0.0.0:\(port)", "--poll-interval", "0.5"],
                                       environment: ["STARPIPE_DASHBOARD_TOKEN": Self.token])
        #expect(try demo.waitUntilSettled(pipeline, jobs: 2), "the jobs did not settle: \(worker.log())")
        let bearer = [("Authorization", "Bearer \(Self.token)")]
        #expect(await waitForDashboard(base, headers: bearer), "the dashboard never answered: \(worker.log())")
        for path in ["/", "/api/dashboard", "/nothing-here"] {
            let anonymous = try await get(base + path)
            #expect(anonymous.status == .unauthorized, "\(path): \(anonymous.status)")
            #expect(anonymous.headers.first(name: "www-authenticate")?.hasPrefix("Bearer") == true)
            #expect(!anonymous.body.contains("allergies"), "a refused request got data: \(anonymous.body)")
        }
        for wrong in [[("Authorization", "Bearer \(Self.token)x")], [("Authorization", "Bearer dash-test-token-0123456788")],
                      [("Authorization", "Basic \(Self.token)")], [("Cookie", "starpipe_dashboard=\(Self.token.dropLast())")]] {
            #expect(try await get(base + "/api/dashboard", headers: wrong).status == .unauthorized, "\(wrong)")
        }
        #expect(try await get(base + "/?token=not-the-token-at-all").status == .unauthorized)
        let api = try await get(base + "/api/dashboard", headers: bearer)
        #expect(api.status == .ok && api.body.contains(#""status": "FAILED""#), "\(api.body.prefix(500))")
        // ?token= once, then the cookie it sets.
        let page = try await get(base + "/?token=\(Self.token)")
        #expect(page.status == .ok)
        let cookie = try #require(page.headers.first(name: "set-cookie"))
        #expect(cookie.hasPrefix("starpipe_dashboard=\(Self.token);") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
        #expect(try await get(base + "/api/dashboard", headers: [("Cookie", "starpipe_dashboard=\(Self.token)")]).status == .ok)
        // In the browser, with the token in the URL.
        let dom = try HeadlessChromium.dumpDOM(base + "/?token=\(Self.token)")
        #expect(dom.contains(#"<div class="cell status-failed" id="cell-\#(demo.client)-allergies""#), "\(dom.prefix(3000))")
        let deniedDOM = try HeadlessChromium.dumpDOM(base + "/")
        #expect(!deniedDOM.contains("cell-") && deniedDOM.contains("a token is required"), "\(deniedDOM.prefix(2000))")
        for text in [api.body, page.body, dom] {
            #expect(!text.contains(Self.canary))
        }
        worker.signal(SIGTERM)
        #expect(worker.waitForExit(timeout: 60) == 0, "\(worker.log())")
        #expect(!worker.log().contains(Self.token), "the token was logged")
    }
}
