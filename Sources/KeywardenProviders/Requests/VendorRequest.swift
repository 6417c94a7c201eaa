import Foundation
import KeywardenCore
import Synchronization

/// A request ready to send to a vendor: URL, method and headers with the key injected.
///
/// It holds the key for the moment of the call; printing it shows no header values.
public struct VendorRequest: Sendable, CustomStringConvertible {
    public let method: String
    public let url: String
    /// The base the path was appended to (scheme, host and any base path, no trailing slash): a URL the vendor hands
    /// out under it maps to the same path under Keywarden's face.
    public let base: String
    public let headers: [(name: String, value: String)]
    /// Values that must never appear in a message (the key, and the key as sent with its prefix).
    let secrets: [String]
    /// Whether the URL's host came from a card field (an endpoint, a base URL, a region) rather than the catalog:
    /// for a workspace's key, such a request is shaped by the workspace and goes through the egress guard.
    public let hostFromFields: Bool

    /// The secrets this request carries, for scrubbing what comes back (never for display).
    public var secretsForScrubbing: [String] { secrets }

    public var description: String {
        "VendorRequest(\(method) \(SecretScrubber(secrets: secrets).scrub(url)), headers: \(headers.map(\.name).joined(separator: ", ")))"
    }
}

/// Builds vendor requests from the catalog's data: base URL and path templates, the auth scheme,
/// the extras that travel as headers (only when filled), and the provider's static headers.
public enum VendorRequestBuilder {
    /// The `User-Agent` Keywarden sends.
    public static let userAgent = "Keywarden/0.5"

    /// The request for a provider's verification call.
    public static func verification(for provider: ProviderDefinition, credentials: VendorCredentials) throws(KeywardenError) -> VendorRequest {
        let call = provider.verification
        guard call.available, let method = call.method, let path = call.path else {
            throw KeywardenError(.unprocessable, code: "verification_unavailable",
                message: call.note ?? "\(provider.displayName) has no read-only call to test a key with.")
        }
        return try build(provider, credentials: credentials, method: method, path: path, baseTemplate: call.baseURL ?? provider.baseURL)
    }

    /// A request the gateway forwards: the caller's path and query taken as they are (never rendered as a
    /// template), the key injected with `auth` (the provider's own scheme unless an endpoint says otherwise),
    /// the filled extras as headers or query parameters, and the static headers the caller did not send itself.
    public static func forward(
        for provider: ProviderDefinition, credentials: VendorCredentials, method: String, pathAndQuery: String,
        auth: AuthScheme? = nil, callerHeaders: Set<String> = []
    ) throws(KeywardenError) -> VendorRequest {
        var pathAndQuery = pathAndQuery
        let values = credentials.templateValues
        let presentQuery = pathAndQuery.split(separator: "?", maxSplits: 1).dropFirst().first.map { query in
            Set(query.split(separator: "&").map { String($0.split(separator: "=", maxSplits: 1)[0]) })
        } ?? []
        for field in provider.extraFields {
            guard let name = field.query, let value = values[field.id], !value.isEmpty, !presentQuery.contains(name) else { continue }
            let encoded = value.addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? value
            pathAndQuery += (pathAndQuery.contains("?") ? "&" : "?") + "\(name)=\(encoded)"
        }
        return try build(provider, credentials: credentials, method: method, path: pathAndQuery, baseTemplate: provider.baseURL,
                         renderPath: false, auth: auth, forwarding: callerHeaders)
    }

    /// - Parameters:
    ///   - renderPath: whether `path` is the catalog's template (verification) or a caller's path (forwarding).
    ///   - forwarding: when forwarding, the header names (lowercased) the caller sent: the catalog's static
    ///     headers are defaults the caller may override, and no `User-Agent` / `Accept` of ours is added.
    /// Base URLs already judged valid (a call's base is almost always one seen before; parsing it costs ~3 % of a call).
    static let validBases = ValidBaseCache()

