// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "starpipe",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "starpipe", targets: ["starpipe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // libpq, the Postgres client library: COPY in any format, schema-qualified tables.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // libhiredis (Debian's 0.14: RESP2, no TLS) for per-client Redis locks.
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // SQLite (Debian's libsqlite3-dev), read by the extractor from a file path.
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // The MariaDB Connector/C (Debian's libmariadb-dev), through which the extractor reads MySQL and MariaDB.
        .systemLibrary(
            name: "CMariaDB",
            pkgConfig: "libmariadb",
            providers: [.apt(["libmariadb-dev"])]
        ),
        // Header only: prctl and setrlimit, so the extractor can refuse to dump core while it holds a password.
        .systemLibrary(name: "CProcessHygiene"),
        // Pure: manifest, bucket keys, identifiers, errors. No I/O beyond Foundation coding.
        .target(name: "StarpipeCore"),
        // Pure: the streaming JSON tokenizer (one resumable state machine), its row buffer and errors, and
        // a whole-document validator.
        .target(name: "JSONParsing"),
        // Pure: a JSON array or NDJSON of objects → COPY text rows, driving the tokenizer; text → binary COPY.
        .target(name: "CopyEncoding", dependencies: ["JSONParsing"]),
        // I/O: a small, synchronous libpq wrapper (queries with parameters, COPY FROM STDIN).
        .target(name: "StarpipePostgres", dependencies: ["CLibPQ"]),
        // I/O: a synchronous Redis client and the per-client lock built on it.
        .target(name: "StarpipeRedis", dependencies: ["CHiredis"]),
        // I/O: buckets: a local directory, or S3 and stores that speak its API (SigV4 over async-http-client).
        .target(
            name: "StarpipeBucket",
            dependencies: [
                "StarpipeCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // I/O: the extractor that reads a client Postgres, MySQL/MariaDB or SQLite and writes data + manifest.
        .target(
            name: "StarpipeExtract",
            dependencies: [
                "StarpipeCore", "StarpipePostgres", "StarpipeBucket", "CSQLite", "CMariaDB",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // I/O: the worker that registers, claims, ingests and drives the extension's stages.
        .target(
            name: "StarpipeWorker",
            dependencies: [
                "StarpipeCore", "JSONParsing", "CopyEncoding", "StarpipePostgres", "StarpipeBucket", "StarpipeRedis",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        // Mapping configs: YAML in, JSON for the extension out.
        .target(
            name: "StarpipeMapping",
            dependencies: ["StarpipeCore", "StarpipePostgres", .product(name: "Yams", package: "Yams")]
        ),
        .executableTarget(
            name: "starpipe",
            dependencies: [
                "StarpipeCore", "StarpipePostgres", "StarpipeBucket", "StarpipeExtract", "StarpipeWorker",
                "StarpipeMapping", "CProcessHygiene",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(name: "StarpipeCoreTests", dependencies: ["StarpipeCore", "StarpipeBucket"]),
        // Pure unit tests: no database, no Redis (real files in temporary directories are fine).
        .testTarget(
            name: "StarpipeWorkerTests",
            dependencies: [
                "StarpipeWorker", "StarpipeCore", "StarpipePostgres", "StarpipeRedis",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "StarpipeBucketTests", dependencies: ["StarpipeBucket", "StarpipeCore"]),
        .testTarget(name: "StarpipeMappingTests", dependencies: ["StarpipeMapping", "StarpipeCore"]),
        // The tokenizer through the validator and the encoder, and JSONTestSuite (nst, MIT).
        .testTarget(
            name: "CopyEncodingTests",
            dependencies: ["CopyEncoding", "JSONParsing"],
            resources: [.copy("Conformance")]
        ),
        .testTarget(
            name: "StarpipeIntegrationTests",
            dependencies: [
                "StarpipeCore", "StarpipePostgres", "StarpipeBucket", "StarpipeExtract", "StarpipeWorker",
                "StarpipeMapping", "StarpipeRedis", "CopyEncoding",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
