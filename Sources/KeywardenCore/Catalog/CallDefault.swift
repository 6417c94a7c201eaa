import Foundation

/// A value a call may leave out and the serving key fills in (seed 000): the model, Anthropic's `max_tokens`,
/// ElevenLabs' voice. Applied only when the caller left the value out, never over what the caller sent.
///
/// Written in the catalog as `{"endpoint": "POST /v1/messages", "member": "max_tokens", "from": "default_max_tokens",
/// "otherwise": "4096"}` (a body member) or `{"endpoint": "POST /v1/text-to-speech", "path": "/v1/text-to-speech/{value}",
/// "from": "default_voice_id"}` (the path, rewritten). `from` is `default_model` or the id of one of the card's fields.
public struct CallDefault: Codable, Sendable, Equatable {
    /// Where the value goes.
    public enum Target: Sendable, Equatable {
        /// A member of the JSON request body, added when absent or `null` (and for `model`, when it is `"default"`).
        case member(String)
        /// The path, replaced by this template with `{value}` filled in; the query is kept.
        case path(String)
    }

    /// Where the value comes from.
    public enum Source: Sendable, Equatable {
        /// The serving key's default model (else its card's, else the catalog's: the candidate's model).
        case defaultModel
        /// One of the serving key's fields.
        case field(String)
    }

    /// The calls it applies to.
    public let endpoint: EndpointRule
    public let target: Target
    public let source: Source
    /// The value when the key has none (the catalog's own default, such as Anthropic's 4096 max tokens).
    public let otherwise: String?

    public init(endpoint: EndpointRule, target: Target, source: Source, otherwise: String? = nil) {
        self.endpoint = endpoint
        self.target = target
        self.source = source
        self.otherwise = otherwise
    }

    /// The default a chat completions endpoint at `path` gives every call to it: the serving key's model, when the call
    /// names none; `nil` when `POST path` is not an endpoint rule.
    static func chatCompletionsModel(path: String) -> CallDefault? {
        EndpointRule("POST \(path)").map { CallDefault(endpoint: $0, target: .member("model"), source: .defaultModel) }
    }

    /// The written form of ``Source/defaultModel``.
    static let defaultModelSource = "default_model"

    enum CodingKeys: String, CodingKey {
        case endpoint, member, path, from, otherwise
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let text = try c.decode(String.self, forKey: .endpoint)
        guard let rule = EndpointRule(text), rule.method != "*" else {
            throw DecodingError.dataCorruptedError(forKey: .endpoint, in: c, debugDescription: "'\(text)' is not 'METHOD /path'")
        }
        endpoint = rule
        switch (try c.decodeIfPresent(String.self, forKey: .member), try c.decodeIfPresent(String.self, forKey: .path)) {
        case (let member?, nil) where !member.isEmpty:
            target = .member(member)
        case (nil, let template?) where template.hasPrefix("/") && template.contains("{value}"):
            target = .path(template)
        default:
            throw DecodingError.dataCorruptedError(forKey: .member, in: c, debugDescription: "a call default sets either a body member or a path with {value}")
        }
        let from = try c.decode(String.self, forKey: .from)
        source = from == Self.defaultModelSource ? .defaultModel : .field(from)
        otherwise = try c.decodeIfPresent(String.self, forKey: .otherwise)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(endpoint.description, forKey: .endpoint)
        switch target {
        case .member(let name): try c.encode(name, forKey: .member)
        case .path(let template): try c.encode(template, forKey: .path)
        }
        switch source {
        case .defaultModel: try c.encode(Self.defaultModelSource, forKey: .from)
        case .field(let id): try c.encode(id, forKey: .from)
        }
        try c.encodeIfPresent(otherwise, forKey: .otherwise)
    }
}

/// What a call left out, filled in for one serving key: the path to call and the body members to add.
public struct CallDefaultsPlan: Sendable, Equatable {
    /// A body member to add, with its value as JSON text (`"gpt-5.4-mini"`, `4096`).
    public struct Member: Sendable, Equatable {
        public let name: String
        public let json: String
        public init(name: String, json: String) {
            self.name = name
            self.json = json
        }
    }

