import Foundation

/// The providers the product knows, in display order, validated when loaded.
public struct ProviderCatalog: Sendable, Equatable {
    /// The catalog's format version; a file with another version is refused.
    public static let formatVersion = 1

    /// Every provider, sorted by display order then id.
    public let providers: [ProviderDefinition]
    private let indexByID: [String: Int]
    /// Each curated model's provider (the first in display order when several list it).
    private let indexByModel: [String: Int]

    /// Builds a catalog from definitions, validating each one.
    public init(providers: [ProviderDefinition]) throws {
        var seen: [String: Int] = [:]
        for provider in providers {
            try Self.validate(provider)
            guard seen[provider.id] == nil else {
                throw CatalogError(entry: provider.id, problem: "the id is used by more than one entry")
            }
            seen[provider.id] = 0
        }
        let sorted = providers.sorted { ($0.displayOrder, $0.id) < ($1.displayOrder, $1.id) }
        self.providers = sorted
        self.indexByID = Dictionary(uniqueKeysWithValues: sorted.enumerated().map { ($1.id, $0) })
        var indexByModel: [String: Int] = [:]
        for (index, provider) in sorted.enumerated() {
            for model in provider.models where indexByModel[model.id] == nil { indexByModel[model.id] = index }
        }
        self.indexByModel = indexByModel
    }

