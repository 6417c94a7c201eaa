import Foundation
import KeywardenCore
import KeywardenStore
import Testing
@testable import KeywardenServer

/// The request log (`/api/v1/{workspaces/{ws},platform}/requests` and its pages) against the ledger it reads: every
/// page and filter gives exactly the rows an in-memory filter of the same records gives, newest first.
@Suite("Request log: API and pages")
struct RequestLogRouteTests {
    /// A ledger with ties in time (the cursor's order falls back on the id), every source, failures and failovers.
    static func ledger(_ workspaces: [String], keys: [String?]) -> [UsageRecord] {
        let base = Date(timeIntervalSince1970: 1_796_000_000)
        let providers = ["openai", "anthropic", "gemini"]
        let sources: [KeySource?] = [.byok, .platform, .managed, nil]
        let statuses = [200, 200, 429, 500, 201, 401]
        return (0..<150).map { i in
            UsageRecord(at: base.addingTimeInterval(Double(i / 3)), workspaceID: workspaces[i % workspaces.count], providerID: providers[i % 3],
                        model: i % 5 == 0 ? nil : "m-\(i % 4)", credentialID: keys[i % keys.count], source: sources[i % 4], modality: .chat,
                        consumer: i % 2 == 0 ? "app" : nil, status: statuses[i % statuses.count], latencyMilliseconds: i,
                        counts: UsageCounts(inputTokens: i, outputTokens: i % 7 == 0 ? nil : 2), milliCredits: i * 10, attempts: 1 + i % 3)
        }
    }

    /// Every page of a query, following next_cursor.
    static func walk(_ api: API, _ path: String, token: String) async throws -> [[String: Any]] {
        var rows: [[String: Any]] = []
        var cursor: String?
        for _ in 0..<200 {
            let separator = path.contains("?") ? "&" : "?"
            let reply = try await api.get(path + (cursor.map { "\(separator)cursor=\($0)" } ?? ""), token: token)
            guard reply.status == 200 else { throw APIFailure(reply) }
            rows += reply.json["requests"] as? [[String: Any]] ?? []
            guard let next = reply.json["next_cursor"] as? String else { return rows }
            cursor = next
        }
        Issue.record("more than 200 pages")
        return rows
    }