    /// The path and query to call (the caller's, or rewritten to name a default).
    public var pathAndQuery: String
    /// The members to add to the JSON body, in the catalog's order, each name once.
    public var members: [Member] = []
    /// The model the call will use when a default filled it in.
    public var model: String?

    /// `value` as a JSON string literal.
    public static func jsonString(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension ProviderDefinition {
    /// The call defaults that apply to `method` and `pathAndQuery`: the catalog's own, then the model of the
    /// OpenAI-shaped chat completions endpoint.
    public func callDefaults(method: String, pathAndQuery: String) -> [CallDefault] {
        guard !callDefaults.isEmpty || chatCompletions != nil, let path = EndpointRule.plainPath(pathAndQuery) else { return [] }
        var matching = callDefaults.filter { $0.endpoint.allows(method: method, path: path) }
        if let endpoint = chatCompletions, method == "POST", path == endpoint.path[...], let modelDefault = endpoint.modelDefault {
            matching.append(modelDefault)
        }
        return matching
    }

    /// Fills in what the call left out, from the serving key.
    ///
    /// - Parameters:
    ///   - leftOut: whether the JSON body leaves a member out (absent, `null`, or a `model` of `"default"`); always
    ///     `false` for a body that is not a JSON object, so nothing is added to it.
    ///   - model: the serving key's model when the call names none (``Candidate/model``).
    ///   - field: the serving key's value of one of its fields, if set.
    /// A value that does not fit its place (not a whole number for an integer field, not matching the field's pattern
    /// in a path) is not used: the call goes as the caller sent it and the vendor answers.
    public func planDefaults(
        method: String, pathAndQuery: String, leftOut: (String) -> Bool, model: String?, field: (String) -> String?
    ) -> CallDefaultsPlan {
        var plan = CallDefaultsPlan(pathAndQuery: pathAndQuery)
        let rules = callDefaults(method: method, pathAndQuery: pathAndQuery)
        guard !rules.isEmpty else { return plan }
        var filled = Set<String>()
        var pathRewritten = false
        for rule in rules {
            let fieldDefinition: ProviderField?
            let own: String?
            switch rule.source {
            case .defaultModel:
                fieldDefinition = nil
                own = model
            case .field(let id):
                fieldDefinition = fields.first { $0.id == id }
                own = field(id).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            }
            // The key's value, else the catalog's; each only when it fits its place.
            let values = [own, rule.otherwise].compactMap { $0 }.filter { !$0.isEmpty }
            switch rule.target {
            case .member(let name):
                guard !filled.contains(name), leftOut(name) else { continue }
                let integer = fieldDefinition?.kind == .integer
                guard let (value, json) = values.lazy.compactMap({ value -> (String, String)? in
                    guard integer else { return (value, CallDefaultsPlan.jsonString(value)) }
                    guard let number = UntrustedNumber.integer(value), (1...Self.maximumFieldInteger).contains(number) else { return nil }
                    return (value, String(number))
                }).first else { continue }
                filled.insert(name)
                plan.members.append(.init(name: name, json: json))
                if name == "model" || name == "model_id" { plan.model = value }
            case .path(let template):
                // Only a value that cannot leave its path segment: the field's own pattern, and letters, digits, `-`, `_`, `.`.
                guard !pathRewritten, let value = values.first(where: { Self.fitsPathSegment($0, pattern: fieldDefinition?.pattern) }) else { continue }
                pathRewritten = true
                let query = pathAndQuery.firstIndex(of: "?").map { String(pathAndQuery[$0...]) } ?? ""
                plan.pathAndQuery = template.replacingOccurrences(of: "{value}", with: value) + query
            }
        }
        return plan
    }

    static func fitsPathSegment(_ value: String, pattern: FieldPattern?) -> Bool {
        guard !value.isEmpty, value != ".", value != "..",
              value.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E })
        else { return false }
        return pattern?.matches(value) ?? true
    }
}
