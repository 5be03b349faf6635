import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// Serves `GET /metrics` in the Prometheus text format (version 0.0.4): the ledger's metrics, read from the
/// database at each scrape (``LedgerMetrics``), then this process's own (``WorkerMetrics``). Any other path is 404,
/// any other method 405. A swift-service-lifecycle `Service`: it listens until graceful shutdown.
public struct MetricsServer: Service {
    /// Where to listen, `HOST:PORT`. The CLI defaults it to `127.0.0.1:9464`.
    public let host: String
    public let port: Int
    public let ledger: LedgerMetrics
    public let process: WorkerMetrics
    private let logger: Logger

    public init(listen: String, ledger: LedgerMetrics, process: WorkerMetrics, logger: Logger) throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw MetricsServerError("--metrics-listen takes HOST:PORT, e.g. 127.0.0.1:9464")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "127.0.0.1" : host
        self.port = port
        self.ledger = ledger
        self.process = process
        self.logger = logger
    }

    /// Renders one scrape: the ledger's metrics, then the process's.
    public func scrape() -> String {
        let ledger = self.ledger.exposition()
        let process = self.process.exposition()
        return ledger + (ledger.hasSuffix("\n") || ledger.isEmpty ? "" : "\n") + process
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // The ledger query is a blocking libpq call: it runs on this pool, never on the event loop.
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let server = self
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 16)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(server: server, pool: pool))
                    }
                }
                .bind(host: host, port: port).get()
        } catch {
            try? await pool.shutdownGracefully()
            try? await group.shutdownGracefully()
            throw MetricsServerError("cannot listen on \(host):\(port) for metrics: \(error)")
        }
        logger.info("serving metrics", metadata: ["starpipe.listen": "\(channel.localAddress.map { "\($0)" } ?? "\(host):\(port)")/metrics"])
        try? await gracefulShutdown()
        try? await channel.close()
        try? await pool.shutdownGracefully()
        try? await group.shutdownGracefully()
    }
}

/// Why the metrics server could not start.
public struct MetricsServerError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// One HTTP/1.1 connection of the metrics server.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: MetricsServer
    private let pool: NIOThreadPool
    private var request: HTTPRequestHead?

    init(server: MetricsServer, pool: NIOThreadPool) {
        self.server = server
        self.pool = pool
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            guard head.method == .GET || head.method == .HEAD else {
                respond(context, head: head, status: .methodNotAllowed, body: "only GET\n")
                return
            }
            guard path == "/metrics" else {
                respond(context, head: head, status: .notFound, body: "see /metrics\n")
                return
            }
            let server = self.server
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            pool.runIfActive(eventLoop: context.eventLoop) { server.scrape() }.whenComplete { result in
                let (handler, context) = bound.value
                switch result {
                case .success(let text):
                    handler.respond(context, head: head, status: .ok, body: text,
                                    contentType: "text/plain; version=0.0.4; charset=utf-8")
                case .failure:
                    handler.respond(context, head: head, status: .serviceUnavailable, body: "shutting down\n")
                }
            }
        }
    }

    private func respond(_ context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus, body: String,
                         contentType: String = "text/plain; charset=utf-8") {
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(buffer.readableBytes)")
        let keepAlive = head.isKeepAlive
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