    @Test("every filter, paged by cursor, gives the ledger's rows newest first, no row twice or missed, on both scopes")
    func pagedAndFilteredAgainstTheLedger() async throws {
        try await APIHarness.run { harness, api in
            let a = try await api.createWorkspace("Alpha"), b = try await api.createWorkspace("Beta")
            let keyA = try await api.createKey(a, description: "Alpha main", key: "sk-alpha-0000000001")["id"] as? String
            let records = Self.ledger([a, b], keys: [keyA, nil, "cred_gone", keyA])
            try await harness.store.usage.record(records)
            let newestFirst = records.sorted { ($0.at, $0.id) > ($1.at, $1.id) }
            let filters: [(String, (UsageRecord) -> Bool)] = [
                ("", { _ in true }),
                ("status=ok", { $0.status < 400 }),
                ("status=error", { $0.status >= 400 }),
                ("status=429", { $0.status == 429 }),
                ("provider=anthropic", { $0.providerID == "anthropic" }),
                ("source=platform", { $0.source == .platform }),
                ("source=byok&status=error", { $0.source == .byok && $0.status >= 400 }),
                ("key=\(keyA ?? "")", { $0.credentialID == keyA }),
                ("consumer=app", { $0.consumer == "app" }),
                ("from=\(Timestamp.string(records[30].at))&to=\(Timestamp.string(records[90].at))",
                 { $0.at >= records[30].at && $0.at < records[90].at }),
            ]
            for limit in [7, 50] {
                for (query, keep) in filters {
                    let path = "/api/v1/workspaces/\(a)/requests?limit=\(limit)" + (query.isEmpty ? "" : "&" + query)
                    let got = try await Self.walk(api, path, token: harness.adminToken).compactMap { $0["id"] as? String }
                    let expected = newestFirst.filter { $0.workspaceID == a && keep($0) }.map(\.id)
                    #expect(got == expected, "\(query) limit \(limit): \(got.count) rows, expected \(expected.count)")
                }
            }
            // The platform's log: every workspace, or one; names of workspaces given.
            let all = try await Self.walk(api, "/api/v1/platform/requests?limit=40&status=error", token: harness.adminToken)
            #expect(all.compactMap { $0["id"] as? String } == newestFirst.filter { $0.status >= 400 }.map(\.id))
            #expect(Set(all.compactMap { $0["workspace_name"] as? String }) == ["Alpha", "Beta"])
            let onlyB = try await Self.walk(api, "/api/v1/platform/requests?workspace=\(b)", token: harness.adminToken)
            #expect(onlyB.compactMap { $0["id"] as? String } == newestFirst.filter { $0.workspaceID == b }.map(\.id))

            // One row, every member as the ledger holds it.
            let one = try #require(try await api.get("/api/v1/workspaces/\(a)/requests?limit=1", token: harness.adminToken).json["requests"] as? [[String: Any]]).first
            let record = try #require(newestFirst.first { $0.workspaceID == a })
            #expect(one?["status"] as? Int == record.status && one?["latency_ms"] as? Int == record.latencyMilliseconds)
            #expect(one?["attempts"] as? Int == record.attempts && one?["failovers"] as? Int == record.attempts - 1)
            #expect(one?["credits"] as? Double == Double(record.milliCredits) / 1000)
            #expect(one?["tokens_in"] as? Int == record.counts.inputTokens)
            #expect(one?.keys.sorted() == ["at", "attempts", "characters", "consumer", "credits", "failovers", "id", "key", "latency_ms", "modality",
                                           "model", "provider", "source", "status", "tokens_in", "tokens_out", "workspace", "workspace_name"])
        }
    }

    @Test("keys are named, never a platform key's id to a workspace; a deleted key says so; the caller's scope is enforced")
    func keysNamedAndScopeEnforced() async throws {
        try await APIHarness.run { harness, api in
            let a = try await api.createWorkspace("Alpha"), b = try await api.createWorkspace("Beta")
            let own = try #require(try await api.createKey(a, description: "Alpha main", key: "sk-alpha-0000000001")["id"] as? String)
            let saved = try await api.put("/api/v1/platform/providers/openai", token: harness.adminToken, json: ["api_key": "sk-platform-00000001"])
            #expect(saved.status == 200)
            let platformKeys = try await harness.store.requestLog.keys(.platform, principal: Principal(tokenID: "tok_test", kind: .platformAdmin, workspaceID: nil, role: nil, permissions: [], name: "test"))
            let platformKey = try #require(platformKeys.first { $0.providerID == "openai" }?.id)
            let at = Date()
            func row(_ key: String?, _ source: KeySource, _ ws: String = a, seconds: Double) -> UsageRecord {
                UsageRecord(at: at.addingTimeInterval(seconds), workspaceID: ws, providerID: "openai", model: "gpt-5.4-mini", credentialID: key, source: source,
                            modality: .chat, consumer: nil, status: 200, latencyMilliseconds: 3, counts: UsageCounts(inputTokens: 1, outputTokens: 1),
                            milliCredits: 1000, attempts: 2)
            }
            try await harness.store.usage.record([row(own, .byok, seconds: 3), row(platformKey, .platform, seconds: 2), row("cred_deleted", .byok, seconds: 1),
                                                  row(platformKey, .platform, b, seconds: 0)])
            let member = try await api.addMember(a, role: "member")
            let fromWorkspace = try await api.get("/api/v1/workspaces/\(a)/requests", token: member)
            #expect(fromWorkspace.status == 200, "\(fromWorkspace.text)")
            let keys = (fromWorkspace.json["requests"] as? [[String: Any]] ?? []).map { $0["key"] as? [String: Any] ?? [:] }
            #expect(keys.count == 3)
            #expect(keys.first?["name"] as? String == "Alpha main" && keys.first?["id"] as? String == own)
            #expect(keys.dropFirst().first?["name"] as? String == "Platform key" && keys.dropFirst().first?["id"] is NSNull)
            #expect(keys.last?["name"] as? String == "Deleted key" && keys.last?["deleted"] as? Bool == true)
            #expect(!fromWorkspace.text.contains(platformKey), "a workspace never learns which platform key served it")
            // Filtering by the platform's key from the workspace matches nothing, as an id without calls does.
            let foreign = try await api.get("/api/v1/workspaces/\(a)/requests?key=\(platformKey)", token: member)
            let unknown = try await api.get("/api/v1/workspaces/\(a)/requests?key=cred_unknown", token: member)
            #expect(foreign.status == 200 && foreign.text == unknown.text && !foreign.text.contains(platformKey))
            // The platform sees its own key by name.
            let platform = try await api.get("/api/v1/platform/requests?key=\(platformKey)", token: harness.adminToken)
            #expect((platform.json["requests"] as? [[String: Any]])?.count == 2)
            #expect(platform.text.contains(platformKey))

            // Another workspace is not found; the platform's log is the platform's; a token without usage.read is refused.
            #expect(try await api.get("/api/v1/workspaces/\(b)/requests", token: member).status == 404)
            #expect(try await api.get("/api/v1/platform/requests", token: member).status == 403)
            let gatewayOnly = try await api.serviceToken(a, permissions: ["gateway.use"])
            let refused = try await api.get("/api/v1/workspaces/\(a)/requests", token: gatewayOnly)
            #expect(refused.status == 403 && refused.errorCode == "forbidden")
            #expect(try await api.get("/api/v1/workspaces/ws_missing/requests", token: harness.adminToken).status == 404)
            #expect(try await api.get("/api/v1/platform/requests?workspace=ws_missing", token: harness.adminToken).status == 404)
            let platformReader = try await api.serviceToken(nil, permissions: ["usage.read"])
            #expect(try await api.get("/api/v1/platform/requests", token: platformReader).status == 200)
        }
    }

    @Test("a bad cursor, limit, status, provider, source or period is a 400 naming it")
    func badQueriesAreNamed() async throws {
        try await APIHarness.run { harness, api in
            let a = try await api.createWorkspace("Alpha")
            let forged = Data("not-a-time cred_x".utf8).base64EncodedString()
            let cases: [(String, String)] = [
                ("cursor=%25%25%25", "invalid_cursor"), ("cursor=\(forged)", "invalid_cursor"), ("cursor=\(String(repeating: "A", count: 400))", "invalid_cursor"),
                ("cursor=MjAyNi0wMS0wMVQwMDowMDowMFo", "invalid_cursor"),
                ("limit=0", "invalid_field"), ("limit=201", "invalid_field"), ("limit=9223372036854775808", "invalid_field"), ("limit=1e2", "invalid_field"),
                ("status=abc", "invalid_field"), ("status=600", "invalid_field"), ("status=-200", "invalid_field"), ("status=9223372036854775807", "invalid_field"),
                ("provider=nope", "unknown_provider"), ("source=someone", "invalid_field"), ("from=2026-02-30", "invalid_field"),
                ("from=2026-02-02&to=2026-02-01", "invalid_field"),
            ]
            // Text no database can compare (a NUL) is a 400 on PostgreSQL, no match on SQLite: never a 500.
            for query in ["consumer=a%00b", "key=cred%00x", "provider=open%00ai"] {
                let reply = try await api.get("/api/v1/workspaces/\(a)/requests?\(query)", token: harness.adminToken)
                #expect([200, 400].contains(reply.status), "\(query): \(reply.status) \(reply.text)")
                if reply.status == 400 { #expect(["invalid_text", "unknown_provider"].contains(reply.errorCode ?? "")) }
            }
            for (query, code) in cases {
                let reply = try await api.get("/api/v1/workspaces/\(a)/requests?\(query)", token: harness.adminToken)
                #expect(reply.status == 400 && reply.errorCode == code, "\(query): \(reply.status) \(reply.text)")
            }
        }
    }

    @Test("the pages list calls with names, keep their filters on the next page, say when nothing matches")
    func pagesListAndKeepFilters() async throws {
        try await APIHarness.run { harness, api in
            let a = try await api.createWorkspace("Alpha")
            let own = try await api.createKey(a, description: "Alpha main", key: "sk-alpha-0000000001")["id"] as? String
            try await harness.store.usage.record(Self.ledger([a], keys: [own]))
            let admin = try await AdminPageTests.signIn(api, token: harness.adminToken)
            let page = try await admin.get("/workspaces/\(a)/requests?status=error")
            #expect(page.status == 200)
            #expect(page.body.contains("Alpha main") && page.body.contains(#"aria-current="page">Requests</a>"#))
            #expect(page.body.components(separatedBy: "<tr data-request=").count - 1 == 50, "a page holds 50 calls")
            #expect(page.body.contains(#"<option value="error" selected>Failed</option>"#))
            let older = try #require(page.body.range(of: #"href="([^"]+)" rel="next""#, options: .regularExpression).map { String(page.body[$0]) })
            #expect(older.contains("status=error") && older.contains("cursor="))
            let next = try await admin.get(String(older.dropFirst(6).prefix { $0 != "\"" }).replacingOccurrences(of: "&amp;", with: "&"))
            #expect(next.status == 200 && next.body.contains("← Newest"))
            let none = try await admin.get("/workspaces/\(a)/requests?provider=elevenlabs")
            #expect(none.body.contains("No calls match these filters.") && none.body.contains("Clear filters"))
            let platform = try await admin.get("/platform/requests")
            #expect(platform.status == 200 && platform.body.contains(#"<a href="/workspaces/\#(a)/requests">Alpha</a>"#))
            let bad = try await admin.get("/workspaces/\(a)/requests?cursor=nope!")
            #expect(bad.status == 400 && bad.body.contains("cursor is the next_cursor of a previous page."))
        }
    }
}
