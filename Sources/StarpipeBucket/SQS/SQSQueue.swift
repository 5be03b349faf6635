import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import StarpipeCore

/// The few SQS calls the worker makes (AWS JSON 1.0 protocol, SigV4 for `sqs`): long-poll receive, delete,
/// and change visibility. Calls block the calling thread; transient failures are retried like S3's.
public final class SQSQueue: Sendable {
    /// One received message.
    public struct Message: Sendable {
        public var id: String
        /// Changes with every receive; delete and visibility calls need the latest.
        public var receiptHandle: String
        public var body: String
        /// How many times SQS has handed this message out, this time included.
        public var receiveCount: Int
    }

    public let location: SQSLocation
    private let signer: SigV4Signer
    private let retry: S3RetryPolicy
    private let http: HTTPClient

    public init(location: SQSLocation, credentials: AWSCredentials, retry: S3RetryPolicy = S3RetryPolicy()) {
        self.location = location
        self.retry = retry
        signer = SigV4Signer(credentials: credentials, region: location.region, service: "sqs")
        // A long poll holds the request for up to 20 s.
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: .seconds(40))))
    }

    deinit {
        try? http.syncShutdown()
    }

    /// Waits up to `waitSeconds` (0-20) for up to `maxMessages` (1-10) messages, hidden from other receivers
    /// for `visibilitySeconds`.
    public func receive(maxMessages: Int, waitSeconds: Int, visibilitySeconds: Int) throws(StarpipeError) -> [Message] {
        let answer = try call("ReceiveMessage", [
            "QueueUrl": location.queueURL, "MaxNumberOfMessages": maxMessages, "WaitTimeSeconds": waitSeconds,
            "VisibilityTimeout": visibilitySeconds, "AttributeNames": ["ApproximateReceiveCount"],
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        ])
        guard let messages = answer["Messages"] as? [[String: Any]] else { return [] }
        return messages.compactMap { message in
            guard let id = message["MessageId"] as? String, let handle = message["ReceiptHandle"] as? String,
                  let body = message["Body"] as? String else { return nil }
            let attributes = message["Attributes"] as? [String: Any]
            let count = (attributes?["ApproximateReceiveCount"] as? String).flatMap(Int.init) ?? 1
            return Message(id: id, receiptHandle: handle, body: body, receiveCount: count)
        }
    }

    /// Deletes a message: it has been dealt with.
    public func delete(_ message: Message) throws(StarpipeError) {
        _ = try call("DeleteMessage", ["QueueUrl": location.queueURL, "ReceiptHandle": message.receiptHandle])
    }

    /// Hides a message for `seconds` more, from now.
    public func extendVisibility(_ message: Message, seconds: Int) throws(StarpipeError) {
        _ = try call("ChangeMessageVisibility", [
            "QueueUrl": location.queueURL, "ReceiptHandle": message.receiptHandle, "VisibilityTimeout": seconds,
        ])
    }

    private func call(_ action: String, _ parameters: [String: Any]) throws(StarpipeError) -> [String: Any] {
        let body: [UInt8]
        do {
            body = Array(try JSONSerialization.data(withJSONObject: parameters, options: [.sortedKeys]))
        } catch {
            throw StarpipeError(.configuration, "SQS \(action): request cannot be encoded")
        }
        do {
            return try retry.run { () throws(S3Failure) in try send(action, body) }
        } catch {
            var message = "SQS \(action) on queue \(location.queueURL) failed"
            let reasons = [error.code, error.status.map { "HTTP \($0)" }, error.transport].compactMap { $0 }
            if !reasons.isEmpty { message += ": " + reasons.joined(separator: ", ") }
            throw StarpipeError(error.isTransient ? .bucket : .bucketRefused, message)
        }
    }

    private func send(_ action: String, _ body: [UInt8]) throws(S3Failure) -> [String: Any] {
        var headers: [(name: String, value: String)] = [
            ("host", location.hostHeader), ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", "AmazonSQS.\(action)"),
        ]
        headers += signer.sign(.init(method: "POST", encodedPath: "/", headers: headers,
                                     payloadHash: SigV4Signer.hexSHA256(body)), at: Date())
        var httpHeaders = HTTPHeaders()
        for (name, value) in headers { httpHeaders.add(name: name, value: value) }
        let response: HTTPClient.Response
        do {
            let request = try HTTPClient.Request(url: location.origin + "/", method: .POST, headers: httpHeaders, body: .bytes(body))
            response = try http.execute(request: request).wait()
        } catch {
            throw S3Failure(status: nil, code: nil, transport: "connection: \(type(of: error))")
        }
        var buffer = response.body ?? ByteBuffer()
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            // "__type" is "com.amazonaws.sqs#QueueDoesNotExist" or "AWS.SimpleQueueService.NonExistentQueue".
            let type = (object["__type"] as? String).map { String($0.split(separator: "#").last ?? "") }
            throw S3Failure(status: status, code: type, transport: nil)
        }
        return object
    }
}