    static func build(
        _ provider: ProviderDefinition, credentials: VendorCredentials, method: String, path: String, baseTemplate: String?,
        renderPath: Bool = true, auth: AuthScheme? = nil, forwarding callerHeaders: Set<String>? = nil
    ) throws(KeywardenError) -> VendorRequest {
        let auth = auth ?? provider.auth
        let values = credentials.templateValues
        // Every filled value is checked against its field's pattern here, where it is used, whatever the store held.
        for field in provider.extraFields {
            if let pattern = field.pattern, let value = values[field.id], !pattern.matches(value) {
                throw KeywardenError(.unprocessable, code: "invalid_field_value",
                                     message: "\(field.label) of \(provider.displayName) does not match \(pattern); save it again.", field: "extras.\(field.id)")
            }
        }
        guard let baseTemplate else {
            throw KeywardenError(.unprocessable, code: "no_base_url", message: "\(provider.displayName) has no API Keywarden can call.")
        }
        // A template's placeholders are found once, for filling it and for naming what it misses.
        func render(_ template: FieldTemplate, what: String, encode: Bool = false) throws(KeywardenError) -> String {
            let filled = encode ? values.mapValues { $0.addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? $0 } : values
            guard let text = template.render(filled) else {
                let missing = template.placeholders.first { (values[$0] ?? "").isEmpty } ?? "?"
                let label = provider.fields.first { $0.id == missing }?.label ?? missing
                throw KeywardenError(.unprocessable, code: "field_required", message: "Fill in \(label) first (it is part of the \(what)).", field: "extras.\(missing)")
            }
            return text
        }
        let baseURLTemplate = FieldTemplate(baseTemplate)
        var base = try render(baseURLTemplate, what: "base URL")
        while base.hasSuffix("/") { base.removeLast() }
        // Judged here, where it is used, whatever the store held: a host or port no client can take never reaches one.
        if let problem = validBases.problem(base) {
            throw KeywardenError(.unprocessable, code: "invalid_base_url", message: "The base URL of \(provider.displayName) \(problem).", field: "extras.base_url")
        }
        var url = base + (path.hasPrefix("/") ? "" : "/") + (renderPath ? try render(FieldTemplate(path), what: "path", encode: true) : path)

        var headers: [(name: String, value: String)] = callerHeaders == nil ? [("User-Agent", userAgent), ("Accept", "application/json")] : []
        for (name, value) in provider.staticHeaders.sorted(by: { $0.key < $1.key }) where callerHeaders?.contains(name.lowercased()) != true {
            headers.append((name, value))
        }
        for field in provider.extraFields {
            if let header = field.header, let value = values[field.id], !value.isEmpty { headers.append((header, value)) }
        }

        var secrets: [String] = []
        if let key = credentials.key, !key.isBlank {
            let keyText = key.unprotectedString.trimmingWhitespacesAndNewlines
            secrets.append(keyText)
            switch auth.kind {
            case .header:
                let name = try auth.name.map { template throws(KeywardenError) in try render(FieldTemplate(template), what: "auth header") } ?? "Authorization"
                // An empty prefix field (the custom provider's) means no prefix.
                // A prefix keeps its spaces ("Bearer " for the custom provider): only line breaks are dropped from it.
                // The extras are read only for a prefix that names one (a plain "Bearer " needs none of them).
                let prefix = auth.prefix.flatMap { text -> String? in
                    let template = FieldTemplate(text)
                    guard !template.placeholders.isEmpty else { return text }
                    return template.render(credentials.extras.compactMapValues { $0.isBlank ? nil : $0.unprotectedString.trimmingNewlines })
                } ?? ""
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
                             hostFromFields: !baseURLTemplate.placeholders.isEmpty)
    }
}

extension CharacterSet {
    /// Characters that may stand unescaped in a query value.
    static let urlQueryValueAllowed: CharacterSet = {
        var set = CharacterSet.urlQueryAllowed
        set.remove(charactersIn: "&=+?#")
        return set
    }()
}

/// Base URLs that passed ``OutboundURL/problem(_:)``, remembered (at most 1,024; then forgotten all at once).
final class ValidBaseCache: Sendable {
    private let bases = Mutex(Set<String>())

    /// ``OutboundURL/problem(_:)`` of `base`, without parsing a base that passed before.
    func problem(_ base: String) -> String? {
        if bases.withLock({ $0.contains(base) }) { return nil }
        if let problem = OutboundURL.problem(base) { return problem }
        bases.withLock { bases in
            if bases.count >= 1024 { bases.removeAll() }
            bases.insert(base)
        }
        return nil
    }
}
