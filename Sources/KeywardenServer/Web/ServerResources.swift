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
