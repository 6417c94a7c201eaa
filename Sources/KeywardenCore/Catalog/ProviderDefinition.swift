/// What a provider is used for; drives the category filter and the card grouping.
public enum ProviderCategory: String, Codable, Sendable, CaseIterable {
    case llm, voice, image, search, translate, other
}

/// A kind of call a provider serves.
public enum Modality: String, Codable, Sendable, CaseIterable {
    case chat, embeddings, tts, stt, image, search, translate
}

/// One field on a provider's card: the key itself, or an optional (or required) extra.
public struct ProviderField: Codable, Sendable, Equatable {
    /// How the field is entered and checked.
    public enum Kind: String, Codable, Sendable {
        /// The API key; masked, never shown back.
        case secret
        case text
        case url
        case integer
    }

    /// The field's stable id (`snake_case`), used in forms and APIs.
    public let id: String
    public let label: String
    public let kind: Kind
    public let required: Bool
    public let placeholder: String?
    public let help: String?
    /// When set and the field is filled, its value is sent to the vendor in this header.
    public let header: String?
    /// When set and the field is filled, its value is sent as this query parameter (unless the call has one).
    public let query: String?
    /// What a text value must look like (see ``FieldPattern``); required for a text field rendered into a base URL.
    public let pattern: FieldPattern?

    public init(
        id: String, label: String, kind: Kind, required: Bool,
        placeholder: String? = nil, help: String? = nil, header: String? = nil, query: String? = nil, pattern: FieldPattern? = nil
    ) {
        self.id = id
        self.label = label
        self.kind = kind
        self.required = required
        self.placeholder = placeholder
        self.help = help
        self.header = header
        self.query = query
        self.pattern = pattern
    }

    enum CodingKeys: String, CodingKey {
        case id, label, kind, required, placeholder, help, header, query, pattern
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(label, forKey: .label)
        try c.encode(kind, forKey: .kind)
        try c.encode(required, forKey: .required)
        try c.encodeIfPresent(placeholder, forKey: .placeholder)
        try c.encodeIfPresent(help, forKey: .help)
        try c.encodeIfPresent(header, forKey: .header)
        try c.encodeIfPresent(query, forKey: .query)
        try c.encodeIfPresent(pattern?.description, forKey: .pattern)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try c.decode(String.self, forKey: .id)
        self.label = try c.decode(String.self, forKey: .label)
        self.kind = try c.decodeIfPresent(Kind.self, forKey: .kind) ?? .text
        self.required = try c.decodeIfPresent(Bool.self, forKey: .required) ?? false
        self.placeholder = try c.decodeIfPresent(String.self, forKey: .placeholder)
        self.help = try c.decodeIfPresent(String.self, forKey: .help)
        self.header = try c.decodeIfPresent(String.self, forKey: .header)
        self.query = try c.decodeIfPresent(String.self, forKey: .query)
        if let text = try c.decodeIfPresent(String.self, forKey: .pattern) {
            guard let pattern = FieldPattern(text) else {
                throw DecodingError.dataCorruptedError(forKey: .pattern, in: c, debugDescription: "pattern '\(text)' is not [class]{min,max}")
            }
            self.pattern = pattern
        } else {
            self.pattern = nil
        }
    }
}

/// How a vendor expects its key: in a header (with an optional value prefix), a query parameter, or not at all.
///
/// `name` and `prefix` may name a field of the card as `{field_id}`, so the `custom` provider lets the
/// operator choose the header.
public struct AuthScheme: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case header, query, none
    }

    public let kind: Kind
    /// Header or query parameter name.
    public let name: String?
    /// Text put before the key, such as `Bearer `.
    public let prefix: String?

    public init(kind: Kind, name: String? = nil, prefix: String? = nil) {
        self.kind = kind
        self.name = name
        self.prefix = prefix
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.kind = try c.decode(Kind.self, forKey: .kind)
        self.name = try c.decodeIfPresent(String.self, forKey: .name)
        self.prefix = try c.decodeIfPresent(String.self, forKey: .prefix)
    }
}

