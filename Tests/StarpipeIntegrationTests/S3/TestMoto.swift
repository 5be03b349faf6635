import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import StarpipeBucket
import Testing

/// A private `moto_server` (moto[server] from PyPI: S3, SQS and IAM) for one test, on a random loopback port in
/// 55000-55999, with `S3_UPLOAD_PART_MIN_SIZE` lowered so multipart uploads are cheap. Started and stopped by
/// the test. `MOTO_SERVER` names the executable (ci/lib.sh installs it in a venv); defaults to `moto_server`.
final class TestMoto {
    private(set) var port: Int
    private var process: Process?
    /// Any key pair works while authentication is off (the default).
    static let anyCredentials = AWSCredentials(accessKeyID: "starpipe-test", secretAccessKey: "starpipe-test-secret")
    /// The smallest part moto accepts here (bytes); S3's own minimum is 5 MiB.
    static let partMinSize = 256

    init() throws {
        port = Int.random(in: 55_000...55_999)
        for _ in 0..<10 {
            do {
                try start()
                return
            } catch is PortTaken {
                port = Int.random(in: 55_000...55_999)
            }
        }
        throw TestFailure("no free port for moto_server after 10 tries")
    }

    deinit { stop() }

    private struct PortTaken: Error {}

    var endpoint: String { "http://127.0.0.1:\(port)" }

    static var executable: String { ProcessInfo.processInfo.environment["MOTO_SERVER"] ?? "moto_server" }

