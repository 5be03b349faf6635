import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Hands a GET's response to the thread that asked for it, one body part at a time: the next part is read
/// from the socket only after the consumer has taken this one, so a download never sits in memory whole.
final class S3DownloadDelegate: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = Void

    enum Event {
        case head(HTTPResponseHead)
        case part(ByteBuffer, EventLoopPromise<Void>)
        case end
        case failed(any Error)
    }

    private let condition = NSCondition()
    private var events: [Event] = []

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        post(.head(head))
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let promise = task.eventLoop.makePromise(of: Void.self)
        post(.part(buffer, promise))
        return promise.futureResult
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {
        post(.failed(error))
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        post(.end)
    }

    /// The next event, waiting for it.
    func next() -> Event {
        condition.lock()
        defer { condition.unlock() }
        while events.isEmpty { condition.wait() }
        return events.removeFirst()
    }

    private func post(_ event: Event) {
        condition.lock()
        events.append(event)
        condition.signal()
        condition.unlock()
    }
}