/// The cheap, read-only call that tells whether a key works, or why there is none.
public struct VerificationCall: Codable, Sendable, Equatable {
    /// `false` when the vendor has no such call (the key is stored only).
    public let available: Bool
    public let method: String?
    /// A path relative to the base URL (or to ``baseURL`` when set); may contain `{field_id}` placeholders.
    public let path: String?
    /// A base URL for verification only, when the vendor verifies on another host.
    public let baseURL: String?
    /// Why verification is unavailable, or what the call costs.
    public let note: String?

    enum CodingKeys: String, CodingKey {
        case available, method, path, note
        case baseURL = "base_url"
    }

    public init(available: Bool, method: String? = nil, path: String? = nil, baseURL: String? = nil, note: String? = nil) {
        self.available = available
        self.method = method
        self.path = path
        self.baseURL = baseURL
        self.note = note
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.available = try c.decodeIfPresent(Bool.self, forKey: .available) ?? true
        self.method = try c.decodeIfPresent(String.self, forKey: .method)
        self.path = try c.decodeIfPresent(String.self, forKey: .path)
        self.baseURL = try c.decodeIfPresent(String.self, forKey: .baseURL)
        self.note = try c.decodeIfPresent(String.self, forKey: .note)
    }
}

/// A model the product offers in a provider's Default model list.
public struct CuratedModel: Codable, Sendable, Equatable {
    /// The vendor's own model id.
    public let id: String
    public let label: String
    /// Shown below a separator; still selectable.
    public let legacy: Bool

    public init(id: String, label: String, legacy: Bool = false) {
        self.id = id
        self.label = label
        self.legacy = legacy
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try c.decode(String.self, forKey: .id)
        self.label = try c.decode(String.self, forKey: .label)
        self.legacy = try c.decodeIfPresent(Bool.self, forKey: .legacy) ?? false
    }
}

/// Where a provider answers OpenAI-shaped chat completions, and how it wants the key there when
/// that differs from its native API (Anthropic and Gemini take a bearer token on their compatibility endpoints).
public struct ChatCompletionsEndpoint: Codable, Sendable, Equatable {
    public let path: String
    public let auth: AuthScheme?
    /// Whether a stream carries usage only when the request sets `stream_options.include_usage` (OpenAI's
    /// rule): the gateway then asks on the caller's behalf, so the call is metered, and keeps the extra
    /// usage-only event from a caller that did not ask.
    public let streamUsageOnRequest: Bool
    /// The `model` default of every call to it (``CallDefault/chatCompletionsModel(path:)``), parsed once with the
    /// catalog rather than on every call.
    public let modelDefault: CallDefault?
    /// The member a translated request's output limit goes in (`max_completion_tokens` for OpenAI's own API, whose
    /// reasoning models refuse `max_tokens`; `max_tokens` for the others).
    public let outputLimitMember: String

    enum CodingKeys: String, CodingKey {
        case path, auth
        case streamUsageOnRequest = "stream_usage_on_request"
        case outputLimitMember = "output_limit_member"
    }

    public init(path: String, auth: AuthScheme? = nil, streamUsageOnRequest: Bool = false, outputLimitMember: String = "max_tokens") {
        self.path = path
        self.auth = auth
        self.streamUsageOnRequest = streamUsageOnRequest
        self.outputLimitMember = outputLimitMember
        modelDefault = CallDefault.chatCompletionsModel(path: path)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        auth = try c.decodeIfPresent(AuthScheme.self, forKey: .auth)
        streamUsageOnRequest = try c.decodeIfPresent(Bool.self, forKey: .streamUsageOnRequest) ?? false
        outputLimitMember = try c.decodeIfPresent(String.self, forKey: .outputLimitMember) ?? "max_tokens"
        modelDefault = CallDefault.chatCompletionsModel(path: path)
    }
}