    private func start() throws {
        let process = Process.unblocked("/usr/bin/env", [
            "S3_UPLOAD_PART_MIN_SIZE=\(Self.partMinSize)", Self.executable, "-H", "127.0.0.1", "-p", "\(port)",
        ])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        for _ in 0..<200 {
            // A server that exits at once lost the port to another one; only our own answering counts.
            if !process.isRunning {
                self.process = nil
                throw PortTaken()
            }
            if let response = try? request("GET", path: "/moto-api/data.json", service: nil), response.status == 200 { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        stop()
        throw TestFailure("moto_server did not start on port \(port)")
    }

    func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// `s3://BUCKET/PREFIX?endpoint=…` for this server; `extra` is appended to the query (`&part_size=…`).
    func bucketURL(_ bucket: String, prefix: String = "", extra: String = "") -> String {
        "s3://\(bucket)/\(prefix)?region=us-east-1&endpoint=\(endpoint)&part_size=1024\(extra)"
    }

    /// Creates a bucket and opens it through starpipe's own client.
    func makeBucket(_ name: String = "sp-\(UInt32.random(in: 0...UInt32.max))", prefix: String = "", extra: String = "",
                    credentials: AWSCredentials = TestMoto.anyCredentials) throws -> S3Bucket {
        let response = try request("PUT", path: "/\(name)", service: "s3")
        guard response.status == 200 else { throw TestFailure("create bucket \(name): HTTP \(response.status)") }
        return try open(name, prefix: prefix, extra: extra, credentials: credentials)
    }

    func open(_ name: String, prefix: String = "", extra: String = "", credentials: AWSCredentials) throws -> S3Bucket {
        S3Bucket(location: try S3Location(url: bucketURL(name, prefix: prefix, extra: extra)), credentials: credentials,
                 retry: S3RetryPolicy(attempts: 3, baseSeconds: 0.05, capSeconds: 0.2), connectTimeoutSeconds: 1)
    }

    /// Turns signature checking on (moto `reset-auth`) after creating an IAM user allowed everything; returns
    /// that user's key pair. From then on, only requests signed with it pass.
    func enableAuthentication() throws -> AWSCredentials {
        func iam(_ parameters: [(String, String)]) throws -> [UInt8] {
            let body = (parameters + [("Version", "2010-05-08")])
                .map { "\(S3URIEncoding.encode($0.0))=\(S3URIEncoding.encode($0.1))" }.joined(separator: "&")
            let response = try request("POST", path: "/", service: "iam", body: Array(body.utf8),
                                       contentType: "application/x-www-form-urlencoded")
            guard response.status == 200 else { throw TestFailure("IAM \(parameters[0].1): HTTP \(response.status)") }
            return response.body
        }
        _ = try iam([("Action", "CreateUser"), ("UserName", "starpipe")])
        _ = try iam([("Action", "PutUserPolicy"), ("UserName", "starpipe"), ("PolicyName", "all"),
                     ("PolicyDocument", #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)])
        let key = String(decoding: try iam([("Action", "CreateAccessKey"), ("UserName", "starpipe")]), as: UTF8.self)
        func element(_ name: String) throws -> String {
            guard let start = key.range(of: "<\(name)>"), let end = key.range(of: "</\(name)>", range: start.upperBound..<key.endIndex) else {
                throw TestFailure("CreateAccessKey answer lacks \(name)")
            }
            return String(key[start.upperBound..<end.lowerBound])
        }
        let credentials = AWSCredentials(accessKeyID: try element("AccessKeyId"), secretAccessKey: try element("SecretAccessKey"))
        let reset = try request("POST", path: "/moto-api/reset-auth", service: nil, body: Array("0".utf8), contentType: "text/plain")
        guard reset.status == 200 else { throw TestFailure("reset-auth: HTTP \(reset.status)") }
        return credentials
    }

    /// One SQS action (JSON protocol); returns the decoded answer.
    @discardableResult
    func sqs(_ action: String, _ parameters: [String: Any]) throws -> [String: Any] {
        let body = Array(try JSONSerialization.data(withJSONObject: parameters))
        let response = try request("POST", path: "/", service: "sqs", body: body, contentType: "application/x-amz-json-1.0",
                                   headers: [("x-amz-target", "AmazonSQS.\(action)")])
        guard response.status == 200 else {
            throw TestFailure("SQS \(action): HTTP \(response.status) \(String(decoding: response.body, as: UTF8.self))")
        }
        return (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
    }

    /// Creates a queue (with `attributes`) and returns its URL and ARN.
    func createQueue(_ name: String, attributes: [String: String] = [:]) throws -> (url: String, arn: String) {
        let url = try #require(try sqs("CreateQueue", ["QueueName": name, "Attributes": attributes])["QueueUrl"] as? String)
        let answer = try sqs("GetQueueAttributes", ["QueueUrl": url, "AttributeNames": ["QueueArn"]])
        let arn = try #require((answer["Attributes"] as? [String: String])?["QueueArn"])
        return (url, arn)
    }

    /// Messages in a queue, visible or not (moto counts them exactly).
    func messageCount(_ queueURL: String) throws -> Int {
        let answer = try sqs("GetQueueAttributes", ["QueueUrl": queueURL,
                                                    "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]])
        let attributes = answer["Attributes"] as? [String: String] ?? [:]
        return (Int(attributes["ApproximateNumberOfMessages"] ?? "") ?? 0) + (Int(attributes["ApproximateNumberOfMessagesNotVisible"] ?? "") ?? 0)
    }

    /// Sends object-created notifications for `keys` (prefix included) of `bucket` to the queue, as S3 would.
    func notify(_ queueURL: String, bucket: String, keys: [String]) throws {
        for key in keys {
            let encoded = S3URIEncoding.encode(key).replacingOccurrences(of: "%20", with: "+")
            let record: [String: Any] = ["eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                         "s3": ["bucket": ["name": bucket], "object": ["key": encoded, "size": 1]]]
            let body = String(decoding: try JSONSerialization.data(withJSONObject: ["Records": [record]]), as: UTF8.self)
            try sqs("SendMessage", ["QueueUrl": queueURL, "MessageBody": body])
        }
    }

    /// Has S3 send object-created events for keys under `prefix` ending in `manifest.json` to the queue `arn`.
    func configureNotifications(bucket: String, prefix: String, queueARN: String) throws {
        let xml = """
            <NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><QueueConfiguration>\
            <Id>starpipe-manifests</Id><Queue>\(queueARN)</Queue><Event>s3:ObjectCreated:*</Event>\
            <Filter><S3Key><FilterRule><Name>prefix</Name><Value>\(prefix)</Value></FilterRule>\
            <FilterRule><Name>suffix</Name><Value>manifest.json</Value></FilterRule></S3Key></Filter>\
            </QueueConfiguration></NotificationConfiguration>
            """
        let response = try request("PUT", path: "/\(bucket)", query: [("notification", "")], service: "s3", body: Array(xml.utf8))
        guard response.status == 200 else {
            throw TestFailure("PutBucketNotificationConfiguration: HTTP \(response.status) \(String(decoding: response.body, as: UTF8.self))")
        }
    }

    /// One request to the server, signed for `service` with ``anyCredentials`` (moto routes by the signature's scope).
    func request(_ method: String, path: String, query: [(name: String, value: String)] = [], service: String?,
                 body: [UInt8] = [], contentType: String? = nil,
                 headers extra: [(name: String, value: String)] = []) throws -> (status: Int, body: [UInt8]) {
        var headers: [(name: String, value: String)] = [("host", "127.0.0.1:\(port)")] + extra
        if let contentType { headers.append(("content-type", contentType)) }
        if let service {
            headers += SigV4Signer(credentials: Self.anyCredentials, region: "us-east-1", service: service).sign(
                .init(method: method, encodedPath: path, query: query, headers: headers, payloadHash: SigV4Signer.hexSHA256(body)),
                at: Date())
        }
        var httpHeaders = HTTPHeaders()
        for (name, value) in headers { httpHeaders.add(name: name, value: value) }
        let queryText = S3URIEncoding.canonicalQuery(query)
        let request = try HTTPClient.Request(url: endpoint + path + (queryText.isEmpty ? "" : "?" + queryText),
                                             method: HTTPMethod(rawValue: method), headers: httpHeaders,
                                             body: body.isEmpty ? nil : .bytes(body))
        let response = try HTTPClient.shared.execute(request: request).wait()
        var buffer = response.body ?? ByteBuffer()
        return (Int(response.status.code), buffer.readBytes(length: buffer.readableBytes) ?? [])
    }
}
