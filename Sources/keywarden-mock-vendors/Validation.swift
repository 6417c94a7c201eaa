import Foundation

// What the mocked vendors refuse, in their own words, and the sample values the mocks answer tool calls and
// structured outputs with.

// MARK: Reading JSONSerialization's values

/// JSONSerialization gives numbers and booleans alike as NSNumber: these tell them apart (a boolean's type is "c").
enum JSONRead {
    static func isBool(_ value: Any?) -> Bool {
        guard let number = value as? NSNumber else { return false }
        return String(cString: number.objCType) == "c"
    }

    static func bool(_ value: Any?) -> Bool? {
        isBool(value) ? (value as? NSNumber)?.boolValue : nil
    }

    static func isNumber(_ value: Any?) -> Bool {
        value is NSNumber && !isBool(value)
    }

    /// An integer, or a number with no fraction (as the vendors' lax parsers take `64.0`).
    static func int(_ value: Any?) -> Int? {
        guard let number = value as? NSNumber, !isBool(value) else { return nil }
        let double = number.doubleValue
        guard double.isFinite, double == double.rounded(), abs(double) < 9e15 else { return nil }
        return number.intValue
    }

    static func string(_ value: Any?) -> String? { value as? String }
    static func object(_ value: Any?) -> [String: Any]? { value as? [String: Any] }
    static func array(_ value: Any?) -> [Any]? { value as? [Any] }

    /// `camel` in `object`, or its snake_case spelling (Google takes both).
    static func either(_ object: [String: Any]?, _ camel: String) -> Any? {
        object?[camel] ?? object?[snake(camel)]
    }

    static func snake(_ camel: String) -> String {
        var out = ""
        for character in camel {
            if character.isUppercase { out += "_" + character.lowercased() } else { out.append(character) }
        }
        return out
    }

    /// Both spellings of each name.
    static func bothSpellings(_ names: [String]) -> Set<String> {
        Set(names + names.map(snake))
    }
}

// MARK: JSON that keeps its order

/// A JSON value whose objects keep their members' order (JSONSerialization's dictionaries do not), so a schema's
/// properties can be answered in the order the caller declared them.
indirect enum OrderedJSON {
    case object([(String, OrderedJSON)])
    case array([OrderedJSON])
    case string(String)
    /// The number's own text.
    case number(String)
    case bool(Bool)
    case null

    init?(parsing bytes: [UInt8]) {
        var parser = Parser(bytes: bytes)
        guard let value = parser.value(depth: 0) else { return nil }
        parser.skipSpace()
        guard parser.index == bytes.count else { return nil }
        self = value
    }

    /// A value JSONSerialization read (its objects' members sorted: their order is lost).
    init(any value: Any?) {
        if let object = value as? [String: Any] {
            self = .object(object.keys.sorted().map { ($0, OrderedJSON(any: object[$0])) })
        } else if let array = value as? [Any] {
            self = .array(array.map { OrderedJSON(any: $0) })
        } else if let text = value as? String {
            self = .string(text)
        } else if let flag = JSONRead.bool(value) {
            self = .bool(flag)
        } else if let number = value as? NSNumber {
            self = .number(number.stringValue)
        } else {
            self = .null
        }
    }

    subscript(key: String) -> OrderedJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    subscript(index: Int) -> OrderedJSON? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    /// `camel` or its snake_case spelling.
    func either(_ camel: String) -> OrderedJSON? { self[camel] ?? self[JSONRead.snake(camel)] }

    var members: [(String, OrderedJSON)]? {
        if case .object(let members) = self { return members }
        return nil
    }

    var elements: [OrderedJSON]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// Compact JSON text, members in their order.
    var text: String {
        switch self {
        case .object(let members): return "{" + members.map { OrderedJSON.quote($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        case .array(let elements): return "[" + elements.map(\.text).joined(separator: ",") + "]"
        case .string(let text): return OrderedJSON.quote(text)
        case .number(let text): return text
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        }
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func value(depth: Int) -> OrderedJSON? {
            guard depth < 256 else { return nil }
            skipSpace()
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var members: [(String, OrderedJSON)] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                while true {
                    skipSpace()
                    guard let key = string() else { return nil }
                    skipSpace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
                    index += 1
                    guard let member = value(depth: depth + 1) else { return nil }
                    members.append((key, member))
                    skipSpace()
                    guard index < bytes.count else { return nil }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                    return nil
                }
            case UInt8(ascii: "["):
                index += 1
                var elements: [OrderedJSON] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
                while true {
                    guard let element = value(depth: depth + 1) else { return nil }
                    elements.append(element)
                    skipSpace()
                    guard index < bytes.count else { return nil }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
                    return nil
                }
            case UInt8(ascii: "\""):
                return string().map(OrderedJSON.string)
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            default:
                let start = index
                while index < bytes.count, "+-0123456789.eE".utf8.contains(bytes[index]) { index += 1 }
                guard index > start else { return nil }
                return .number(String(decoding: bytes[start..<index], as: UTF8.self))
            }
        }

        mutating func literal(_ word: String, _ value: OrderedJSON) -> OrderedJSON? {
            let utf8 = Array(word.utf8)
            guard index + utf8.count <= bytes.count, Array(bytes[index..<index + utf8.count]) == utf8 else { return nil }
            index += utf8.count
            return value
        }

        mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count, let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16) else { return nil }
            index += 4
            return value
        }

        mutating func string() -> String? {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
            index += 1
            var raw: [UInt8] = []
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: raw, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { return nil }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "n"): raw.append(0x0A)
                    case UInt8(ascii: "t"): raw.append(0x09)
                    case UInt8(ascii: "r"): raw.append(0x0D)
                    case UInt8(ascii: "b"): raw.append(0x08)
                    case UInt8(ascii: "f"): raw.append(0x0C)
                    case UInt8(ascii: "u"):
                        guard var scalar = hex4() else { return nil }
                        // A surrogate pair makes one scalar.
                        if (0xD800..<0xDC00).contains(scalar), index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                            index += 2
                            guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        raw += Array(String(Unicode.Scalar(scalar).map(Character.init) ?? "\u{FFFD}").utf8)
                    default: raw.append(escape)
                    }
                default:
                    raw.append(byte)
                }
            }
            return nil
        }
    }
}

