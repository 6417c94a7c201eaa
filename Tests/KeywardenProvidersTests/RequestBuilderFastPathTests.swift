import Foundation
import KeywardenCore
import Testing
@testable import KeywardenProviders

/// ``VendorRequestBuilder/build(_:credentials:method:path:baseTemplate:renderPath:auth:forwarding:)`` with its
/// shortcuts (a key trimmed by Foundation only when it has something to trim, each template scanned once, the extras
/// read for an auth prefix only when it names one), pinned to the code it replaced over every catalog provider and
/// keys and extras of every shape.
@Suite("Vendor requests: the shortcuts build the same request")
struct RequestBuilderFastPathTests {
    /// ``VendorRequestBuilder/build`` as it was.
    static func referenceBuild(
        _ provider: ProviderDefinition, credentials: VendorCredentials, method: String, path: String, baseTemplate: String?,
        renderPath: Bool = true, auth: AuthScheme? = nil, forwarding callerHeaders: Set<String>? = nil
    ) throws(KeywardenError) -> VendorRequest {
        let auth = auth ?? provider.auth
        let values = credentials.extras.compactMapValues { $0.isBlank ? nil : $0.unprotectedString.trimmingCharacters(in: .whitespacesAndNewlines) }
        for field in provider.extraFields {
            if let pattern = field.pattern, let value = values[field.id], !pattern.matches(value) {
                throw KeywardenError(.unprocessable, code: "invalid_field_value",
                                     message: "\(field.label) of \(provider.displayName) does not match \(pattern); save it again.", field: "extras.\(field.id)")
            }
        }
        guard let baseTemplate else {
            throw KeywardenError(.unprocessable, code: "no_base_url", message: "\(provider.displayName) has no API Keywarden can call.")
        }
        func render(_ template: String, what: String, encode: Bool = false) throws(KeywardenError) -> String {
            let filled = encode ? values.mapValues { $0.addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? $0 } : values
            guard let text = FieldTemplate(template).render(filled) else {
                let missing = FieldTemplate(template).placeholders.first { (values[$0] ?? "").isEmpty } ?? "?"
                let label = provider.fields.first { $0.id == missing }?.label ?? missing
                throw KeywardenError(.unprocessable, code: "field_required", message: "Fill in \(label) first (it is part of the \(what)).", field: "extras.\(missing)")
            }
            return text
        }
        var base = try render(baseTemplate, what: "base URL")
        while base.hasSuffix("/") { base.removeLast() }
        if let problem = OutboundURL.problem(base) {
            throw KeywardenError(.unprocessable, code: "invalid_base_url", message: "The base URL of \(provider.displayName) \(problem).", field: "extras.base_url")
        }
        var url = base + (path.hasPrefix("/") ? "" : "/") + (renderPath ? try render(path, what: "path", encode: true) : path)
        var headers: [(name: String, value: String)] = callerHeaders == nil ? [("User-Agent", VendorRequestBuilder.userAgent), ("Accept", "application/json")] : []
        for (name, value) in provider.staticHeaders.sorted(by: { $0.key < $1.key }) where callerHeaders?.contains(name.lowercased()) != true {
            headers.append((name, value))
        }
        for field in provider.extraFields {
            if let header = field.header, let value = values[field.id], !value.isEmpty { headers.append((header, value)) }
        }
        var secrets: [String] = []
        if let key = credentials.key, !key.isBlank {
            let keyText = key.unprotectedString.trimmingCharacters(in: .whitespacesAndNewlines)
            secrets.append(keyText)
            switch auth.kind {
            case .header:
                let name = try auth.name.map { template throws(KeywardenError) in try render(template, what: "auth header") } ?? "Authorization"
                let rawValues = credentials.extras.compactMapValues { $0.isBlank ? nil : $0.unprotectedString.trimmingCharacters(in: .newlines) }
                let prefix = auth.prefix.flatMap { FieldTemplate($0).render(rawValues) } ?? ""
                headers.append((name, prefix + keyText))
                secrets.append(prefix + keyText)
            case .query:
                let name = auth.name ?? "key"
                let encoded = keyText.addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? keyText
                url += (url.contains("?") ? "&" : "?") + "\(name)=\(encoded)"
                secrets.append(encoded)
            case .none:
                break
            }
        }
        return VendorRequest(method: method, url: url, base: base, headers: headers, secrets: secrets,
                             hostFromFields: !FieldTemplate(baseTemplate).placeholders.isEmpty)
    }

