// swift-tools-version: 6.2
import PackageDescription

// Dependencies only point down: executables → MyceliumSystem/MyceliumCrypto → MyceliumCore.
// MyceliumCore has no Foundation and no I/O (see docs/architecture.md).
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "mycelium-swift",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mycelium", targets: ["mycelium"]),
        .executable(name: "mycelium-sim", targets: ["mycelium-sim"]),
        .executable(name: "mycelium-cni", targets: ["mycelium-cni"]),
        .executable(name: "mycelium-fuzz", targets: ["mycelium-fuzz"]),
        .library(name: "MyceliumCore", targets: ["MyceliumCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The REST API and /metrics. Hummingbird's default traits pull swift-configuration, which
        // we do not use: traits off keeps the build smaller.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // System libraries, found through pkg-config (Debian: libsodium-dev, libssl-dev).
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CNetlink", pkgConfig: "libnl-route-3.0", providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]),
        // Syscalls and ioctl macros Glibc's Swift module cannot import (it lacks _GNU_SOURCE).
        .target(name: "CMyceliumShims"),
        // QUIC (spec §3.6): ngtcp2 0.12 with its GnuTLS backend (Debian 12: libngtcp2-dev,
        // libngtcp2-crypto-gnutls-dev, libgnutls28-dev), behind a small C layer that Swift can
        // import (the library's versioned macros and callback table cannot be).
        .target(
            name: "CQUIC",
            linkerSettings: [.linkedLibrary("ngtcp2_crypto_gnutls"), .linkedLibrary("ngtcp2"), .linkedLibrary("gnutls")]
        ),

        .target(name: "MyceliumCore", swiftSettings: strictSettings),
        // Ordered, serde-compatible JSON: the API's documents and the CNI protocol (no Foundation).
        .target(name: "MyceliumJSON", swiftSettings: strictSettings),
        // The CNI protocol and the plugin ↔ agent messages: pure, no Foundation, no C libraries,
        // so the plugin binary runs on hosts we do not control.
        .target(name: "MyceliumCNI", dependencies: ["MyceliumJSON"], swiftSettings: strictSettings),
        .executableTarget(name: "mycelium-cni", dependencies: ["MyceliumCNI"], swiftSettings: strictSettings),
        // The agent side of CNI in the daemon: IPAM, container wiring through libnl, the socket.
        .target(
            name: "MyceliumAgent",
            dependencies: [
                "MyceliumCNI", "MyceliumJSON", "MyceliumCore", "MyceliumSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(name: "MyceliumRouting", dependencies: ["MyceliumCore"], swiftSettings: strictSettings),
        .target(
            name: "MyceliumCrypto",
            dependencies: ["MyceliumCore", "CSodium", "COpenSSL"],
            swiftSettings: strictSettings
        ),
        // The data plane's rules (spec §4) with no I/O: bytes and time in, actions out.
        .target(
            name: "MyceliumDatapath",
            dependencies: ["MyceliumCore", "MyceliumCrypto", "MyceliumRouting"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "MyceliumSystem",
            dependencies: ["MyceliumCore", "MyceliumCrypto", "CNetlink", "CMyceliumShims"],
            swiftSettings: strictSettings
        ),
        // QUIC connections and the UDP endpoint they share, on a NIO event loop.
        .target(
            name: "MyceliumQUIC",
            dependencies: [
                "CQUIC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "MyceliumNode",
            dependencies: [
                "MyceliumCore", "MyceliumRouting", "MyceliumCrypto", "MyceliumDatapath", "MyceliumSystem", "MyceliumQUIC", "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Control surfaces: REST API, health, Prometheus metrics, and the API client the CLI uses.
        .target(
            name: "MyceliumAPI",
            dependencies: [
                "MyceliumCore", "MyceliumRouting", "MyceliumDatapath", "MyceliumNode", "MyceliumJSON",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // Resources/api.yaml links to docs/api.yaml: one document, served as written.
            resources: [.embedInCode("Resources/api.yaml")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "mycelium",
            dependencies: [
                "MyceliumCore", "MyceliumCrypto", "MyceliumSystem", "MyceliumNode", "MyceliumAPI", "MyceliumAgent", "MyceliumCNI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),

        // Every decoder and the router's handling of decoded TLVs, driven by one fuzz input;
        // `mycelium-fuzz` runs it under libFuzzer (scripts/fuzz.sh) or replays files.
        .target(name: "MyceliumFuzz", dependencies: ["MyceliumCore", "MyceliumRouting", "MyceliumDatapath", "MyceliumCNI", "MyceliumJSON"],
                swiftSettings: strictSettings),
        .target(name: "CFuzzerDriver"),
        .executableTarget(name: "mycelium-fuzz", dependencies: ["MyceliumFuzz", "CFuzzerDriver"], swiftSettings: strictSettings),

        // Test support: the protocol vectors (Tests/Fixtures), the simulator, and in-memory
        // doubles of the TUN and of peer links for datapath cores.
        .target(name: "MyceliumTesting", dependencies: ["MyceliumCore", "MyceliumRouting", "MyceliumCrypto", "MyceliumDatapath"],
                swiftSettings: strictSettings),
        .executableTarget(
            name: "mycelium-sim",
            dependencies: [
                "MyceliumRouting", "MyceliumTesting", "CMyceliumShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        // In-process micro-benchmarks (bench/sessions.sh): no network, one thread.
        .executableTarget(
            name: "mycelium-bench",
            dependencies: [
                "MyceliumCore", "MyceliumCrypto", "MyceliumDatapath", "MyceliumRouting", "MyceliumTesting", "CMyceliumShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),

        .testTarget(
            name: "MyceliumCoreTests",
            dependencies: ["MyceliumCore", "MyceliumTesting", "MyceliumFuzz"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MyceliumRoutingTests",
            dependencies: ["MyceliumCore", "MyceliumRouting", "MyceliumTesting"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MyceliumNodeTests",
            dependencies: [
                "MyceliumCore", "MyceliumRouting", "MyceliumDatapath", "MyceliumNode", "MyceliumQUIC", "MyceliumTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MyceliumDatapathTests",
            dependencies: ["MyceliumCore", "MyceliumCrypto", "MyceliumRouting", "MyceliumDatapath", "MyceliumTesting"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MyceliumCryptoTests",
            dependencies: ["MyceliumCore", "MyceliumCrypto", "MyceliumTesting"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MyceliumSystemTests",
            dependencies: ["MyceliumCore", "MyceliumCrypto", "MyceliumSystem", "MyceliumTesting"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["mycelium", "MyceliumCore", "MyceliumCrypto", "MyceliumSystem", "MyceliumTesting"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CNITests",
            dependencies: ["MyceliumCNI", "MyceliumJSON", "MyceliumAgent", "MyceliumCore", "MyceliumTesting", "mycelium-cni"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CLITests",
            dependencies: ["mycelium", "mycelium-cni"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MyceliumQUICTests",
            dependencies: [
                "MyceliumQUIC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MyceliumAPITests",
            dependencies: [
                "MyceliumCore", "MyceliumRouting", "MyceliumDatapath", "MyceliumNode", "MyceliumAPI", "MyceliumTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
