import Foundation
import Mustache

/// Files shipped in the server's resource bundle (beside the executable): the OpenAPI document, the
/// page templates and the static assets.
enum ServerResources {
    static let bundleName = "Keywarden_KeywardenServer.resources"

    /// The resource bundle's directory, or `nil` if it is missing.
    static let directory: URL? = {
        var candidates = [Bundle.main.bundleURL]
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            candidates.append(executable.deletingLastPathComponent())
        }
        return candidates.map { $0.appendingPathComponent(bundleName) }
            .first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("openapi.yaml").path) }
    }()

    /// A resource's bytes.
    static func data(_ path: String) -> Data? {
        directory.flatMap { try? Data(contentsOf: $0.appendingPathComponent(path)) }
    }

    /// Every `web/templates/*.mustache`, parsed once.
    static let templates: MustacheLibrary = {
        // Before parsing: each template names it in its first line (`{{% CONTENT_TYPE: KEYWARDEN_HTML}}`).
        MustacheContentTypes.register(ScalarHTMLEscaping(), named: ScalarHTMLEscaping.name)
        var library = MustacheLibrary()
        guard let folder = directory?.appendingPathComponent("web/templates"),
              let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return library }
        for name in names where name.hasSuffix(".mustache") {
            guard let text = try? String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8) else { continue }
            try? library.register(text, named: String(name.dropLast(".mustache".count)))
        }
        return library
    }()
}

/// HTML escaping by Unicode scalar, for every value a template prints.
///
/// swift-mustache's own escaping compares whole Characters, so a quote followed by a combining mark (`"\u{301}`) is one
/// Character it does not know and reaches an attribute as a raw quote — a workspace name could add attributes to a
/// platform admin's button. Every scalar of `<`, `>`, `&`, `"` and `'` is replaced here, whatever follows it.
struct ScalarHTMLEscaping: MustacheContentType {
    static let name = "KEYWARDEN_HTML"

    func escapeText(_ text: String) -> String {
        var escaped = ""
        escaped.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "&": escaped += "&amp;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }
}
