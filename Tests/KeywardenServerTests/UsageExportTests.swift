import Foundation
import KeywardenApp
import KeywardenCore
import NIOCore
import Testing
@testable import KeywardenServer

/// Usage exports: every call of the period, page by page, whose totals are the ledger's; safe in a spreadsheet.
@Suite("Usage export")
struct UsageExportTests {
    /// Fields of an RFC 4180 file (quoted fields may hold commas, quotes and line breaks).
    static func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
        var scalars = Array(text.unicodeScalars)[...]
        while let c = scalars.popFirst() {
            if quoted {
                if c == "\"" {
                    if scalars.first == "\"" { field.unicodeScalars.append("\""); scalars.removeFirst() } else { quoted = false }
                } else { field.unicodeScalars.append(c) }
            } else if c == "\"" { quoted = true
            } else if c == "," { row.append(field); field = ""
            } else if c == "\r" { continue
            } else if c == "\n" { row.append(field); rows.append(row); row = []; field = ""
            } else { field.unicodeScalars.append(c) }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }

    @Test("the CSV and JSON lines hold every call (across pages) and add up to the ledger's totals; formulas stay text; a workspace sees no platform key id")
    func exportMatchesTheLedger() async throws {
        try await APIHarness.run { harness, api in
            let ws = try await api.createWorkspace("Exported")
            let hostile = ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "a,b", "line\nbreak", "quote\"d", "plain"]
            var records: [UsageRecord] = []
            for index in 0..<2_345 {
                let source: KeySource = [.byok, .platform, .managed][index % 3]
                records.append(UsageRecord(
                    at: Date(timeIntervalSince1970: 1_764_000_000 + Double(index)), workspaceID: ws, providerID: "openai", model: "gpt-5.4-mini",
                    credentialID: source == .byok ? "cred_own" : "cred_platform_secret_id", source: source, modality: .chat,
                    consumer: hostile[index % hostile.count], status: index % 10 == 0 ? 500 : 200, latencyMilliseconds: 12,
                    counts: UsageCounts(inputTokens: index % 7, outputTokens: 3), milliCredits: index % 10 == 0 ? 0 : 1_500, attempts: 1))
            }
            try await harness.store.usage.record(records)
            let totals = try await api.get("/api/v1/usage?workspace=\(ws)&group_by=source", token: harness.adminToken).object("totals")
            let owner = try await api.addMember(ws, role: "owner")

            let csv = try await api.get("/api/v1/usage/export?workspace=\(ws)&format=csv", token: owner)
            #expect(csv.status == 200 && csv.headers["content-type"]?.hasPrefix("text/csv") == true)
            let rows = Self.parseCSV(String(decoding: csv.body, as: UTF8.self))
            #expect(rows.first == UsageExport.columns)
            let data = rows.dropFirst()
            #expect(data.count == 2_345 && data.allSatisfy { $0.count == UsageExport.columns.count })
            let column = Dictionary(uniqueKeysWithValues: UsageExport.columns.enumerated().map { ($1, $0) })
            let credits = data.reduce(0.0) { $0 + (Double($1[column["credits"]!]) ?? .nan) }
            let tokensIn = data.reduce(0) { $0 + (Int($1[column["tokens_in"]!]) ?? 0) }
            #expect(abs(credits - (totals["credits"] as? Double ?? -1)) < 0.001, "credits \(credits) vs the report's \(totals["credits"] ?? "?")")
            #expect(tokensIn == totals["tokens_in"] as? Int)
            #expect(Set(data.map { $0[column["id"]!] }).count == 2_345, "no row twice across pages")
            let consumers = Set(data.map { $0[column["consumer"]!] })
            #expect(consumers.contains("'=HYPERLINK(\"http://x\")") && consumers.contains("'@SUM(A1)") && consumers.contains("'+1")
                    && consumers.contains("a,b") && consumers.contains("line\nbreak") && consumers.contains("quote\"d"))
            #expect(!consumers.contains { $0.first.map { "=+-@".contains($0) } == true }, "no field starts as a formula")
            #expect(Set(data.map { $0[column["key_id"]!] }) == ["cred_own", ""], "a workspace sees its own key ids only")

            let jsonl = try await api.get("/api/v1/usage/export?workspace=\(ws)&format=jsonl&source=platform", token: harness.adminToken)
            let lines = String(decoding: jsonl.body, as: UTF8.self).split(separator: "\n")
            let objects = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
            let platformCredits = objects.reduce(0.0) { $0 + ($1["credits"] as? Double ?? .nan) }
            let bySource = try await api.get("/api/v1/usage?workspace=\(ws)&group_by=source", token: harness.adminToken)
            let platform = (bySource.json["groups"] as? [[String: Any]])?.first { $0["key"] as? String == "platform" }
            #expect(objects.count == 782 && objects.allSatisfy { $0["source"] as? String == "platform" && $0["key_id"] as? String == "cred_platform_secret_id" })
            #expect(abs(platformCredits - (platform?["credits"] as? Double ?? -1)) < 0.001)

            #expect(try await api.get("/api/v1/usage/export?workspace=\(ws)&format=xml", token: owner).status == 400)
            #expect(try await api.get("/api/v1/usage/export?workspace=\(ws)&source=someone", token: owner).status == 400)
            #expect(try await api.get("/api/v1/usage/export?workspace=ws_missing", token: harness.adminToken).status == 404)
            let other = try await api.createWorkspace("Other")
            #expect(try await api.get("/api/v1/usage/export?workspace=\(other)", token: owner).status == 404)
        }
    }
}
