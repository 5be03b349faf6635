import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import StarpipePostgres

/// The read-only dashboard (Hummingbird 2): `GET /` one self-contained page (``DashboardPage``: inline CSS and JS,
/// nothing fetched from elsewhere) with the ledger's data inlined so it renders at load, and `GET /api/dashboard`
/// the same data as JSON (``DashboardLedger``), which the page polls; `POST /api/row-origin` looks up where one
/// production row came from (``DashboardLedger/rowOrigin(target:key:)``), its key in the JSON body. No route changes
/// anything. Access is decided by ``DashboardAccess``. A swift-service-lifecycle `Service`: it listens until graceful shutdown.
public struct DashboardServer: Service {
    /// Where to listen. The CLI defaults the host to `127.0.0.1`.
    public let host: String
    public let port: Int
    public let access: DashboardAccess
    public let ledger: DashboardLedger
    /// Seconds between the page's refreshes of its data. Defaults to 10.
    public let refreshSeconds: Int
    private let logger: Logger

    /// Throws for a malformed `HOST:PORT`, and for a host beyond loopback without a token.
    public init(listen: String, token: String?, ledger: DashboardLedger, refreshSeconds: Int = 10, logger: Logger) throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw DashboardServerError("--dashboard-listen takes HOST:PORT, e.g. 127.0.0.1:9465")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "127.0.0.1" : host
        self.port = port
        self.access = try DashboardAccess(host: self.host, token: token)
        self.ledger = ledger
        self.refreshSeconds = max(1, refreshSeconds)
        self.logger = logger
    }

    public func run() async throws {
        // The ledger query is a blocking libpq call: it runs on this pool, never on the server's event loop.
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let ledger = self.ledger
        let refresh = refreshSeconds
        let router = Router()
        router.add(middleware: DashboardAccessMiddleware<BasicRequestContext>(access: access))
        router.get("/") { _, _ -> Response in
            let data = try await pool.runIfActive { try? ledger.read() }
            return Self.response(.ok, DashboardPage.html(data: data, refreshSeconds: refresh), contentType: "text/html; charset=utf-8")
        }
        router.get("/api/dashboard") { _, _ -> Response in
            guard let data = try await pool.runIfActive({ try? ledger.read() }) else {
                return Self.response(.serviceUnavailable, #"{"error": "the ledger cannot be read"}"#, contentType: "application/json")
            }
            return Self.response(.ok, data, contentType: "application/json")
        }
        // The row lookup: a POST of JSON, so the key is never in a URL, a log line or the browser's history, and
        // no cross-site form can send it (a JSON body needs a preflight the server does not grant). The answer holds
        // no key and no value; a refusal is starpipe's own message, anything else only its SQLSTATE.
        router.post("/api/row-origin") { request, _ -> Response in
            var request = request
            guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
                return Self.jsonError(.unsupportedMediaType, "the row origin takes a JSON body: {\"target\": …, \"key\": {…}}")
            }
            guard let body = try? await request.collectBody(upTo: Self.maxLookupBytes) else {
                return Self.jsonError(.contentTooLarge, "a row-origin request takes at most \(Self.maxLookupBytes) bytes")
            }
            guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
                  let target = object["target"] as? String, let key = object["key"] as? [String: String] else {
                return Self.jsonError(.badRequest, "the row origin takes {\"target\": \"schema.table\", \"key\": {\"column\": \"value\"}}")
            }
            do {
                let json = try await pool.runIfActive { try ledger.rowOrigin(target: target, key: key) }
                return Self.response(.ok, json, contentType: "application/json")
            } catch let refusal as DashboardServerError {
                return Self.jsonError(.unprocessableContent, refusal.description)
            } catch let error as PostgresError {
                return Self.jsonError(.serviceUnavailable, "the lookup failed (SQLSTATE \(error.sqlState ?? "none"))")
            } catch {
                return Self.jsonError(.serviceUnavailable, "the lookup failed")
            }
        }
        let logger = self.logger
        let address = "\(host):\(port)"
        let requiresToken = access.requiresToken
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .warning)
        let application = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                logger.info("serving dashboard", metadata: [
                    "starpipe.listen": "\(channel.localAddress.map { "\($0)" } ?? address)/",
                    "starpipe.token_required": "\(requiresToken)",
                ])
            },
            logger: quiet)
        do {
            try await application.run()
        } catch {
            try? await pool.shutdownGracefully()
            throw DashboardServerError("cannot serve the dashboard on \(address): \(error)")
        }
        try? await pool.shutdownGracefully()
    }

    /// The largest row-origin request body: a table name and a few key values.
    static let maxLookupBytes = 64 * 1024

    /// `{"error": message}` with `status`.
    static func jsonError(_ status: HTTPResponse.Status, _ message: String) -> Response {
        let body = (try? JSONSerialization.data(withJSONObject: ["error": message])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return response(status, body, contentType: "application/json")
    }

    static func response(_ status: HTTPResponse.Status, _ body: String, contentType: String, headers extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [
            .contentType: contentType,
            .cacheControl: "no-store",
            .init("X-Content-Type-Options")!: "nosniff",
            .init("Referrer-Policy")!: "no-referrer",
            .contentSecurityPolicy: "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
