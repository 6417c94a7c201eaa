import Foundation
import Hummingbird
import KeywardenCore

/// A JSON request body: the fields it accepts, so an unknown (misspelt) field is refused instead of ignored.
protocol RequestBody: Decodable {
    static var fields: Set<String> { get }
    /// Fields that may be `null` (to clear a value); any other field given as `null` is refused.
    static var nullableFields: Set<String> { get }
}

extension RequestBody {
    static var nullableFields: Set<String> { [] }
}

extension Request {
    /// Decodes a JSON object body strictly: size-limited, an object, known fields only, each of its type.
    /// Errors name the field and never echo a value.
    func decodeBody<T: RequestBody>(_ type: T.Type, context: KeywardenRequestContext) async throws -> T {
        let buffer = try await body.collect(upTo: context.maxUploadSize)
        return try Self.decode(T.self, from: Data(buffer: buffer))
    }

    /// Like ``decodeBody(_:context:)`` for a route whose fields are all optional: an empty body is `nil`.
    func decodeOptionalBody<T: RequestBody>(_ type: T.Type, context: KeywardenRequestContext) async throws -> T? {
        let buffer = try await body.collect(upTo: context.maxUploadSize)
        guard buffer.readableBytes > 0 else { return nil }
        return try Self.decode(T.self, from: Data(buffer: buffer))
    }

    static func decode<T: RequestBody>(_ type: T.Type, from data: Data) throws -> T {
        guard !data.isEmpty else { throw KeywardenError(.invalid, code: "malformed_json", message: "The body must be a JSON object.") }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw KeywardenError(.invalid, code: "malformed_json", message: "The body is not valid JSON.")
        }
        guard let dictionary = object as? [String: Any] else {
            throw KeywardenError(.invalid, code: "malformed_json", message: "The body must be a JSON object.")
        }
        for key in dictionary.keys.sorted() {
            guard T.fields.contains(key) else {
                throw KeywardenError.invalid(key, "Unknown field '\(key)'.", code: "unknown_field")
            }
            if dictionary[key] is NSNull, !T.nullableFields.contains(key) {
                throw KeywardenError.invalid(key, "\(key) cannot be null; leave it out to keep the current value.")
            }
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw Self.describe(error)
        }
    }

    static func describe(_ error: DecodingError) -> KeywardenError {
        func path(_ context: DecodingError.Context, _ key: (any CodingKey)? = nil) -> String {
            (context.codingPath + (key.map { [$0] } ?? [])).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
                .joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return .missing(path(context, key))
        case .valueNotFound(let type, let context):
            let field = path(context)
            return .invalid(field, "\(field) must be \(Self.describe(type)), not null.")
        case .typeMismatch(let type, let context):
            let field = path(context)
            return .invalid(field, "\(field) must be \(Self.describe(type)).")
        case .dataCorrupted(let context):
            let field = path(context)
            return .invalid(field.isEmpty ? "body" : field, field.isEmpty ? "The body could not be read." : "\(field) has an invalid value.")
        @unknown default:
            return KeywardenError(.invalid, code: "malformed_json", message: "The body could not be read.")
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type, is Secret.Type: return "a string"
        case is Int.Type, is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is [String].Type: return "a list of strings"
        case is [String: Secret].Type, is [String: String].Type: return "an object of strings"
        default: return "a value of another type"
        }
    }

    /// An integer query parameter within `range`; a present value that is not a whole number in it (`1e3`, `-1`,
    /// 20 digits) is a 400 naming it.
    func queryInt(_ name: String, in range: ClosedRange<Int> = Int.min...Int.max, code: String = "invalid_field") throws -> Int? {
        let text: String? = uri.queryParameters.get(name).map { String($0) }
        return try NumberField.parse(text, field: name, in: range, code: code)
    }

    /// A text query parameter, `nil` when absent or empty.
    func queryText(_ name: String) -> String? {
        guard let text = uri.queryParameters.get(name), !text.isEmpty else { return nil }
        return text
    }

    /// A boolean query parameter (`true`/`false`/`1`/`0`).
    func queryBool(_ name: String) throws -> Bool {
        guard let text = uri.queryParameters.get(name)?.lowercased(), !text.isEmpty else { return false }
        switch text {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw KeywardenError.invalid(name, "\(name) must be true or false.")
        }
    }
}

extension Parameters {
    /// A path parameter the route always has.
    func require(_ name: String) throws -> String {
        guard let value = get(name) else { throw KeywardenError.notFound("resource") }
        return value
    }
}

/// A field that may be absent, `null`, or a value: PATCH's three states.
enum Patch<Value: Decodable & Sendable>: Decodable, Sendable {
    case absent
    case null
    case value(Value)

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self = container.decodeNil() ? .null : .value(try container.decode(Value.self))
    }

    /// For a PATCH: `nil` keeps, `.some(nil)` clears, `.some(v)` sets.
    var change: Value?? {
        switch self {
        case .absent: return nil
        case .null: return .some(nil)
        case .value(let value): return .some(value)
        }
    }
}

extension KeyedDecodingContainer {
    func decode<Value>(_ type: Patch<Value>.Type, forKey key: Key) throws -> Patch<Value> {
        guard contains(key) else { return .absent }
        if try decodeNil(forKey: key) { return .null }
        if WebForm.blankClears, (try? decode(String.self, forKey: key))?.isEmpty == true { return .null }
        return .value(try decode(Value.self, forKey: key))
    }
}
