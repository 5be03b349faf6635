// swift-tools-version:6.0
// Issue 4's transport benchmark: libpq COPY (text and binary) vs postgres-nio `copyFrom` (text).
// Two executables, so each client's peak RSS counts only its own library. See README.md and run.sh.
import PackageDescription

let package = Package(
    name: "copy-client",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.3"),
    ],
    targets: [
        // libpq through a system-library module map, as in the main package's Sources/CLibPQ.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .executableTarget(name: "copy-libpq", dependencies: ["CLibPQ"]),
        .executableTarget(
            name: "copy-nio",
            dependencies: [
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
