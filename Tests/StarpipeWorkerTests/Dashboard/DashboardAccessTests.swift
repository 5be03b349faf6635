import Logging
@testable import StarpipeWorker
import Testing

@Suite("Dashboard access: loopback or token")
struct DashboardAccessTests {
    static let token = "0123456789abcdef-XYZ"

    @Test("loopback addresses are 127.0.0.0/8, ::1 and localhost; 0.0.0.0, :: and others are not")
    func loopback() {
        for host in ["127.0.0.1", "127.1.2.3", "::1", "localhost"] { #expect(DashboardAccess.isLoopback(host), "\(host)") }
        for host in ["0.0.0.0", "::", "10.0.0.1", "192.168.1.2", "127.0.0", "127.0.0.256", "128.0.0.1", "example.com", ""] {
            #expect(!DashboardAccess.isLoopback(host), "\(host)")
        }
    }

    @Test("beyond loopback without a token refuses to start; on loopback without one everything is admitted")
    func startup() throws {
        #expect(throws: DashboardServerError.self) { try DashboardAccess(host: "0.0.0.0", token: nil) }
        #expect(throws: DashboardServerError.self) { try DashboardServer(listen: "0.0.0.0:9465", token: nil,
                                                                          ledger: DashboardLedger(databaseURL: "postgresql://x/y"),
                                                                          logger: Logger(label: "test")) }
        let open = try DashboardAccess(host: "127.0.0.1", token: nil)
        #expect(!open.requiresToken && open.admits(nil) && open.admits("anything"))
        #expect(throws: DashboardServerError.self) { try DashboardAccess(host: "0.0.0.0", token: "short") }
        #expect(throws: DashboardServerError.self) { try DashboardAccess(host: "0.0.0.0", token: "0123456789abcdef; Path=/") }
        #expect(throws: DashboardServerError.self) { try DashboardServer(listen: "127.0.0.1", token: nil,
                                                                          ledger: DashboardLedger(databaseURL: "postgresql://x/y"),
                                                                          logger: Logger(label: "test")) }
    }

    @Test("with a token only that token is admitted, on any address")
    func token() throws {
        for host in ["0.0.0.0", "127.0.0.1"] {
            let access = try DashboardAccess(host: host, token: Self.token)
            #expect(access.requiresToken)
            #expect(access.admits(Self.token))
            for wrong in [nil, "", String(Self.token.dropLast()), Self.token + "0", "0123456789abcdef-XYz"] {
                #expect(!access.admits(wrong), "\(wrong ?? "nil")")
            }
        }
    }

    @Test("Authorization: Bearer TOKEN, case-insensitive scheme; other schemes carry none")
    func bearer() {
        #expect(DashboardAccess.bearer("Bearer abc") == "abc")
        #expect(DashboardAccess.bearer("bearer  abc ") == "abc")
        #expect(DashboardAccess.bearer("Basic abc") == nil)
        #expect(DashboardAccess.bearer("Bearer") == nil)
        #expect(DashboardAccess.bearer(nil) == nil)
    }

    @Test("the page inlines the data so that nothing in it can end the script; no external resource")
    func pageInlining() {
        let html = DashboardPage.html(data: #"{"grid": [{"error": "</script><img src=x onerror=alert(1)>"}]}"#, refreshSeconds: 7)
        #expect(!html.contains("</script><img"))
        #expect(html.contains(#"\u003c/script>\u003cimg src=x onerror=alert(1)>"#))
        #expect(html.contains("const REFRESH_SECONDS = 7;"))
        #expect(!html.contains("__STARPIPE_"))
        #expect(html.components(separatedBy: "http").count == 2 && html.contains(#""http://www.w3.org/2000/svg""#),
                "no URL but the SVG namespace")
        #expect(DashboardPage.html(data: nil, refreshSeconds: 10).contains(#"type="application/json">null</script>"#))
    }
}
