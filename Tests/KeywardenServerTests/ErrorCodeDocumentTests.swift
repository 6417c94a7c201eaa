import Foundation
import Testing

/// Error codes are a closed set: every code the sources answer with is in docs/api.md's table, and every code the table
/// names is answered somewhere.
@Suite("Error codes")
struct ErrorCodeDocumentTests {
    /// The codes written in the sources: `code: "x"` (errors and their defaults), `.local(status, "x"` (the gateway's own
    /// failures), a JSON error body's `"code":"x"`, and ``StoreError``'s codes.
    static func codesInSources() throws -> Set<String> {
        let patterns = [#"\bcode: (?:String = )?"([a-z][a-z0-9_]*)""#, #"\.local\(\d+, "([a-z][a-z0-9_]*)""#, #""code":"([a-z][a-z0-9_]*)""#]
            .map { try! NSRegularExpression(pattern: $0) }
        let storeCodes = try! NSRegularExpression(pattern: #"case \.[a-zA-Z]+: return "([a-z_]+)""#)
        var codes: Set<String> = []
        let walker = FileManager.default.enumerator(at: ConfigurationDocumentTests.root.appendingPathComponent("Sources"), includingPropertiesForKeys: nil)
        while let url = walker?.nextObject() as? URL {
            // The mock vendors answer as the vendors do, with their codes, not Keywarden's.
            guard url.pathExtension == "swift", !url.path.contains("/keywarden-mock-vendors/"), !url.path.contains("/keywarden-bench/") else { continue }
            let text = try String(contentsOf: url, encoding: .utf8)
            for pattern in patterns + (url.lastPathComponent == "StoreError.swift" ? [storeCodes] : []) {
                for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                    if let range = Range(match.range(at: 1), in: text) { codes.insert(String(text[range])) }
                }
            }
        }
        return codes
    }

    /// The codes of docs/api.md's table: the first cell of each row of the "Errors" section.
    static func documentedCodes() throws -> Set<String> {
        let doc = try String(contentsOf: ConfigurationDocumentTests.root.appendingPathComponent("docs/api.md"), encoding: .utf8)
        let section = doc.components(separatedBy: "## Errors").dropFirst().first?.components(separatedBy: "\n## ").first ?? ""
        let row = try! NSRegularExpression(pattern: #"(?m)^\| `([a-z][a-z0-9_]*)` \|"#)
        return Set(row.matches(in: section, range: NSRange(section.startIndex..., in: section)).compactMap {
            Range($0.range(at: 1), in: section).map { String(section[$0]) }
        })
    }

    @Test("every code the sources answer with is documented, and every documented code is answered somewhere")
    func documentedBothWays() throws {
        let sources = try Self.codesInSources()
        let documented = try Self.documentedCodes()
        #expect(sources.count > 50 && documented.count > 50, "both lists were read")
        #expect(sources.subtracting(documented).sorted() == [], "answered but not in docs/api.md")
        #expect(documented.subtracting(sources).sorted() == [], "in docs/api.md but answered nowhere")
    }
}
