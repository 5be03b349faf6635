// copy-nio HOST PORT DATABASE TABLE FILE
//
// Sends FILE (already in COPY text format) through postgres-nio's `copyFrom` (text is the only
// format it offers) in 1 MiB ByteBuffer chunks, user postgres, no TLS, no password.
// Prints the bytes sent and the seconds from the COPY statement to its completion.
import Logging
import NIOCore
import PostgresNIO
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let chunkSize = 1 << 20

func fail(_ message: String) -> Never {
    let line = "copy-nio: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(1)
}

func seconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Reads the next chunk (up to `chunkSize` bytes, short only at end of file) into a fresh buffer:
/// the previous one may still be queued in the channel, so it is not reused.
func nextChunk(_ fd: Int32, _ allocator: ByteBufferAllocator) -> ByteBuffer {
    var buffer = allocator.buffer(capacity: chunkSize)
    var done = false
    while !done && buffer.readableBytes < chunkSize {
        let want = chunkSize - buffer.readableBytes
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { pointer in
            while true {
                let n = read(fd, pointer.baseAddress, want)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { fail("read: \(String(cString: strerror(errno)))") }
                if n == 0 { done = true }
                return n
            }
        }
    }
    return buffer
}

let args = CommandLine.arguments
guard args.count == 6, let port = Int(args[2]) else {
    fail("usage: copy-nio HOST PORT DATABASE TABLE FILE")
}
let (host, database, table, path) = (args[1], args[3], args[4], args[5])
let fd = open(path, O_RDONLY)
if fd < 0 { fail("\(path): \(String(cString: strerror(errno)))") }

var logger = Logger(label: "copy-nio")
logger.logLevel = .error
let configuration = PostgresConnection.Configuration(
    host: host, port: port, username: "postgres", password: nil, database: database, tls: .disable
)

do {
    let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
    let allocator = ByteBufferAllocator()
    let start = seconds()
    var sent = 0
    try await connection.copyFrom(table: table, format: .text(.init()), logger: logger) { writer in
        while true {
            let chunk = nextChunk(fd, allocator)
            if chunk.readableBytes == 0 { break }
            sent += chunk.readableBytes
            try await writer.write(chunk)
        }
    }
    let elapsed = seconds() - start
    try await connection.closeGracefully()
    close(fd)
    print("rows=? bytes=\(sent) copy_seconds=\(elapsed)")
} catch {
    fail(String(reflecting: error))
}
