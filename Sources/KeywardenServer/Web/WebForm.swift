import Foundation
import Hummingbird
import KeywardenCore
import KeywardenVault

/// An `application/x-www-form-urlencoded` body, read once and checked against the session's CSRF token.
struct WebForm {
    /// Each name's last value (a checkbox after its hidden `false` wins).
    let fields: [String: String]
    /// Every value of a repeated name (`events[]`), in the order sent.
    var lists: [String: [String]] = [:]

    subscript(name: String) -> String? { fields[name] }

    /// The form with `name` set to `value` (`nil`: removed): a page's own spelling turned into the request's.
    func setting(_ name: String, to value: String?) -> WebForm {
        var fields = fields
        fields[name] = value
        return WebForm(fields: fields, lists: lists)
    }

    /// The trimmed value, or `nil` when absent or blank.
    func text(_ name: String) -> String? {
        guard let value = fields[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }

    /// Decodes the form into an API request type, so a page's form and the API's JSON are read by one definition.
    ///
    /// Only the type's fields are read (the CSRF token and a page's own buttons are not the request's). A blank field is
    /// left out (a PATCH keeps the value) unless `clearing` names it, when it is sent as empty (`null` to the API:
    /// cleared). Checkboxes carry `value="true"`, with a hidden `false` before them where unticked means off (the last
    /// value of a name wins). Errors name the field as the API's do.
    func decode<T: RequestBody>(_ type: T.Type, clearing: Set<String> = []) throws -> T {
        var pairs: [String] = []
        for (name, values) in lists.sorted(by: { $0.key < $1.key }) where T.fields.contains(String(name.dropLast(2))) {
            for value in values.map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }) where !value.isEmpty {
                pairs.append(Self.encode(name) + "=" + Self.encode(value))
            }
        }
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) where !name.hasSuffix("[]") {
            let field = name.split(separator: "[", maxSplits: 1).first.map(String.init) ?? name
            guard T.fields.contains(field) else { continue }
            let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty {
                guard clearing.contains(field), T.nullableFields.contains(field) else { continue }
                pairs.append(Self.encode(name) + "=")
            } else {
                pairs.append(Self.encode(name) + "=" + Self.encode(trimmed))
            }
        }
        func decode(_ pairs: [String]) throws -> T {
            try Self.$blankClears.withValue(true) { try URLEncodedFormDecoder().decode(T.self, from: pairs.joined(separator: "&")) }
        }
        do {
            return try decode(pairs)
        } catch let error as DecodingError {
            // The form decoder's errors do not carry the field's name: it is the field whose value, left out, decodes.
            // Searched in small forms only (a page's own are under 40 fields): each try decodes the form again.
            if case .typeMismatch(let type, let context) = error, context.codingPath.isEmpty, pairs.count <= Self.fieldsSearched,
               let culprit = pairs.indices.first(where: { index in
                   do { _ = try decode(pairs.enumerated().filter { $0.offset != index }.map(\.element)); return true } catch let other as DecodingError {
                       if case .keyNotFound = other { return true } else { return false }
                   } catch { return true }
               }) {
                let name = String(pairs[culprit].prefix { $0 != "=" && $0 != "%" && $0 != "[" })
                throw KeywardenError.invalid(name, "\(name) must be \(Request.describe(type)).")
            }
            throw Request.describe(error)
        } catch let error as KeywardenError {
            throw error
        } catch {
            throw KeywardenError.invalid("form", "The form could not be read.")
        }
    }

    /// The most fields a form may have for a wrong one to be named (else the message names none).
    static let fieldsSearched = 64

    /// The form with only the fields `names` (a repeated one by its name without `[]`): a route that sets one thing
    /// ignores the rest.
    func only(_ names: Set<String>) -> WebForm {
        WebForm(fields: fields.filter { names.contains($0.key) }, lists: lists.filter { names.contains(String($0.key.dropLast(2))) })
    }

    /// While a form decodes: a blank value of a `Patch` field is `null` (a form has no other way to say "clear").
    @TaskLocal static var blankClears = false

    private static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~[]"))) ?? ""
    }

    /// Parses `a=1&b=two+words` (the decoding browsers use for forms).
    static func parse(_ body: String) -> WebForm {
        var fields: [String: String] = [:]
        var lists: [String: [String]] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            let name = decode(parts[0])
            guard !name.isEmpty else { continue }
            let value = parts.count > 1 ? decode(parts[1]) : ""
            fields[name] = value
            if name.hasSuffix("[]") { lists[name, default: []].append(value) }
        }
        return WebForm(fields: fields, lists: lists)
    }

    /// Reads the form of a POST and refuses it unless its `csrf_token` matches `expected` (in constant time).
    static func read(_ request: Request, context: KeywardenRequestContext, csrf expected: String) async throws -> WebForm {
        let buffer = try await request.body.collect(upTo: KeywardenRequestContext.maximumBodySize)
        let form = parse(String(buffer: buffer))
        // The constant-time comparison tokens use (`digestsMatch` compares any two strings so).
        guard let presented = form["csrf_token"], AccessToken.digestsMatch(presented, expected) else {
            throw KeywardenError(.forbidden, code: "csrf_failed", message: "The form expired or did not come from this site; reload the page and try again.")
        }
        return form
    }
}
