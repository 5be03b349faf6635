import Foundation

/// A TCP proxy on loopback in front of a server. It forwards everything, except that the first request whose bytes
/// contain `marker` meets a ``Fault``: held forever (to freeze a client at an exact point of its conversation and
/// kill it there), its response cut after some bytes (a connection lost mid-body), or answered by the proxy with an
/// S3-style error instead of the server (a 503 SlowDown).
final class FaultProxy: @unchecked Sendable {
    enum Fault {
        /// The request is never forwarded; the connection stays open until the client goes away.
        case hold
        /// The request is forwarded; its response's connection is dropped after this many bytes.
        case cut(after: Int)
        /// The proxy answers with this HTTP status and S3 error code, and closes the connection.
        case fail(status: Int, code: String)
    }

    let port: Int
    private let upstreamPort: Int
    private let marker: [UInt8]
    private let fault: Fault
    private let listener: Int32
    private let lock = NSCondition()
    private var struck = false

    init(upstreamPort: Int, marker: String, fault: Fault) throws {
        self.upstreamPort = upstreamPort
        self.marker = Array(marker.utf8)
        self.fault = fault
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw TestFailure("proxy cannot listen")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread { [self] in acceptLoop() }.start()
    }

    /// Stops accepting connections (those open stay until their peers close them).
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// Whether the fault has happened.
    var didStrike: Bool {
        lock.lock(); defer { lock.unlock() }
        return struck
    }

    /// Waits up to `timeout` seconds for the fault to happen.
    func waitForStrike(timeout: Double) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        lock.lock()
        defer { lock.unlock() }
        while !struck, Date() < end { _ = lock.wait(until: min(end, Date().addingTimeInterval(0.1))) }
        return struck
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// One proxied connection: whether its request met the fault (the response side of a cut reads it).
    private final class Connection: @unchecked Sendable {
        let lock = NSLock()
        var cutAfter: Int?
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: UInt16(upstreamPort))
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { close(client); close(upstream); continue }
            let connection = Connection()
            Thread { [self] in requests(from: client, to: upstream, connection) }.start()
            Thread { [self] in responses(from: upstream, to: client, connection) }.start()
        }
    }

    /// Claims the fault for this request, once per proxy.
    private func strike() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if struck { return false }
        struck = true
        lock.broadcast()
        return true
    }

    private func requests(from client: Int32, to upstream: Int32, _ connection: Connection) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        defer { shutdown(upstream, Int32(SHUT_WR)); close(client) }
        while true {
            let count = read(client, &buffer, buffer.count)
            if count <= 0 { return }
            if contains(buffer[0..<count]), strike() {
                switch fault {
                case .hold:
                    while read(client, &buffer, buffer.count) > 0 {}
                    return
                case .cut(let after):
                    connection.lock.lock(); connection.cutAfter = after; connection.lock.unlock()
                case .fail(let status, let code):
                    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>\(code)</Code><Message>injected</Message></Error>"
                    let response = "HTTP/1.1 \(status) Injected\r\nContent-Type: application/xml\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
                    _ = Array(response.utf8).withUnsafeBytes { write(client, $0.baseAddress!, $0.count) }
                    shutdown(client, Int32(SHUT_RDWR))
                    shutdown(upstream, Int32(SHUT_RDWR))
                    return
                }
            }
            if !send(buffer, count, to: upstream) { return }
        }
    }

    private func responses(from upstream: Int32, to client: Int32, _ connection: Connection) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var forwarded = 0
        defer { shutdown(client, Int32(SHUT_WR)); close(upstream) }
        while true {
            let count = read(upstream, &buffer, buffer.count)
            if count <= 0 { return }
            connection.lock.lock()
            let cutAfter = connection.cutAfter
            connection.lock.unlock()
            if let cutAfter, forwarded + count > cutAfter {
                _ = send(buffer, cutAfter - forwarded, to: client)
                shutdown(client, Int32(SHUT_RDWR))
                shutdown(upstream, Int32(SHUT_RDWR))
                return
            }
            if !send(buffer, count, to: client) { return }
            forwarded += count
        }
    }

    private func send(_ buffer: [UInt8], _ count: Int, to target: Int32) -> Bool {
        var offset = 0
        while offset < count {
            let written = buffer.withUnsafeBytes { write(target, $0.baseAddress! + offset, count - offset) }
            if written <= 0 { return false }
            offset += written
        }
        return true
    }

    private func contains(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard bytes.count >= marker.count else { return false }
        var index = bytes.startIndex
        while index + marker.count <= bytes.endIndex {
            if bytes[index..<index + marker.count].elementsEqual(marker) { return true }
            index += 1
        }
        return false
    }
}
