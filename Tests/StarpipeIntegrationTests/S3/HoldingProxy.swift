import Foundation

/// A TCP proxy on loopback in front of a server that forwards everything, except that it holds back (never
/// forwards) the first request whose bytes contain `marker` once ``arm()`` has been called. A test uses it to
/// freeze a process at an exact point of its conversation (after registering, before deleting the event) and
/// kill it there.
final class HoldingProxy: @unchecked Sendable {
    let port: Int
    private let upstreamPort: Int
    private let marker: [UInt8]
    private let listener: Int32
    private let lock = NSCondition()
    private var armed = false
    private var held = false
    /// Cut the first answer carrying the marker after this many bytes (a connection lost mid-response).
    private let cutAfter: Int?
    private var cut = false

    /// `cutAfter`: instead of holding requests, pass them all, but cut the connection of the first response whose
    /// request carried `marker`, once that many response bytes went through.
    init(upstreamPort: Int, marker: String, cutAfter: Int? = nil) throws {
        self.upstreamPort = upstreamPort
        self.marker = Array(marker.utf8)
        self.cutAfter = cutAfter
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
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// Stops accepting connections (those open stay until their peers close them).
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// From now on, the next request carrying the marker is held.
    func arm() {
        lock.lock(); armed = true; lock.unlock()
    }

    /// Whether a response was cut.
    var didCut: Bool {
        lock.lock(); defer { lock.unlock() }
        return cut
    }

    /// Waits up to `timeout` seconds for a request to be held.
    func waitUntilHeld(timeout: Double) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        lock.lock()
        defer { lock.unlock() }
        while !held, Date() < end { _ = lock.wait(until: min(end, Date().addingTimeInterval(0.1))) }
        return held
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
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
            Thread { [self] in pump(from: client, to: upstream, inspect: true, connection) }.start()
            Thread { [self] in pump(from: upstream, to: client, inspect: false, connection) }.start()
        }
    }

    /// Whether this connection's request carried the marker (set by the request pump, read by the response one).
    private final class Connection: @unchecked Sendable {
        let lock = NSLock()
        var marked = false
    }

    private func pump(from source: Int32, to target: Int32, inspect: Bool, _ connection: Connection) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var forwarded = 0
        defer { shutdown(target, Int32(SHUT_WR)); close(source) }
        while true {
            let count = read(source, &buffer, buffer.count)
            if count <= 0 { return }
            if let cutAfter, !inspect {
                connection.lock.lock()
                let marked = connection.marked
                connection.lock.unlock()
                lock.lock()
                let cutNow = marked && !cut && forwarded + count > cutAfter
                if cutNow { cut = true }
                lock.unlock()
                if cutNow {
                    // Forward part of it, then drop the connection both ways.
                    _ = buffer.withUnsafeBytes { write(target, $0.baseAddress!, max(0, cutAfter - forwarded)) }
                    shutdown(target, Int32(SHUT_RDWR))
                    shutdown(source, Int32(SHUT_RDWR))
                    return
                }
            }
            forwarded += count
            if inspect, cutAfter != nil {
                if contains(buffer[0..<count]) {
                    connection.lock.lock(); connection.marked = true; connection.lock.unlock()
                }
            } else if inspect, contains(buffer[0..<count]) {
                lock.lock()
                let hold = armed && !held
                if hold { held = true; lock.broadcast() }
                lock.unlock()
                // Held: the request never reaches the server; the connection stays open until the client dies.
                if hold {
                    while read(source, &buffer, buffer.count) > 0 {}
                    return
                }
            }
            var offset = 0
            while offset < count {
                let written = buffer.withUnsafeBytes { write(target, $0.baseAddress! + offset, count - offset) }
                if written <= 0 { return }
                offset += written
            }
        }
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