// MARK: Sample values from a schema

/// The values a mock answers a tool call or a structured output with, from the caller's JSON schema: "Paris" for a
/// string (the first enum value if there is an enum), 1 for a number, true for a boolean, [] and {} for an array and
/// an object. The properties come in the schema's own order (read with ``OrderedJSON``, not JSONSerialization).
enum SchemaSample {
    /// An object with one value per property of `schema`, as compact JSON.
    static func object(_ schema: OrderedJSON?) -> String {
        let properties = schema?["properties"]?.members ?? []
        return "{" + properties.map { OrderedJSON.quote($0.0) + ":" + value($0.1) }.joined(separator: ",") + "}"
    }

    static func value(_ schema: OrderedJSON) -> String {
        if let first = schema["enum"]?.elements?.first { return first.text }
        if let constant = schema["const"] { return constant.text }
        var type: String?
        switch schema["type"] {
        case .string(let name)?: type = name
        case .array(let names)?: type = names.compactMap(\.string).first { $0.lowercased() != "null" } ?? names.first?.string
        default: break
        }
        if type == nil, let first = (schema["anyOf"] ?? schema["oneOf"])?.elements?.first { return value(first) }
        if type == nil, schema["properties"] != nil { type = "object" }
        switch type?.lowercased() {
        case "integer"?, "number"?: return "1"
        case "boolean"?: return "true"
        case "array"?: return "[]"
        case "object"?: return "{}"
        case "null"?: return "null"
        default: return "\"Paris\""
        }
    }
}

// MARK: Anthropic

/// What Anthropic's Messages API refuses (400 invalid_request_error), in its words.
enum AnthropicRules {
    static let members: Set<String> = [
        "model", "messages", "system", "max_tokens", "metadata", "stop_sequences", "stream", "temperature", "top_k", "top_p",
        "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers", "context_management",
    ]
    static let blockTypes = ["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"]

    static func tags(_ names: [String]) -> String { names.map { "'\($0)'" }.joined(separator: ", ") }