    /// A request as comparable text: everything it carries, secrets included (only ever compared, never shown).
    static func shape(_ result: Result<VendorRequest, KeywardenError>) -> String {
        switch result {
        case .success(let request):
            return [request.method, request.url, request.headers.map { "\($0.name)=\($0.value)" }.joined(separator: "\n"),
                    request.secretsForScrubbing.joined(separator: "\n"), "\(request.hostFromFields)"].joined(separator: "\n--\n")
        case .failure(let error):
            return "error \(error.code) \(error.message) \(error.field ?? "-")"
        }
    }

    static let keys = ["sk-abc123", " sk-abc123", "sk-abc123 ", "\tsk\n", "\r\nsk-abc\r\n", "\u{A0}sk\u{A0}", "\u{2028}sk", "sk\u{85}", "ключ",
                       "é", "sk\u{301}", "😀", "a b&c", "x", "!~", "\u{3000}k\u{3000}", "\u{FEFF}k", "  ", ""]
    static let extras: [[String: String]] = [
        [:],
        ["endpoint": "https://my-resource.openai.azure.com", "api_version": "2024-10-21", "region": "westeurope", "base_url": "https://api.example.com",
         "auth_header": "X-Key", "auth_prefix": "Bearer ", "organization_id": "org-1", "project_id": " proj \n", "default_voice_id": "v"],
        ["base_url": " https://api.example.com/ ", "auth_header": "Authorization", "auth_prefix": "Token\n", "organization_id": "\u{A0}org\u{A0}"],
        ["base_url": "https://api.example.com", "auth_header": "X-Key", "auth_prefix": "", "region": "bad region"],
        ["base_url": "https://api.example.com", "auth_header": "X-Key", "auth_prefix": "\u{2028}Key \u{2028}", "endpoint": "https://x.example/"],
    ]

    @Test("verification and forwarded requests are the same for every catalog provider, key and set of extras")
    func sameRequests() throws {
        let catalog = try ProviderCatalog.load()
        var built = 0
        for provider in catalog.providers {
            for extras in Self.extras {
                for keyText in Self.keys {
                    let credentials = VendorCredentials(key: Secret(keyText), extras: extras.mapValues { Secret($0) })
                    let call = provider.verification
                    if call.available, let method = call.method, let path = call.path {
                        let actual = Result { () throws(KeywardenError) in
                            try VendorRequestBuilder.build(provider, credentials: credentials, method: method, path: path, baseTemplate: call.baseURL ?? provider.baseURL)
                        }
                        let expected = Result { () throws(KeywardenError) in
                            try Self.referenceBuild(provider, credentials: credentials, method: method, path: path, baseTemplate: call.baseURL ?? provider.baseURL)
                        }
                        #expect(Self.shape(actual) == Self.shape(expected), "\(provider.id) verification")
                        if case .success = actual { built += 1 }
                    }
                    for callerHeaders: Set<String> in [[], ["anthropic-version", "user-agent"]] {
                        let actual = Result { () throws(KeywardenError) in
                            try VendorRequestBuilder.build(provider, credentials: credentials, method: "POST", path: "/v1/x?y=1", baseTemplate: provider.baseURL,
                                                           renderPath: false, auth: provider.chatCompletions?.auth, forwarding: callerHeaders)
                        }
                        let expected = Result { () throws(KeywardenError) in
                            try Self.referenceBuild(provider, credentials: credentials, method: "POST", path: "/v1/x?y=1", baseTemplate: provider.baseURL,
                                                    renderPath: false, auth: provider.chatCompletions?.auth, forwarding: callerHeaders)
                        }
                        #expect(Self.shape(actual) == Self.shape(expected), "\(provider.id) forward")
                        if case .success = actual { built += 1 }
                    }
                }
            }
        }
        #expect(built > 100)
    }

    /// ``FieldTemplate/placeholders`` as it was, found on every use.
    static func referencePlaceholders(_ text: String) -> [String] {
        var names: [String] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            let afterOpen = rest.index(after: open)
            guard let close = rest[afterOpen...].firstIndex(of: "}") else { break }
            names.append(String(rest[afterOpen..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }

    @Test("a template's placeholders are found once, in order, as before")
    func placeholdersOnce() {
        for text in ["", "https://api.example.com", "{base_url}", "https://{region}.x/{path}", "{a{b}", "{}", "{", "}{x}", "{é}{\u{301}}", "{a}{a}"] {
            let template = FieldTemplate(text)
            #expect(template.placeholders == Self.referencePlaceholders(text) && template.text == text)
        }
        #expect(FieldTemplate("https://{region}.x/{path}").placeholders == ["region", "path"])
        #expect(FieldTemplate("{a{b}").placeholders == ["a{b"])
    }
}
