import Foundation
import StarpipeCore

/// A bucket in a local directory (`file:///dir`): the embedded default.
///
/// `put` writes to a temporary file in the target directory, syncs it and renames it into place,
/// so a reader never sees a partial object.
public struct LocalBucket: Bucket {
    /// The directory holding the objects.
    public let root: String

    public init(root: String) {
        self.root = root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    public func list() throws(StarpipeError) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: root) else {
            throw StarpipeError(.bucket, "bucket directory \(root) cannot be read")
        }
        var keys: [String] = []
        while let path = enumerator.nextObject() as? String {
            let name = (path as NSString).lastPathComponent
            // Temporary files of writes in progress are not objects.
            if name.hasPrefix(".starpipe-tmp-") { continue }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isDirectory), !isDirectory.boolValue {
                keys.append(path)
            }
        }
        return keys.sorted()
    }

    public func read(_ key: String) throws(StarpipeError) -> Data {
        try BucketKey.check(key)
        guard let data = FileManager.default.contents(atPath: path(key)) else {
            throw StarpipeError(.bucket, "object \(key) cannot be read")
        }
        return data
    }

    public func size(_ key: String) throws(StarpipeError) -> Int64? {
        try BucketKey.check(key)
        var info = stat()
        guard stat(path(key), &info) == 0 else {
            if errno == ENOENT { return nil }
            throw StarpipeError(.bucket, "object \(key) cannot be read: \(String(cString: strerror(errno)))")
        }
        return Int64(info.st_size)
    }

    public func stream(_ key: String, chunkSize: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try BucketKey.check(key)
        let fd = open(path(key), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw StarpipeError(.bucket, "object \(key) cannot be opened: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = Glibc.read(fd, buffer.baseAddress, chunkSize)
            if count < 0 {
                if errno == EINTR { continue }
                throw StarpipeError(.bucket, "object \(key) read failed: \(String(cString: strerror(errno)))")
            }
            if count == 0 { return }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }

    public func put(_ key: String, _ body: (inout ObjectWriter) throws -> Void) throws {
        try BucketKey.check(key)
        let target = path(key)
        let directory = (target as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StarpipeError(.bucket, "bucket directory for \(key) cannot be created")
        }
        let temporary = directory + "/.starpipe-tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw StarpipeError(.bucket, "object \(key) cannot be created: \(String(cString: strerror(errno)))")
        }
        var committed = false
        defer {
            if !committed { unlink(temporary) }
        }
        do {
            var writer = ObjectWriter { bytes throws in
                var offset = 0
                while offset < bytes.count {
                    let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw StarpipeError(.bucket, "object \(key) write failed: \(String(cString: strerror(errno)))")
                    }
                    offset += written
                }
            }
            try body(&writer)
            guard fsync(fd) == 0 else {
                throw StarpipeError(.bucket, "object \(key) sync failed: \(String(cString: strerror(errno)))")
            }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        guard rename(temporary, target) == 0 else {
            throw StarpipeError(.bucket, "object \(key) cannot be committed: \(String(cString: strerror(errno)))")
        }
        committed = true
    }

    private func path(_ key: String) -> String {
        root + "/" + key
    }
}
