import Foundation
import Hummingbird
import KeywardenServer
import KeywardenTestSupport
import Testing

@Suite("OpenAPI document")
struct OpenAPITests {
    /// `METHOD /path/{param}` for each operation in the document (paths and their methods, by indentation).
    static func documentedOperations(_ text: String) -> Set<String> {
        var operations = Set<String>()
        var inPaths = false
        var currentPath: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("paths:") { inPaths = true; continue }
            if inPaths, let first = line.first, !first.isWhitespace { inPaths = false }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), !line.hasPrefix("   "), line.hasSuffix(":") {
                currentPath = String(line.dropFirst(2).dropLast())
            } else if let path = currentPath, line.hasPrefix("    "), !line.hasPrefix("     ") {
                let word = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "put", "post", "patch", "delete"].contains(String(word)) {
                    operations.insert("\(word.uppercased()) \(path)")
                }
            }
        }
        return operations
    }

    @Test("every registered route is in the document and every documented route is registered")
    func routesMatchDocument() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let (store, _) = try await fixture.open()
        let services = try await ServerServices.make(store: store, settings: ServerSettings(), logger: fixture.logs.logger)
        let router = buildRouter(services)
        await services.shutdown()
        await store.close()
        // Hummingbird writes captures as `{name}`, as OpenAPI does.
        // The gateway registers `/{id}/**` per catalog provider; the document writes them once as `/{provider}/{vendor_path}`.
        let registered = Set(router.routes.filter { !isAdminPagePath($0.path.description) }.map { route -> String in
            let path = route.path.description
            let segments = path.split(separator: "/")
            if segments.count == 2, segments[1] == "**", store.catalog.contains(String(segments[0])) {
                return "\(route.method.rawValue) /{provider}/{vendor_path}"
            }
            return "\(route.method.rawValue) \(path)"
        })
        let text = try #require(OpenAPIDocument.text)
        let documented = Self.documentedOperations(text)
        #expect(documented.count >= 25)
        #expect(registered.subtracting(documented).isEmpty, "registered but not documented: \(registered.subtracting(documented).sorted())")
        #expect(documented.subtracting(registered).isEmpty, "documented but not registered: \(documented.subtracting(registered).sorted())")
    }

    @Test("/openapi.yaml is served and is a valid OpenAPI 3.1 document")
    func servedAndValid() async throws {
        try await APIHarness.run { _, api in
            let reply = try await api.get("/openapi.yaml", token: nil)
            #expect(reply.status == 200 && reply.text.hasPrefix("openapi: 3.1"))
            // Validated by an independent implementation (openapi-spec-validator, installed by .ci/run).
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("kw-openapi-\(UUID().uuidString).yaml")
            try reply.body.write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-m", "openapi_spec_validator", file.path]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            process.waitUntilExit()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(process.terminationStatus == 0, "\(text)")
        }
    }
}
