// copy-libpq CONNINFO TABLE text|binary FILE
//
// Sends FILE (already in COPY text or binary format) to `COPY TABLE FROM STDIN` in 1 MiB
// PQputCopyData chunks on a blocking libpq connection, the way the worker's copyIn does.
// Prints the rows the server stored and the seconds from the COPY statement to its result.
import CLibPQ
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let chunkSize = 1 << 20

func fail(_ message: String) -> Never {
    let line = "copy-libpq: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(1)
}

func seconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Reads up to `count` bytes, stopping short only at end of file.
func readFully(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    var filled = 0
    while filled < count {
        let n = read(fd, buffer + filled, count - filled)
        if n < 0 { if errno == EINTR { continue }; fail("read: \(String(cString: strerror(errno)))") }
        if n == 0 { break }
        filled += n
    }
    return filled
}

let args = CommandLine.arguments
guard args.count == 5, args[3] == "text" || args[3] == "binary" else {
    fail("usage: copy-libpq CONNINFO TABLE text|binary FILE")
}
let (conninfo, table, format, path) = (args[1], args[2], args[3], args[4])

let fd = open(path, O_RDONLY)
if fd < 0 { fail("\(path): \(String(cString: strerror(errno)))") }
guard let conn = PQconnectdb(conninfo) else { fail("connect: out of memory") }
guard PQstatus(conn) == CONNECTION_OK else { fail("connect: \(String(cString: PQerrorMessage(conn)))") }
func libpqError() -> String { String(cString: PQerrorMessage(conn)) }

let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 16)
let start = seconds()
let begin = PQexec(conn, "COPY \(table) FROM STDIN (FORMAT \(format))")
guard PQresultStatus(begin) == PGRES_COPY_IN else { fail("COPY: \(libpqError())") }
PQclear(begin)
var sent = 0
while true {
    let n = readFully(fd, buffer, chunkSize)
    if n == 0 { break }
    guard PQputCopyData(conn, buffer.assumingMemoryBound(to: CChar.self), Int32(n)) == 1 else {
        fail("PQputCopyData: \(libpqError())")
    }
    sent += n
}
guard PQputCopyEnd(conn, nil) == 1 else { fail("PQputCopyEnd: \(libpqError())") }
var rows = "?"
while let result = PQgetResult(conn) {
    guard PQresultStatus(result) == PGRES_COMMAND_OK else { fail("COPY: \(libpqError())") }
    rows = String(cString: PQcmdTuples(result))
    PQclear(result)
}
let elapsed = seconds() - start
PQfinish(conn)
close(fd)
print("rows=\(rows) bytes=\(sent) copy_seconds=\(elapsed)")