    static func refusal(_ object: [String: Any]) -> String? {
        for name in object.keys.sorted() where !members.contains(name) { return "\(name): Extra inputs are not permitted" }
        // An optional member sent as null counts as left out.
        let object = object.filter { !($0.value is NSNull) || ["model", "max_tokens", "messages"].contains($0.key) }
        guard let model = object["model"] else { return "model: Field required" }
        guard model is String else { return "model: Input should be a valid string" }
        guard let maxValue = object["max_tokens"] else { return "max_tokens: Field required" }
        guard let maxTokens = JSONRead.int(maxValue) else { return "max_tokens: Input should be a valid integer" }
        guard maxTokens >= 1 else { return "max_tokens: Input should be greater than or equal to 1" }
        if let stream = object["stream"], !JSONRead.isBool(stream) { return "stream: Input should be a valid boolean" }

        if let system = object["system"], !(system is String) {
            guard let blocks = JSONRead.array(system) else { return "system: Input should be a valid string" }
            for (index, block) in blocks.enumerated() {
                guard let block = JSONRead.object(block) else { return "system.\(index): Input should be a valid dictionary or object to extract fields from" }
                guard block["type"] as? String == "text" else { return "system.\(index).type: Input should be 'text'" }
                guard block["text"] is String else { return "system.\(index).text: Field required" }
            }
        }

        // Tools, and the choice among them.
        var toolNames: [String] = []
        if let toolsValue = object["tools"] {
            guard let tools = JSONRead.array(toolsValue) else { return "tools: Input should be a valid list" }
            for (index, tool) in tools.enumerated() {
                guard let tool = JSONRead.object(tool) else { return "tools.\(index): Input should be a valid dictionary or object to extract fields from" }
                guard let name = tool["name"] as? String else { return "tools.\(index).name: Field required" }
                let custom = tool["type"] == nil || tool["type"] as? String == "custom"
                if custom {
                    guard name.range(of: "^[a-zA-Z0-9_-]{1,128}$", options: .regularExpression) != nil else {
                        return "tools.\(index).custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'"
                    }
                    guard let schema = tool["input_schema"] else { return "tools.\(index).custom.input_schema: Field required" }
                    guard schema is [String: Any] else { return "tools.\(index).custom.input_schema: Input should be a valid dictionary" }
                }
                if toolNames.contains(name) { return "tools: Tool names must be unique." }
                toolNames.append(name)
            }
        }
        var forcesTool = false
        if let choiceValue = object["tool_choice"] {
            guard let choice = JSONRead.object(choiceValue) else { return "tool_choice: Input should be a valid dictionary or object to extract fields from" }
            let kinds = ["auto", "any", "tool", "none"]
            guard let type = choice["type"] as? String else { return "tool_choice: Unable to extract tag using discriminator 'type'" }
            guard kinds.contains(type) else { return "tool_choice: Input tag '\(type)' found using 'type' does not match any of the expected tags: \(tags(kinds))" }
            if type == "tool" {
                guard let name = choice["name"] as? String else { return "tool_choice.tool.name: Field required" }
                guard toolNames.contains(name) else { return "tool_choice: Tool '\(name)' not found in tools" }
            }
            if type == "any", toolNames.isEmpty { return "tool_choice: tool_choice.type 'any' may only be specified while providing tools" }
            forcesTool = type == "any" || type == "tool"
        }

        if let thinkingValue = object["thinking"] {
            guard let thinking = JSONRead.object(thinkingValue) else { return "thinking: Input should be a valid dictionary or object to extract fields from" }
            guard let type = thinking["type"] as? String else { return "thinking: Unable to extract tag using discriminator 'type'" }
            switch type {
            case "enabled":
                guard let budgetValue = thinking["budget_tokens"] else { return "thinking.enabled.budget_tokens: Field required" }
                guard let budget = JSONRead.int(budgetValue) else { return "thinking.enabled.budget_tokens: Input should be a valid integer" }
                guard budget >= 1024 else { return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024" }
                guard budget < maxTokens else {
                    return "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
                }
                if forcesTool { return "Thinking may not be enabled when tool_choice forces tool use." }
            case "disabled": break
            default: return "thinking: Input tag '\(type)' found using 'type' does not match any of the expected tags: 'enabled', 'disabled'"
            }
        }

        guard let messagesValue = object["messages"] else { return "messages: Field required" }
        guard let messages = JSONRead.array(messagesValue) else { return "messages: Input should be a valid list" }
        guard !messages.isEmpty else { return "messages: at least one message is required" }
        var roles: [String] = []
        var blocksOf: [[[String: Any]]] = []
        for (index, element) in messages.enumerated() {
            let at = "messages.\(index)"
            guard let message = JSONRead.object(element) else { return "\(at): Input should be a valid dictionary or object to extract fields from" }
            for name in message.keys.sorted() where !["role", "content"].contains(name) { return "\(at).\(name): Extra inputs are not permitted" }
            guard let role = message["role"] as? String else { return "\(at).role: Field required" }
            if role == "system" {
                return "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role."
            }
            guard role == "user" || role == "assistant" else { return "\(at).role: Input should be 'user' or 'assistant'" }
            guard let content = message["content"] else { return "\(at).content: Field required" }
            var blocks: [[String: Any]] = []
            if let text = content as? String {
                let finalAssistant = index == messages.count - 1 && role == "assistant"
                if text.isEmpty, !finalAssistant {
                    return "messages.\(index): all messages must have non-empty content except for the optional final assistant message"
                }
            } else if let array = JSONRead.array(content) {
                if array.isEmpty, !(index == messages.count - 1 && role == "assistant") {
                    return "messages.\(index): all messages must have non-empty content except for the optional final assistant message"
                }
                for (blockIndex, element) in array.enumerated() {
                    let blockAt = "\(at).content.\(blockIndex)"
                    guard let block = JSONRead.object(element) else { return "\(blockAt): Input should be a valid dictionary or object to extract fields from" }
                    if let problem = blockRefusal(block, at: blockAt, role: role) { return problem }
                    blocks.append(block)
                }
            } else {
                return "\(at).content: Input should be a valid list"
            }
            roles.append(role)
            blocksOf.append(blocks)
        }
        guard roles.first == "user" else { return "messages: first message must use the \"user\" role" }
        for index in roles.indices.dropFirst() where roles[index] == roles[index - 1] {
            return "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"\(roles[index])\" roles in a row"
        }
        // Each tool_result answers a tool_use of the message right before it; each tool_use is answered in the
        // very next message (checked at that message, after its own tool_results).
        func missingResults(after index: Int) -> String? {
            let asked = toolUseIDs(blocksOf[index])
            let answered = index + 1 < roles.count ? Set(blocksOf[index + 1].filter { $0["type"] as? String == "tool_result" }.compactMap { $0["tool_use_id"] as? String }) : []
            let missing = asked.filter { !answered.contains($0) }
            guard !missing.isEmpty else { return nil }
            return "messages.\(index + 1): `tool_use` ids were found without `tool_result` blocks immediately after: \(missing.joined(separator: ", ")). Each `tool_use` block must have a corresponding `tool_result` block in the next message."
        }
        for index in roles.indices where roles[index] == "user" {
            let asked = index > 0 ? toolUseIDs(blocksOf[index - 1]) : []
            for (blockIndex, block) in blocksOf[index].enumerated() where block["type"] as? String == "tool_result" {
                let id = block["tool_use_id"] as? String ?? ""
                if !asked.contains(id) {
                    return "messages.\(index).content.\(blockIndex): unexpected `tool_use_id` found in `tool_result` blocks: \(id). Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                }
            }
            if index > 0, let problem = missingResults(after: index - 1) { return problem }
        }
        if roles.last == "assistant", let problem = missingResults(after: roles.count - 1) { return problem }
        return nil
    }

    static func toolUseIDs(_ blocks: [[String: Any]]) -> [String] {
        blocks.filter { $0["type"] as? String == "tool_use" }.compactMap { $0["id"] as? String }
    }

    static func blockRefusal(_ block: [String: Any], at: String, role: String) -> String? {
        guard let type = block["type"] as? String else { return "\(at): Unable to extract tag using discriminator 'type'" }
        guard blockTypes.contains(type) else {
            return "\(at): Input tag '\(type)' found using 'type' does not match any of the expected tags: \(tags(blockTypes))"
        }
        func required(_ name: String) -> String { "\(at).\(type).\(name): Field required" }
        switch type {
        case "text":
            guard let text = block["text"] as? String else { return required("text") }
            if text.isEmpty { return "messages: text content blocks must be non-empty" }
            if text.allSatisfy(\.isWhitespace) { return "messages: text content blocks must contain non-whitespace text" }
        case "image", "document":
            guard let sourceValue = block["source"] else { return required("source") }
            guard let source = JSONRead.object(sourceValue) else { return "\(at).\(type).source: Input should be a valid dictionary or object to extract fields from" }
            guard let kind = source["type"] as? String else { return "\(at).\(type).source: Unable to extract tag using discriminator 'type'" }
            switch kind {
            case "base64":
                guard let mediaType = source["media_type"] as? String else { return "\(at).\(type).source.base64.media_type: Field required" }
                guard source["data"] is String else { return "\(at).\(type).source.base64.data: Field required" }
                let allowed = type == "image" ? ["image/jpeg", "image/png", "image/gif", "image/webp"] : ["application/pdf"]
                if !allowed.contains(mediaType) {
                    let listed = allowed.count == 1 ? "'\(allowed[0])'" : allowed.dropLast().map { "'\($0)'" }.joined(separator: ", ") + " or '\(allowed.last!)'"
                    return "\(at).\(type).source.base64.media_type: Input should be \(listed)"
                }
            case "url":
                guard source["url"] is String else { return "\(at).\(type).source.url.url: Field required" }
            default:
                return "\(at).\(type).source: Input tag '\(kind)' found using 'type' does not match any of the expected tags: 'base64', 'url'"
            }
        case "tool_use":
            guard block["id"] is String else { return required("id") }
            guard block["name"] is String else { return required("name") }
            guard let input = block["input"] else { return required("input") }
            guard input is [String: Any] else { return "\(at).tool_use.input: Input should be a valid dictionary" }
        case "tool_result":
            guard block["tool_use_id"] is String else { return required("tool_use_id") }
            if let content = block["content"], !(content is String) {
                guard let parts = JSONRead.array(content) else { return "\(at).tool_result.content: Input should be a valid list" }
                for (index, part) in parts.enumerated() {
                    let kind = JSONRead.object(part)?["type"] as? String ?? ""
                    guard ["text", "image", "document", "search_result"].contains(kind) else {
                        return "\(at).tool_result.content.\(index): Input tag '\(kind)' found using 'type' does not match any of the expected tags: 'text', 'image', 'search_result', 'document'"
                    }
                }
            }
        case "thinking":
            guard block["thinking"] is String else { return required("thinking") }
            guard let signature = block["signature"] as? String else { return required("signature") }
            if signature.isEmpty { return "\(at): Invalid `signature` in `thinking` block" }
        case "redacted_thinking":
            guard block["data"] is String else { return required("data") }
        default: break
        }
        return nil
    }
}

// MARK: Gemini

/// What Gemini's generateContent refuses (400 INVALID_ARGUMENT), in Google's words.
enum GeminiRules {
    static let members: Set<String> = [
        "contents", "systemInstruction", "system_instruction", "tools", "toolConfig", "tool_config", "generationConfig",
        "generation_config", "safetySettings", "safety_settings", "cachedContent", "cached_content", "labels",
    ]
    static let generationMembers = JSONRead.bothSpellings([
        "temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences", "responseMimeType", "responseSchema",
        "responseJsonSchema", "presencePenalty", "frequencyPenalty", "seed", "responseLogprobs", "logprobs", "thinkingConfig",
        "responseModalities", "speechConfig", "mediaResolution",
    ])
    static let thinkingMembers = JSONRead.bothSpellings(["includeThoughts", "thinkingBudget", "thinkingLevel"])
    /// A part's `data` oneof: exactly one of these.
    static let dataMembers = ["text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult"]
    static let partMembers = JSONRead.bothSpellings(dataMembers + ["thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution"])
    static let toolMembers = JSONRead.bothSpellings([
        "functionDeclarations", "googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext", "computerUse", "fileSearch",
        "googleMaps", "retrieval", "enterpriseWebSearch",
    ])

    static func unknown(_ name: String, at: String? = nil) -> String {
        "Invalid JSON payload received. Unknown name \"\(name)\"\(at.map { " at '\($0)'" } ?? ""): Cannot find field."
    }

    static func refusal(_ object: [String: Any]) -> String? {
        for name in object.keys.sorted() where !members.contains(name) { return unknown(name) }
        if let configValue = JSONRead.either(object, "generationConfig") {
            guard let config = JSONRead.object(configValue) else {
                return "Invalid value at 'generation_config' (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig), \(configValue)"
            }
            for name in config.keys.sorted() where !generationMembers.contains(name) { return unknown(name, at: "generation_config") }
            if let thinking = JSONRead.object(JSONRead.either(config, "thinkingConfig")) {
                for name in thinking.keys.sorted() where !thinkingMembers.contains(name) { return unknown(name, at: "generation_config.thinking_config") }
            }
        }

        var declared: [String] = []
        if let toolsValue = object["tools"] {
            guard let tools = JSONRead.array(toolsValue) else { return "Invalid JSON payload received. Unknown name \"tools\": Proto field is not repeating, cannot start list." }
            for (index, tool) in tools.enumerated() {
                guard let tool = JSONRead.object(tool) else { return "Invalid value at 'tools[\(index)]' (type.googleapis.com/google.ai.generativelanguage.v1beta.Tool)" }
                for name in tool.keys.sorted() where !toolMembers.contains(name) { return unknown(name, at: "tools[\(index)]") }
                for (declarationIndex, element) in (JSONRead.array(JSONRead.either(tool, "functionDeclarations")) ?? []).enumerated() {
                    let at = "GenerateContentRequest.tools[\(index)].function_declarations[\(declarationIndex)]"
                    guard let declaration = JSONRead.object(element), let name = declaration["name"] as? String, !name.isEmpty else {
                        return "* \(at).name: Name cannot be empty.\n"
                    }
                    if JSONRead.either(declaration, "parameters") != nil, JSONRead.either(declaration, "parametersJsonSchema") != nil {
                        return "* \(at).parameters_json_schema: parameters_json_schema and parameters cannot both be set.\n"
                    }
                    declared.append(name)
                }
            }
        }
        if let allowed = JSONRead.array(JSONRead.either(JSONRead.object(JSONRead.either(JSONRead.object(JSONRead.either(object, "toolConfig")), "functionCallingConfig")), "allowedFunctionNames")) {
            for case let name as String in allowed where !declared.contains(name) {
                return "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: Function \(name) is not declared in the tools.\n"
            }
        }

        guard let contentsValue = object["contents"], let contents = JSONRead.array(contentsValue), !contents.isEmpty else {
            return "* GenerateContentRequest.contents: contents is not specified\n"
        }
        var roles: [String] = []
        var partsOf: [[[String: Any]]] = []
        for (index, element) in contents.enumerated() {
            guard let content = JSONRead.object(element) else {
                return "Invalid value at 'contents[\(index)]' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content)"
            }
            for name in content.keys.sorted() where !["role", "parts"].contains(name) { return unknown(name, at: "contents[\(index)]") }
            let role = content["role"] as? String ?? ""
            guard role == "user" || role == "model" || (role.isEmpty && content["role"] == nil && contents.count == 1) else {
                return "Please use a valid role: user, model."
            }
            guard let parts = JSONRead.array(content["parts"]), !parts.isEmpty else {
                return "* GenerateContentRequest.contents[\(index)].parts: contents.parts must not be empty.\n"
            }
            var objects: [[String: Any]] = []
            for (partIndex, element) in parts.enumerated() {
                let at = "contents[\(index)].parts[\(partIndex)]"
                guard let part = JSONRead.object(element) else { return "Invalid value at '\(at)' (type.googleapis.com/google.ai.generativelanguage.v1beta.Part)" }
                if let problem = partRefusal(part, at: at) { return problem }
                objects.append(part)
            }
            roles.append(role.isEmpty ? "user" : role)
            partsOf.append(objects)
        }
        // A function call turn follows a user turn (or a function response turn); a function response turn answers the
        // call turn right before it, call for call.
        func calls(_ parts: [[String: Any]]) -> [String] {
            parts.compactMap { JSONRead.object(JSONRead.either($0, "functionCall"))?["name"] as? String }
        }
        func responses(_ parts: [[String: Any]]) -> [String] {
            parts.compactMap { JSONRead.object(JSONRead.either($0, "functionResponse"))?["name"] as? String }
        }
        for index in roles.indices {
            if !calls(partsOf[index]).isEmpty, index == 0 || roles[index - 1] != "user" {
                return "Please ensure that function call turn comes immediately after a user turn or after a function response turn."
            }
            let answered = responses(partsOf[index])
            guard !answered.isEmpty else { continue }
            let asked = index > 0 && roles[index - 1] == "model" ? calls(partsOf[index - 1]) : []
            if asked.isEmpty || !answered.allSatisfy(asked.contains) {
                return "Please ensure that function response turn comes immediately after a function call turn."
            }
            if answered.count != asked.count {
                return "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn."
            }
        }
        return nil
    }

    static func partRefusal(_ part: [String: Any], at: String) -> String? {
        for name in part.keys.sorted() where !partMembers.contains(name) { return unknown(name, at: at) }
        let present = dataMembers.filter { JSONRead.either(part, $0) != nil }
        guard !present.isEmpty else { return "* GenerateContentRequest.\(at).data: required oneof field 'data' must have one initialized field\n" }
        if present.count > 1 { return "Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '\(present[1])'" }
        let snakeAt = "GenerateContentRequest.\(at)"
        if let thought = JSONRead.either(part, "thought"), !JSONRead.isBool(thought) {
            return "Invalid value at '\(at).thought' (TYPE_BOOL), \(thought)"
        }
        if let signature = JSONRead.either(part, "thoughtSignature"), !(signature is String) {
            return "Invalid value at '\(at).thought_signature' (TYPE_BYTES), \(signature)"
        }
        switch present[0] {
        case "text":
            guard part["text"] is String else { return "Invalid value at '\(at).text' (TYPE_STRING), \(part["text"] ?? "")" }
        case "inlineData":
            guard let data = JSONRead.object(JSONRead.either(part, "inlineData")) else { return "Invalid value at '\(at).inline_data' (type.googleapis.com/google.ai.generativelanguage.v1beta.Blob)" }
            guard JSONRead.either(data, "mimeType") is String else { return "* \(snakeAt).inline_data.mime_type: mime_type must be specified.\n" }
            guard data["data"] is String else { return "* \(snakeAt).inline_data.data: data must be specified.\n" }
        case "fileData":
            guard let data = JSONRead.object(JSONRead.either(part, "fileData")), JSONRead.either(data, "fileUri") is String else {
                return "* \(snakeAt).file_data.file_uri: file_uri must be specified.\n"
            }
        case "functionCall":
            guard let call = JSONRead.object(JSONRead.either(part, "functionCall")) else {
                return "Invalid value at '\(at).function_call' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCall)"
            }
            guard let name = call["name"] as? String, !name.isEmpty else { return "* \(snakeAt).function_call.name: Name cannot be empty.\n" }
            if let args = call["args"], !(args is [String: Any]) {
                return "Invalid value at '\(at).function_call.args' (type.googleapis.com/google.protobuf.Struct), \(args)"
            }
        case "functionResponse":
            guard let response = JSONRead.object(JSONRead.either(part, "functionResponse")) else {
                return "Invalid value at '\(at).function_response' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionResponse)"
            }
            guard let name = response["name"] as? String, !name.isEmpty else { return "* \(snakeAt).function_response.name: Name cannot be empty.\n" }
            guard let body = response["response"] else { return "* \(snakeAt).function_response.response: response must be specified.\n" }
            guard body is [String: Any] else {
                return "Invalid value at '\(at).function_response.response' (type.googleapis.com/google.protobuf.Struct), \(body)"
            }
        default: break
        }
        return nil
    }
}

// MARK: OpenAI

/// What OpenAI's chat completions refuse about tool messages, in its words.
enum OpenAIRules {
    static func refusal(_ object: [String: Any]) -> (message: String, param: String)? {
        let messages = JSONRead.array(object["messages"]) ?? []
        // The calls of the last assistant message with tool_calls, while the tool messages answering it run.
        var pending: (index: Int, ids: [String], answered: Set<String>)?
        for (index, element) in messages.enumerated() {
            let message = JSONRead.object(element) ?? [:]
            let role = message["role"] as? String ?? ""
            if role == "tool" {
                let id = message["tool_call_id"] as? String ?? ""
                guard var open = pending, open.ids.contains(id) else {
                    return ("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", "messages.[\(index)].role")
                }
                open.answered.insert(id)
                pending = open
                continue
            }
            if let open = pending, let missing = unanswered(open) { return missing }
            pending = nil
            if role == "assistant", let calls = JSONRead.array(message["tool_calls"]), !calls.isEmpty {
                pending = (index, calls.compactMap { JSONRead.object($0)?["id"] as? String }, [])
            }
        }
        if let open = pending, let missing = unanswered(open) { return missing }
        return nil
    }

    private static func unanswered(_ open: (index: Int, ids: [String], answered: Set<String>)) -> (message: String, param: String)? {
        let missing = open.ids.filter { !open.answered.contains($0) }
        guard !missing.isEmpty else { return nil }
        return ("An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: \(missing.joined(separator: ", "))",
                "messages.[\(open.index)].role")
    }
}
