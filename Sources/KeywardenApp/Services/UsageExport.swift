import Foundation
import KeywardenCore
import KeywardenStore

/// Usage rows as a file: CSV (RFC 4180, with a header) or JSON lines, one call per line, written page by page.
public struct UsageExport: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case csv, jsonl

        public var contentType: String { self == .csv ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8" }
    }

    public let format: Format
    /// Whether the platform's key ids appear (an export for the platform); a workspace sees its own keys' ids only.
    public let showsPlatformKeys: Bool

    public init(format: Format, showsPlatformKeys: Bool) {
        self.format = format
        self.showsPlatformKeys = showsPlatformKeys
    }

    public static let columns = [
        "at", "workspace_id", "provider", "model", "key_id", "source", "modality", "consumer", "status", "latency_ms",
        "tokens_in", "tokens_out", "characters", "credits", "attempts", "id",
    ]

    /// The first line of the file (CSV's header; nothing for JSON lines).
    public var header: String { format == .csv ? Self.columns.joined(separator: ",") + "\r\n" : "" }

    /// One row as a line of the file.
    public func line(_ row: UsageRepository.Row) -> String {
        let r = row.record
        let keyID = r.source == .byok || showsPlatformKeys ? r.credentialID : nil
        let values: [String?] = [
            row.at, r.workspaceID, r.providerID, r.model, keyID, r.source?.rawValue, r.modality.rawValue, r.consumer, "\(r.status)",
            "\(r.latencyMilliseconds)", r.counts.inputTokens.map(String.init), r.counts.outputTokens.map(String.init),
            r.counts.characters.map(String.init), BudgetService.credits(r.milliCredits), "\(r.attempts)", row.id,
        ]
        switch format {
        case .csv:
            return values.map { Self.csvField($0 ?? "") }.joined(separator: ",") + "\r\n"
        case .jsonl:
            var object: [String: Any] = [:]
            let numeric: Set<String> = ["status", "latency_ms", "tokens_in", "tokens_out", "characters", "credits", "attempts"]
            for (name, value) in zip(Self.columns, values) {
                guard let value else { object[name] = NSNull(); continue }
                if name == "credits" {
                    object[name] = Double(value) ?? 0
                } else if numeric.contains(name) {
                    object[name] = Int(value) ?? 0
                } else {
                    object[name] = value
                }
            }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self) + "\n"
        }
    }

    /// A CSV field: quoted when it holds a comma, quote or line break; a text a spreadsheet would run as a formula
    /// (`=`, `+`, `-`, `@`, a tab or a carriage return first) is prefixed with `'` so it stays text.
    static func csvField(_ value: String) -> String {
        var text = value
        if let first = text.unicodeScalars.first, ["=", "+", "-", "@", "\t", "\r"].contains(first) {
            text = "'" + text
        }
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

extension UsageService {
    /// The rows to export, one page at a time (`after`: the last row of the previous page).
    public func exportPage(_ query: UsageQuery, source: KeySource?, after: UsageRepository.Row?, limit: Int = 1000) async throws -> [UsageRepository.Row] {
        try await store.engine.read { db in
            if let workspace = query.workspaceID, try await self.store.workspaces.get(workspace, on: db) == nil, after == nil {
                throw KeywardenError.notFound("workspace")
            }
            return try await self.repository.rows(query, source: source, after: after.map { ($0.at, $0.id) }, limit: limit, on: db)
        }
    }

    /// Writes every row of the export through `write`, page by page.
    public func export(_ query: UsageQuery, source: KeySource?, as export: UsageExport, write: (String) async throws -> Void) async throws {
        try await write(export.header)
        var last: UsageRepository.Row?
        while true {
            let page = try await exportPage(query, source: source, after: last)
            guard !page.isEmpty else { return }
            try await write(page.map(export.line).joined())
            last = page.last
        }
    }
}
