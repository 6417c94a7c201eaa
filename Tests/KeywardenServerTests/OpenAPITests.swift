import Foundation
import Hummingbird
import KeywardenCore
import KeywardenGateway
import KeywardenServer
import KeywardenStore
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
                if ["get", "head", "options", "put", "post", "patch", "delete"].contains(String(word)) {
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
        let services = try await ServerServices.make(app: store, settings: ServerSettings(), logger: fixture.logs.logger)
        let router = buildRouter(services)
        await services.shutdown()
        await store.close()
        // Hummingbird writes captures as `{name}`, as OpenAPI does. The gateway's faces are answered before the router
        // (`/{id}/**` per catalog provider, written once in the document as `/{provider}/{vendor_path}`).
        let routes = router.routes.map { ($0.method.rawValue, $0.path.description) } + GatewayFaces(catalog: store.catalog).operations
        let registered = Set(routes.filter { !isAdminPagePath($0.1) }.map { method, path -> String in
            let segments = path.split(separator: "/")
            if segments.count == 2, segments[1] == "**", store.catalog.contains(String(segments[0])) {
                return "\(method) /{provider}/{vendor_path}"
            }
            return "\(method) \(path)"
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
            let python = try await PythonPeers.python(for: ["openapi_spec_validator"])
            let validator = try ChildProcess.run(python, (python == "/usr/bin/env" ? ["python3"] : []) + ["-m", "openapi_spec_validator", file.path], output: .merged)
            #expect(validator.status == 0, "\(String(decoding: validator.stdout, as: UTF8.self))")
        }
    }

    /// The `pattern` of a schema in `components/schemas` (written on one line, in single quotes).
    static func pattern(of schema: String, in text: String) throws -> NSRegularExpression {
        let start = try #require(text.range(of: "\n    \(schema):\n"))
        let rest = text[start.upperBound...]
        let line = try #require(rest.split(separator: "\n").first { $0.hasPrefix("      pattern: '") })
        let quoted = line.dropFirst("      pattern: '".count).dropLast()
        return try NSRegularExpression(pattern: quoted.replacingOccurrences(of: "''", with: "'"))
    }

    static func matches(_ regex: NSRegularExpression, _ value: String) -> Bool {
        regex.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) != nil
    }

    @Test("the document's URL and time patterns say what the server accepts")
    func patternsMatchServerRules() throws {
        let text = try #require(OpenAPIDocument.text)
        let url = try Self.pattern(of: "WebhookURL", in: text)
        let urls = [
            "http://a", "https://api.example.com/v1/hook?x=1&y=%2F#top", "HTTPS://Example.COM:443", "http://u:p%40@h.example:8080/",
            "http://[::1]:11434/v1", "http://[::ffff:127.0.0.1]", "http://[fd00:ec2::254]/", "http://2130706433", "http://0x7f.1",
            "http://t*", "http://a.b:65535", "http://a.b:00080",
            "http://", "http://:80", "ftp://a.b", " http://a.b", "http://a.b ", "http://a b", "http://a.b/x y", "http://a.b/{x}",
            "http://ä.b", "http://a.b/%zz", "http://a.b:65536", "http://a.b:", "http://[::1", "http://[1::2::3]", "http://[v1.x]",
            "http://a.b#x#y", "http://a.b/\\", "http:a.b", "http://a@b@c", "http://a.b/\u{0}",
        ]
        for value in urls {
            #expect(Self.matches(url, value) == (OutboundURL.problem(value) == nil), "\(value.debugDescription)")
        }
        let time = try Self.pattern(of: "UsageTime", in: text)
        let times = [
            "", "2026-11-22", "2024-02-29", "2000-02-29", "1970-01-01", "9999-12-30", "2026-11-22T14:57:00Z", "2026-11-22t14:57:00.123456789z",
            "2026-11-22T14:57:60+02:00", "2026-11-22T23:59:59-23:59",
            "2023-02-29", "2100-02-29", "2026-02-30", "2026-04-31", "2026-13-01", "1969-12-31", "99999-01-01", "2026-1-22",
            "2026-11-22T24:00:00Z", "2026-11-22T10:00:00+0200", "2026-11-22T10:00:00+02", "2026-11-22T10:00:00.5", "2026-11-22 10:00:00Z",
            "2026-11-22T10:00:00.1234567890Z", "2026-11-22T10:00:00+24:00", "2026-11-22T10:00Z", "+2026-11-22T10:00:00Z",
        ]
        for value in times {
            let accepted = value.isEmpty || (try? UsageQuery.time(value, field: "from", endOfDay: false)) != nil
            #expect(Self.matches(time, value) == accepted, "\(value.debugDescription)")
        }
    }
}