/// One provider of the catalog: data that says how to show, store, authenticate and verify its keys.
public struct ProviderDefinition: Codable, Sendable, Equatable, Identifiable {
    /// Stable id (`lowercase-with-dashes`), used in URLs, the database and configuration.
    public let id: String
    public let displayName: String
    public let category: ProviderCategory
    /// The card's fields: the key (id `api_key`, unless the provider takes none) and the extras.
    public let fields: [ProviderField]
    public let auth: AuthScheme
    /// Headers always sent (such as `anthropic-version`).
    public let staticHeaders: [String: String]
    /// The vendor's base URL; may be `{field_id}` when the operator supplies it on the card.
    public let baseURL: String?
    public let verification: VerificationCall
    public let models: [CuratedModel]
    /// The seeded default model; `nil` only when the provider has no curated models.
    public let defaultModel: String?
    public let modalities: [Modality]
    public let displayOrder: Int
    /// A short line shown on the card.
    public let summary: String?
    /// The OpenAI-compatible chat completions endpoint, for the gateway's `/v1/chat/completions`.
    public let chatCompletions: ChatCompletionsEndpoint?
    /// The endpoints the native pass-through may use a shared key (the platform's, the managed default) for:
    /// the vendor's inference endpoints, never its files, batches, fine-tuning or administration.
    public let sharedKeyEndpoints: [EndpointRule]
    /// What a call may leave out and the serving key fills in (beyond the chat completions endpoint's `model`).
    public let callDefaults: [CallDefault]
    /// The endpoints that speak WebSocket (OpenAI's Realtime API, ElevenLabs' `stream-input`): an upgrade on the native
    /// face is relayed to them with the key injected.
    public let webSocketEndpoints: [EndpointRule]
    /// The wire shape its API speaks (``DialectID/generic`` when the entry names none).
    public let dialect: DialectID
    /// Where it answers OpenAI's Responses API, when it does (OpenAI, Azure OpenAI): a unified-face Responses call goes
    /// there untranslated.
    public let responsesPath: String?

    enum CodingKeys: String, CodingKey {
        case id, category, fields, auth, verification, models, modalities, summary, dialect
        case displayName = "display_name"
        case staticHeaders = "static_headers"
        case baseURL = "base_url"
        case defaultModel = "default_model"
        case displayOrder = "display_order"
        case chatCompletions = "chat_completions"
        case sharedKeyEndpoints = "shared_key_endpoints"
        case callDefaults = "call_defaults"
        case webSocketEndpoints = "websocket_endpoints"
        case responsesPath = "responses_path"
    }

