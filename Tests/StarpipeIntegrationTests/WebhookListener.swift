import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A real HTTP listener on 127.0.0.1 (a port the system picks) that records every POST body it receives and
/// answers the first `failing` requests with 503, then 200: the webhook end of the alert tests.
final class WebhookListener: @unchecked Sendable {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let lock = NSLock()
    private var received: [String] = []
    private var failing: Int
    private var channel: (any Channel)?
    /// The port the listener is bound to.
    private(set) var port = 0

    init(failing: Int = 0) throws {
        self.failing = failing
        let listener = self
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Recorder(listener: listener))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        self.channel = channel
        port = channel.localAddress?.port ?? 0
    }

    /// Every body received, in order (failed ones too).
    var bodies: [String] {
        lock.lock()
        defer { lock.unlock() }
        return received
    }

    /// Records `body`; returns the status to answer with.
    fileprivate func record(_ body: String) -> HTTPResponseStatus {
        lock.lock()
        defer { lock.unlock() }
        received.append(body)
        if failing > 0 {
            failing -= 1
            return .serviceUnavailable
        }
        return .ok
    }

    deinit {
        try? channel?.close().wait()
        try? group.syncShutdownGracefully()
    }
}

private final class Recorder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let listener: WebhookListener
    var head: HTTPRequestHead?
    var body = ""

    init(listener: WebhookListener) { self.listener = listener }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = ""
        case .body(var buffer):
            body += buffer.readString(length: buffer.readableBytes) ?? ""
        case .end:
            let status = head?.method == .POST ? listener.record(body) : .methodNotAllowed
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: "0")
            headers.add(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
