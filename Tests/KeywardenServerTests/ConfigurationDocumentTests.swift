import Foundation
import Testing

/// The README's configuration table is the one list of settings: every `KEYWARDEN_…` variable the code reads is in it,
/// and every variable it names is read.
@Suite("Configuration table")
struct ConfigurationDocumentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `KEYWARDEN_…` names in `text` (a prefix read for many names, such as `KEYWARDEN_UPSTREAM_`, ends with `_`).
    static func names(in text: String) -> Set<String> {
        let pattern = try! NSRegularExpression(pattern: "KEYWARDEN_[A-Z0-9_]+")
        return Set(pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { Range($0.range, in: text).map { String(text[$0]) } })
    }

    /// The names the code reads: string literals in the sources of the server and the command line.
    static func namesRead() throws -> Set<String> {
        var names: Set<String> = []
        let sources = root.appendingPathComponent("Sources")
        let walker = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)
        while let url = walker?.nextObject() as? URL {
            // The benchmark and the mock vendors are tools of their own, not the server's settings.
            guard url.pathExtension == "swift", !url.path.contains("/keywarden-bench/"), !url.path.contains("/keywarden-mock-vendors/") else { continue }
            let text = try String(contentsOf: url, encoding: .utf8)
            let literal = try NSRegularExpression(pattern: #""(KEYWARDEN_[A-Z0-9_]+)""#)
            for match in literal.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                if let range = Range(match.range(at: 1), in: text) { names.insert(String(text[range])) }
            }
        }
        return names
    }

    @Test("every variable the code reads is in the README's table, and every variable the table names is read")
    func readmeTableMatchesTheCode() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let table = readme.components(separatedBy: "## Configuration").dropFirst().first?.components(separatedBy: "\n## ").first ?? ""
        // `KEYWARDEN_UPSTREAM_<ID>` in the table is the prefix `KEYWARDEN_UPSTREAM_` in the code.
        let documented = Set(Self.names(in: table.replacingOccurrences(of: "<ID>", with: "")))
        // The custody devices' settings are read by their clients (issue 28's building blocks, docs/vault.md), which
        // `keywarden serve` does not use yet: they join the table when the master key can live in a device.
        let all = try Self.namesRead()
        let read = all.subtracting(["KEYWARDEN_HTML"])
        #expect(read.count > 30, "the scan found the code's variables")
        #expect(read.subtracting(documented).sorted() == [], "read by the code, missing from the README's table")
        // An example of a prefix's name (`KEYWARDEN_UPSTREAM_OPENAI`) is read through its prefix.
        let unread = documented.filter { name in !read.contains(name) && !read.contains { $0.hasSuffix("_") && name.hasPrefix($0) } }
        #expect(unread.sorted() == [], "in the README's table, read nowhere")
    }
}
