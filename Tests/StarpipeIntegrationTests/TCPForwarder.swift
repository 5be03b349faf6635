import Foundation
import Glibc

/// A TCP forwarder on this machine's own non-loopback address, to a server that listens on loopback only: a client
/// of `host:port` reaches the server as a client on another machine would, by an address that is not loopback. Each
/// connection is copied both ways, byte for byte, by two threads (TLS passes through untouched).
final class TCPForwarder: @unchecked Sendable {
    /// The non-loopback address it listens on.
    let host: String
    /// The port the kernel chose.
    let port: Int
    private let listener: Int32
    private let targetPort: UInt16
    private let lock = NSLock()
    /// Forwarded sockets not yet closed; guarded by `lock`, like `stopped`.
    private var open: Set<Int32> = []
    private var stopped = false
    /// Connections (by their client socket) one of whose two directions has ended.
    private var halfDone: Set<Int32> = []

    /// The first IPv4 address of an interface that is up and not loopback; throws when the machine has none.
    static func machineAddress() throws -> String {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { throw TestFailure("getifaddrs failed: errno \(errno)") }
        defer { freeifaddrs(list) }
        var entry = list
        while let current = entry?.pointee {
            defer { entry = current.ifa_next }
            let flags = Int32(bitPattern: current.ifa_flags)
            guard let address = current.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                  flags & Int32(IFF_UP) != 0, flags & Int32(IFF_LOOPBACK) == 0 else { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            var inet = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            guard inet_ntop(AF_INET, &inet, &text, socklen_t(text.count)) != nil else { continue }
            return String(cString: text)
        }
        throw TestFailure("this machine has no IPv4 address besides loopback: the TLS-warning tests need one")
    }

    /// Listens on ``machineAddress()`` and forwards every connection to `127.0.0.1:targetPort`.
    init(to targetPort: Int) throws {
        host = try Self.machineAddress()
        self.targetPort = UInt16(targetPort)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 && listen(fd, 16) == 0
            }
        }
        guard listening else {
            Glibc.close(fd)
            throw TestFailure("cannot listen on \(host): errno \(errno)")
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// Stops listening and ends every forwarded connection. Only the threads that use a socket close it (the
    /// accept thread its listener, the last copy thread of a connection both its sockets), so no descriptor is
    /// closed twice or after its number was reused. Calling it again does nothing.
    func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        shutdown(listener, Int32(SHUT_RDWR))
        for socket in open { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    deinit { stop() }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { break }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = targetPort.bigEndian
            let connected = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            lock.lock()
            let admitted = connected && !stopped
            if admitted { open.formUnion([client, server]) }
            lock.unlock()
            guard admitted else {
                Glibc.close(client)
                Glibc.close(server)
                continue
            }
            // The second direction to end closes the connection's two sockets.
            let finish: @Sendable () -> Void = { [self] in
                lock.lock()
                defer { lock.unlock() }
                guard halfDone.remove(client) != nil else {
                    halfDone.insert(client)
                    return
                }
                open.subtract([client, server])
                Glibc.close(client)
                Glibc.close(server)
            }
            Thread.detachNewThread { Self.copy(from: client, to: server); finish() }
            Thread.detachNewThread { Self.copy(from: server, to: client); finish() }
        }
        Glibc.close(listener)
    }

    /// Copies until either side ends, then ends the other direction too.
    private static func copy(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        copying: while true {
            let n = read(source, &buffer, buffer.count)
            guard n > 0 else { break }
            var sent = 0
            while sent < n {
                let m = buffer[sent..<n].withUnsafeBytes { send(destination, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard m > 0 else { break copying }
                sent += m
            }
        }
        shutdown(destination, Int32(SHUT_WR))
        shutdown(source, Int32(SHUT_RD))
    }
}