    public init(
        id: String, displayName: String, category: ProviderCategory, fields: [ProviderField],
        auth: AuthScheme, staticHeaders: [String: String] = [:], baseURL: String?,
        verification: VerificationCall, models: [CuratedModel], defaultModel: String?,
        modalities: [Modality], displayOrder: Int, summary: String? = nil, chatCompletions: ChatCompletionsEndpoint? = nil,
        sharedKeyEndpoints: [EndpointRule] = [], callDefaults: [CallDefault] = [], webSocketEndpoints: [EndpointRule] = [],
        dialect: DialectID = .generic, responsesPath: String? = nil
    ) {
        self.dialect = dialect
        self.responsesPath = responsesPath
        self.webSocketEndpoints = webSocketEndpoints
        self.id = id
        self.displayName = displayName
        self.category = category
        self.fields = fields
        self.auth = auth
        self.staticHeaders = staticHeaders
        self.baseURL = baseURL
        self.verification = verification
        self.models = models
        self.defaultModel = defaultModel
        self.modalities = modalities
        self.displayOrder = displayOrder
        self.summary = summary
        self.chatCompletions = chatCompletions
        self.sharedKeyEndpoints = sharedKeyEndpoints
        self.callDefaults = callDefaults
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try c.decode(String.self, forKey: .id)
        self.displayName = try c.decode(String.self, forKey: .displayName)
        self.category = try c.decode(ProviderCategory.self, forKey: .category)
        self.fields = try c.decodeIfPresent([ProviderField].self, forKey: .fields) ?? []
        self.auth = try c.decode(AuthScheme.self, forKey: .auth)
        self.staticHeaders = try c.decodeIfPresent([String: String].self, forKey: .staticHeaders) ?? [:]
        self.baseURL = try c.decodeIfPresent(String.self, forKey: .baseURL)
        self.verification = try c.decode(VerificationCall.self, forKey: .verification)
        self.models = try c.decodeIfPresent([CuratedModel].self, forKey: .models) ?? []
        self.defaultModel = try c.decodeIfPresent(String.self, forKey: .defaultModel)
        self.modalities = try c.decode([Modality].self, forKey: .modalities)
        self.displayOrder = try c.decode(Int.self, forKey: .displayOrder)
        self.summary = try c.decodeIfPresent(String.self, forKey: .summary)
        self.chatCompletions = try c.decodeIfPresent(ChatCompletionsEndpoint.self, forKey: .chatCompletions)
        func rules(_ key: CodingKeys) throws -> [EndpointRule] {
            try (c.decodeIfPresent([String].self, forKey: key) ?? []).map { text in
                guard let rule = EndpointRule(text) else {
                    throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "'\(text)' is not 'METHOD /path' or '*'")
                }
                return rule
            }
        }
        self.sharedKeyEndpoints = try rules(.sharedKeyEndpoints)
        self.webSocketEndpoints = try rules(.webSocketEndpoints)
        self.callDefaults = try c.decodeIfPresent([CallDefault].self, forKey: .callDefaults) ?? []
        self.dialect = try c.decodeIfPresent(DialectID.self, forKey: .dialect) ?? .generic
        self.responsesPath = try c.decodeIfPresent(String.self, forKey: .responsesPath)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(displayName, forKey: .displayName)
        try c.encode(category, forKey: .category)
        try c.encode(dialect, forKey: .dialect)
        try c.encodeIfPresent(responsesPath, forKey: .responsesPath)
        try c.encode(fields, forKey: .fields)
        try c.encode(auth, forKey: .auth)
        try c.encode(staticHeaders, forKey: .staticHeaders)
        try c.encodeIfPresent(baseURL, forKey: .baseURL)
        try c.encode(verification, forKey: .verification)
        try c.encode(models, forKey: .models)
        try c.encodeIfPresent(defaultModel, forKey: .defaultModel)
        try c.encode(modalities, forKey: .modalities)
        try c.encode(displayOrder, forKey: .displayOrder)
        try c.encodeIfPresent(summary, forKey: .summary)
        try c.encodeIfPresent(chatCompletions, forKey: .chatCompletions)
        try c.encode(sharedKeyEndpoints.map(\.description), forKey: .sharedKeyEndpoints)
        if !callDefaults.isEmpty { try c.encode(callDefaults, forKey: .callDefaults) }
        if !webSocketEndpoints.isEmpty { try c.encode(webSocketEndpoints.map(\.description), forKey: .webSocketEndpoints) }
    }

    /// The id of the field that holds the API key.
    public static let keyFieldID = "api_key"

    /// The key field, if the provider takes a key.
    public var keyField: ProviderField? { fields.first { $0.id == Self.keyFieldID } }

    /// Whether a key must be stored before the card can be activated.
    public var requiresKey: Bool { keyField?.required ?? false }

    /// The card's fields other than the key.
    public var extraFields: [ProviderField] { fields.filter { $0.id != Self.keyFieldID } }

    /// The curated model with this id, if any.
    public func model(_ id: String) -> CuratedModel? { models.first { $0.id == id } }

    /// Whether a saved default model has left the curated list (shown as "custom").
    public func isCustomModel(_ id: String) -> Bool { !models.isEmpty && model(id) == nil }

    /// Returns a copy whose base URLs (main and verification) are replaced by `url`.
    public func withBaseURL(_ url: String) -> ProviderDefinition {
        let verification = VerificationCall(
            available: self.verification.available, method: self.verification.method,
            path: self.verification.path, baseURL: self.verification.baseURL == nil ? nil : url,
            note: self.verification.note
        )
        return ProviderDefinition(
            id: id, displayName: displayName, category: category, fields: fields, auth: auth,
            staticHeaders: staticHeaders, baseURL: url, verification: verification, models: models,
            defaultModel: defaultModel, modalities: modalities, displayOrder: displayOrder, summary: summary,
            chatCompletions: chatCompletions, sharedKeyEndpoints: sharedKeyEndpoints, callDefaults: callDefaults,
            webSocketEndpoints: webSocketEndpoints, dialect: dialect, responsesPath: responsesPath
        )
    }
}
