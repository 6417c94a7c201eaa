import ArgumentParser
import Foundation
import KeywardenCore
import KeywardenApp
import KeywardenStore

/// `keywarden usage`: the metered gateway calls, grouped, as a table.
struct Usage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Report metered gateway calls (requests, tokens, characters, credits).")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Only this workspace (its id).") var workspace: String?
    @Option(help: "From this day (2026-11-01) or RFC 3339 time.") var from: String?
    @Option(help: "To this day (inclusive) or RFC 3339 time (exclusive).") var to: String?
    @Option(name: .customLong("group-by"), help: "provider, source, model, day, key, workspace, modality or consumer.") var groupBy = "provider"
    @Option(help: "Instead of the table, every call of the period as csv or jsonl on standard output.") var export: String?
    @Option(help: "With --export: only calls paid from this source (byok, platform or managed).") var source: String?

    func run() async throws {
        try await reportingFailures {
            guard let group = UsageQuery.GroupBy(rawValue: groupBy) else {
                throw ValidationError("--group-by is one of \(UsageQuery.GroupBy.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let query = UsageQuery(workspaceID: workspace, from: try UsageQuery.time(from, field: "from", endOfDay: false),
                                   to: try UsageQuery.time(to, field: "to", endOfDay: true), groupBy: group)
            if let export {
                guard let format = UsageExport.Format(rawValue: export) else { throw ValidationError("--export is csv or jsonl") }
                let paid = try source.map { text in
                    guard let source = KeySource(rawValue: text) else { throw ValidationError("--source is byok, platform or managed") }
                    return source
                }
                try await global.withStore { app in
                    try await app.usage.export(query, source: paid, as: UsageExport(format: format, showsPlatformKeys: true)) { text in
                        FileHandle.standardOutput.write(Data(text.utf8))
                    }
                }
                return
            }
            let report = try await global.withStore { app in try await app.usage.report(query) }
            func row(_ key: String, _ t: UsageTotals) -> String {
                let name = key.isEmpty ? "(none)" : key
                return name.padding(toLength: max(24, name.count), withPad: " ", startingAt: 0)
                    + String(format: " %9d %7d %12d %12d %11d %10.3f", t.requests, t.errors, t.inputTokens, t.outputTokens, t.characters, t.credits)
            }
            say(groupBy.padding(toLength: 24, withPad: " ", startingAt: 0) + "  requests  errors    tokens in   tokens out  characters    credits")
            for group in report.groups { say(row(group.key, group.totals)) }
            say(row("total", report.totals))
        }
    }
}
