// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Keywarden",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "keywarden", targets: ["keywarden"]),
        .executable(name: "keywarden-bench", targets: ["keywarden-bench"]),
        .library(name: "KeywardenCore", targets: ["KeywardenCore"]),
        .library(name: "KeywardenVault", targets: ["KeywardenVault"]),
        .library(name: "KeywardenStore", targets: ["KeywardenStore"]),
        .library(name: "KeywardenProviders", targets: ["KeywardenProviders"]),
        .library(name: "KeywardenApp", targets: ["KeywardenApp"]),
        .library(name: "KeywardenNotifications", targets: ["KeywardenNotifications"]),
        .library(name: "KeywardenGateway", targets: ["KeywardenGateway"]),
        .library(name: "KeywardenServer", targets: ["KeywardenServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.6.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
    ],
    targets: [
        // Catalog, domain values, errors. No I/O beyond reading its own bundled catalog.
        .target(
            name: "KeywardenCore",
            resources: [.copy("Resources/catalog.json")]
        ),
        // The PKCS#11 (Cryptoki) header, written from the OASIS specification, and a thin C layer over a module loaded at
        // run time (dlopen + C_GetFunctionList): nothing links against an HSM's library.
        .target(
            name: "CKeywardenPKCS11",
            linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]
        ),
        // Keyring and envelope encryption.
        .target(
            name: "KeywardenVault",
            dependencies: [
                "KeywardenCore",
                "CKeywardenPKCS11",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Migrations, repositories, audit chain, rotation over SQLKit.
        .target(
            name: "KeywardenStore",
            dependencies: [
                "KeywardenCore",
                "KeywardenVault",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Per-vendor requests: inject auth, verify a key, classify the answer; the egress guard.
        .target(
            name: "KeywardenProviders",
            dependencies: [
                "KeywardenCore",
                "KeywardenVault",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSOCKS", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The application: services over the store (validation, one transaction with its audit entry), the caches the
        // gateway reads, key verification and health checks. The only layer that writes audit entries.
        .target(
            name: "KeywardenApp",
            dependencies: [
                "KeywardenCore",
                "KeywardenVault",
                "KeywardenStore",
                "KeywardenProviders",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Events delivered to webhooks (signed) and e-mail (a small SMTP client on SwiftNIO).
        .target(
            name: "KeywardenNotifications",
            dependencies: [
                "KeywardenCore",
                "KeywardenVault",
                "KeywardenStore",
                "KeywardenApp",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Candidates → forward → failover → meter: the gateway between the platform's code and the vendors.
        .target(
            name: "KeywardenGateway",
            dependencies: [
                "KeywardenCore",
                "KeywardenVault",
                "KeywardenStore",
                "KeywardenProviders",
                "KeywardenApp",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "WSCore", package: "swift-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        // HTTP routes and the application service.
        .target(
            name: "KeywardenServer",
            dependencies: [
                "KeywardenCore",
                "KeywardenVault",
                "KeywardenStore",
                "KeywardenProviders",
                "KeywardenApp",
                "KeywardenNotifications",
                "KeywardenGateway",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            ],
            resources: [.copy("Resources/openapi.yaml"), .copy("Resources/web")]
        ),
        .executableTarget(
            name: "keywarden",
            dependencies: [
                "KeywardenCore",
                "KeywardenVault",
                "KeywardenStore",
                "KeywardenApp",
                "KeywardenServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Test doubles of the vendors' APIs (one port per vendor), for tests and benchmarks.
        .executableTarget(
            name: "keywarden-mock-vendors",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "keywarden-bench",
            dependencies: [
                "KeywardenCore",
                "KeywardenProviders",
                "KeywardenApp",
                "KeywardenVault",
                "KeywardenStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        // Fixtures shared by the test targets (a store in a temporary directory, log capture).
        .target(
            name: "KeywardenTestSupport",
            dependencies: [
                "KeywardenCore", "KeywardenVault", "KeywardenStore", "KeywardenApp",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SQLKit", package: "sql-kit"),
            ],
            path: "Tests/KeywardenTestSupport"
        ),
        .testTarget(name: "KeywardenCoreTests", dependencies: ["KeywardenCore", .product(name: "PropertyBased", package: "swift-property-based")]),
        .testTarget(
            name: "KeywardenVaultTests",
            dependencies: ["KeywardenVault", "CKeywardenPKCS11", "KeywardenTestSupport", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "Logging", package: "swift-log")],
            resources: [.copy("Resources")]
        ),
        .testTarget(
            name: "KeywardenStoreTests",
            dependencies: ["KeywardenStore", "KeywardenApp", "KeywardenTestSupport", .product(name: "SQLKit", package: "sql-kit")]
        ),
        .testTarget(
            name: "KeywardenAppTests",
            dependencies: ["KeywardenApp", "KeywardenStore", "KeywardenTestSupport", .product(name: "SQLKit", package: "sql-kit")]
        ),
        .testTarget(
            name: "KeywardenProvidersTests",
            dependencies: ["KeywardenProviders", "KeywardenApp", "KeywardenTestSupport", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl")]
        ),
        .testTarget(
            name: "KeywardenNotificationsTests",
            dependencies: ["KeywardenNotifications", "KeywardenApp", "KeywardenTestSupport", .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"), .product(name: "AsyncHTTPClient", package: "async-http-client")]
        ),
        .testTarget(
            name: "KeywardenGatewayTests",
            dependencies: ["KeywardenGateway", "KeywardenApp", "KeywardenTestSupport", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]
        ),
        .testTarget(
            name: "KeywardenServerTests",
            dependencies: [
                "KeywardenServer",
                "KeywardenProviders",
                "KeywardenGateway",
                "KeywardenApp",
                "KeywardenTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "KeywardenIntegrationTests",
            dependencies: [
                "KeywardenTestSupport", "KeywardenCore", "KeywardenStore", "KeywardenApp", "KeywardenVault", .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ]
)

// Release builds optimize across Keywarden's own modules: a generic or a small function of one layer (the client
// connection's state machine in the Gateway, the ASCII searches in Providers) is specialized and inlined where the layer
// above calls it, instead of going through runtime metadata per call. Debug builds (the tests) are unchanged.
for target in package.targets where target.type == .regular || target.type == .executable {
    guard target.name.hasPrefix("Keywarden"), target.name != "KeywardenTestSupport" else { continue }
    target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]
}