    /// Decodes and validates a catalog document (JSON).
    public init(json data: Data) throws {
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: data)
        } catch let error as DecodingError {
            throw Self.describe(error, in: data)
        }
        guard document.version == Self.formatVersion else {
            throw CatalogError(entry: nil, problem: "format version \(document.version) is not supported (this build reads version \(Self.formatVersion))")
        }
        try self.init(providers: document.providers)
    }

    /// The provider with this id.
    public func provider(_ id: String) -> ProviderDefinition? {
        indexByID[id].map { providers[$0] }
    }

    /// Whether the catalog has a provider with this id.
    public func contains(_ id: String) -> Bool { indexByID[id] != nil }

    /// The providers of one category, in display order.
    public func providers(in category: ProviderCategory) -> [ProviderDefinition] {
        providers.filter { $0.category == category }
    }

    /// The first provider whose curated list has this model id (for routing by model).
    public func provider(servingModel model: String) -> ProviderDefinition? {
        indexByModel[model].map { providers[$0] }
    }

    // MARK: Upstream overrides

    /// The configuration variable that overrides a provider's base URL: `KEYWARDEN_UPSTREAM_<ID>`,
    /// the id upper-cased with `-` written as `_`.
    public static func upstreamVariable(for providerID: String) -> String {
        upstreamPrefix + providerID.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    static let upstreamPrefix = "KEYWARDEN_UPSTREAM_"

    /// Returns the catalog with base URLs replaced from `KEYWARDEN_UPSTREAM_<ID>` variables.
    ///
    /// A variable that names no provider, or whose value is not an http(s) URL, is an error:
    /// a typo must not silently send traffic to the real vendor.
    public func applyingUpstreamOverrides(from environment: [String: String]) throws -> ProviderCatalog {
        var byVariable: [String: String] = [:]
        for provider in providers {
            byVariable[Self.upstreamVariable(for: provider.id)] = provider.id
        }
        var overrides: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix(Self.upstreamPrefix) {
            guard let id = byVariable[name] else {
                throw CatalogError(entry: nil, problem: "\(name) names no provider of the catalog")
            }
            guard Self.isHTTPURL(value) else {
                throw CatalogError(entry: id, problem: "\(name) must be an http(s) URL, got '\(value)'")
            }
            overrides[id] = value.hasSuffix("/") ? String(value.dropLast()) : value
        }
        guard !overrides.isEmpty else { return self }
        return try ProviderCatalog(providers: providers.map { provider in
            overrides[provider.id].map { provider.withBaseURL($0) } ?? provider
        })
    }

    // MARK: Validation

    static func validate(_ p: ProviderDefinition) throws {
        func fail(_ problem: String) -> CatalogError { CatalogError(entry: p.id, problem: problem) }

        guard isIdentifier(p.id, separator: "-") else {
            throw fail("the id must be lowercase letters, digits and '-'")
        }
        guard !p.displayName.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw fail("display_name is empty")
        }
        guard !p.modalities.isEmpty else { throw fail("modalities is empty") }

        var fieldIDs = Set<String>()
        for field in p.fields {
            guard isIdentifier(field.id, separator: "_") else {
                throw fail("field id '\(field.id)' must be lowercase letters, digits and '_'")
            }
            guard fieldIDs.insert(field.id).inserted else { throw fail("field '\(field.id)' appears twice") }
            guard !field.label.isEmpty else { throw fail("field '\(field.id)' has no label") }
            if field.kind == .secret, field.id != ProviderDefinition.keyFieldID {
                throw fail("only the '\(ProviderDefinition.keyFieldID)' field may be of kind secret")
            }
        }
        if let key = p.keyField, key.kind != .secret {
            throw fail("the '\(ProviderDefinition.keyFieldID)' field must be of kind secret")
        }

        switch p.auth.kind {
        case .none:
            break
        case .header, .query:
            guard p.keyField != nil else { throw fail("auth sends a key but the card has no '\(ProviderDefinition.keyFieldID)' field") }
            guard let name = p.auth.name, !name.isEmpty else { throw fail("auth of kind \(p.auth.kind.rawValue) needs a name") }
        }

        let templates = [p.baseURL, p.auth.name, p.auth.prefix, p.verification.path, p.verification.baseURL].compactMap { $0 }
        for template in templates {
            for name in FieldTemplate(template).placeholders where !fieldIDs.contains(name) {
                throw fail("'{\(name)}' in '\(template)' names no field of the card")
            }
        }
        // A text field rendered into a base URL or a header name could change the host or the header: it needs a pattern.
        for template in [p.baseURL, p.verification.baseURL, p.auth.name].compactMap({ $0 }) {
            for name in FieldTemplate(template).placeholders {
                guard let field = p.fields.first(where: { $0.id == name }) else { continue }
                if field.kind != .url, field.pattern == nil {
                    throw fail("field '\(name)' is rendered into '\(template)' and needs a pattern")
                }
                if field.kind == .url, template != "{\(name)}" {
                    throw fail("url field '\(name)' must be the whole of '\(template)'")
                }
            }
        }
        for rule in p.callDefaults {
            if case .field(let id) = rule.source {
                guard let field = p.fields.first(where: { $0.id == id }), field.kind != .secret else {
                    throw fail("call default for \(rule.endpoint) takes its value from '\(id)', which is no extra field of the card")
                }
                // A value put into the path must not be able to leave its segment.
                if case .path = rule.target, field.pattern == nil {
                    throw fail("field '\(id)' is put into the path of \(rule.endpoint) and needs a pattern")
                }
            }
        }
        if p.baseURL != nil, p.sharedKeyEndpoints.isEmpty {
            throw fail("shared_key_endpoints must list the endpoints a shared key may be used for (or \"*\" for all)")
        }
        if let base = p.baseURL, FieldTemplate(base).placeholders.isEmpty, !isHTTPURL(base) {
            throw fail("base_url '\(base)' is not an http(s) URL")
        }

        if p.verification.available {
            guard let method = p.verification.method, ["GET", "POST", "HEAD"].contains(method) else {
                throw fail("verification needs a method of GET, POST or HEAD")
            }
            guard let path = p.verification.path, path.hasPrefix("/") else {
                throw fail("verification needs a path starting with '/'")
            }
            guard p.baseURL != nil || p.verification.baseURL != nil else {
                throw fail("verification is available but there is no base_url to call")
            }
        } else if (p.verification.note ?? "").isEmpty {
            throw fail("verification is not available: say why in its note")
        }

        var modelIDs = Set<String>()
        for model in p.models {
            guard !model.id.isEmpty else { throw fail("a model has an empty id") }
            guard modelIDs.insert(model.id).inserted else { throw fail("model '\(model.id)' appears twice") }
        }
        switch (p.models.isEmpty, p.defaultModel) {
        case (true, nil):
            break
        case (true, .some):
            throw fail("default_model is set but the provider has no curated models")
        case (false, nil):
            throw fail("the provider has curated models but no default_model")
        case (false, .some(let model)):
            guard let entry = p.model(model) else { throw fail("default_model '\(model)' is not in its models") }
            guard !entry.legacy else { throw fail("default_model '\(model)' is marked legacy") }
        }
    }

    static func isIdentifier(_ value: String, separator: Character) -> Bool {
        guard let first = value.first, first.isLetter, first.isLowercase || !first.isCased else { return false }
        return value.allSatisfy { ($0.isLetter && $0.isLowercase && $0.isASCII) || ($0.isNumber && $0.isASCII) || $0 == separator }
    }

    static func isHTTPURL(_ value: String) -> Bool {
        OutboundURL.problem(value) == nil
    }

    private struct Document: Decodable {
        let version: Int
        let providers: [ProviderDefinition]
    }

    /// Turns a decoding error into one that names the entry (its id when readable) and the field.
    static func describe(_ error: DecodingError, in data: Data) -> CatalogError {
        let path: [any CodingKey]
        let detail: String
        switch error {
        case .dataCorrupted(let context):
            path = context.codingPath
            detail = context.codingPath.isEmpty ? "not valid JSON" : context.debugDescription
        case .keyNotFound(let key, let context):
            path = context.codingPath
            detail = "'\(key.stringValue)' is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            path = context.codingPath
            detail = context.debugDescription
        @unknown default:
            return CatalogError(entry: nil, problem: "could not be read")
        }
        guard path.count >= 2, path[0].stringValue == "providers", let index = path[1].intValue else {
            let location = path.map(\.stringValue).joined(separator: ".")
            return CatalogError(entry: nil, problem: location.isEmpty ? detail : "\(location): \(detail)")
        }
        let field = path.dropFirst(2).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        let entry = entryID(at: index, in: data) ?? "#\(index)"
        return CatalogError(entry: entry, problem: field.isEmpty ? detail : "\(field): \(detail)")
    }

    private static func entryID(at index: Int, in data: Data) -> String? {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let providers = root["providers"] as? [Any], index < providers.count,
              let entry = providers[index] as? [String: Any] else { return nil }
        return entry["id"] as? String
    }
}
