import Foundation
import Hummingbird
import KeywardenCore
import KeywardenVault

/// An `application/x-www-form-urlencoded` body, read once and checked against the session's CSRF token.
struct WebForm {
    let fields: [String: String]

    subscript(name: String) -> String? { fields[name] }

    /// The trimmed value, or `nil` when absent or blank.
    func text(_ name: String) -> String? {
        guard let value = fields[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }

    /// Parses `a=1&b=two+words` (the decoding browsers use for forms).
    static func parse(_ body: String) -> WebForm {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            let name = decode(parts[0])
            guard !name.isEmpty else { continue }
            fields[name] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return WebForm(fields: fields)
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
