import KeywardenCore

/// The text fields of a `multipart/form-data` body (RFC 7578) that metering reads — `model`, `stream` — read as a
/// vendor's form parser reads them, for uploads (transcription, image edits) that name their model in a form field.
public enum MultipartForm {
    /// What a form's fields say, or why it cannot be read as every parser reads it.
    public enum Reading: Equatable, Sendable {
        case fields([String: String])
        case unreadable(String)
    }

    /// Whether a content type is a form upload.
    public static func isForm(_ contentType: String?) -> Bool {
        contentType.map { ASCIIText.hasPrefix("multipart/form-data", ignoringCaseAfterBlanks: $0) } ?? false
    }

    /// The `boundary` parameter of a `multipart/form-data` content type (quoted or not); `nil` when there is none, or
    /// more than one (parsers take the first or the last).
    public static func boundary(_ contentType: String) -> String? {
        guard let parameters = parameters(contentType), let values = parameters["boundary"], values.count == 1,
              (1...70).contains(values[0].utf8.count) else { return nil }
        return values[0]
    }

    /// The parameters after the first `;` of a header value, by lower-cased name; `nil` when they cannot be read alike by
    /// every parser: a quote left open, a `;` or `\` inside quotes, an RFC 2231 `name*=` parameter.
    static func parameters(_ value: String) -> [String: [String]]? {
        var found: [String: [String]] = [:]
        for parameter in value.split(separator: ";", omittingEmptySubsequences: false).dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else {
                if parameter.trimmingSpacesAndTabs.isEmpty { continue }
                if parameter.contains("\"") { return nil }
                continue
            }
            let name = pair[0].trimmingSpacesAndTabs.lowercased()
            guard !name.hasSuffix("*") else { return nil }
            var text = pair[1].trimmingSpacesAndTabs
            if text.hasPrefix("\"") {
                guard text.count >= 2, text.hasSuffix("\""), !text.dropFirst().dropLast().contains("\""),
                      !text.contains("\\") else { return nil }
                text = String(text.dropFirst().dropLast())
            } else if text.contains("\"") {
                return nil
            }
            found[name, default: []].append(text)
        }
        return found
    }

    /// The fields of `names` (text parts, not files) in `body`; a field given twice, a part without a name, a field that
    /// is not UTF-8, or a form that does not end is unreadable (parsers disagree on each).
    public static func read(_ body: [UInt8], contentType: String, names: Set<String>) -> Reading {
        guard let boundary = boundary(contentType) else { return .unreadable("a form without one boundary") }
        let delimiter = Array("--\(boundary)".utf8)
        // The form opens with its boundary: text before it (a preamble) some parsers skip and others refuse.
        guard body.starts(with: delimiter) else { return .unreadable("a form that does not open with its boundary") }
        var index = 0
        var fields: [String: String] = [:]
        while true {
            index += delimiter.count
            if body[index...].starts(with: Array("--".utf8)) { return .fields(fields) }
            guard body[index...].starts(with: crlf) else { return .unreadable("a form boundary not followed by a line end") }
            index += 2
            guard let headersEnd = find(crlf + crlf, in: body, from: index) else { return .unreadable("a form part without its headers' end") }
            let headers = String(decoding: body[index..<headersEnd], as: UTF8.self)
            let contentStart = headersEnd + 4
            guard let next = find(crlf + delimiter, in: body, from: contentStart) else { return .unreadable("a form that does not end") }
            let dispositions = headers.split(separator: "\r\n").filter { $0.lowercased().hasPrefix("content-disposition:") }
            // One disposition, read alike by every parser (parsers differ on a second one, a quoted `;`, `name*=`).
            guard dispositions.count == 1, let parameters = parameters(String(dispositions[0])) else {
                return .unreadable("a form part whose Content-Disposition parsers may read differently")
            }
            guard let named = parameters["name"], named.count == 1, (parameters["filename"]?.count ?? 0) <= 1 else {
                return .unreadable("a form part without one name")
            }
            let name = named[0]
            if names.contains(name), parameters["filename"] == nil {
                guard fields[name] == nil else { return .unreadable("the form field \"\(name)\" given twice") }
                guard let value = String(validating: body[contentStart..<next], as: UTF8.self) else {
                    return .unreadable("the form field \"\(name)\" is not UTF-8")
                }
                fields[name] = value
            }
            index = next + 2
        }
    }

    private static let crlf: [UInt8] = [0x0D, 0x0A]

    /// The first index of `needle` in `haystack` at or after `start` (Knuth–Morris–Pratt: linear whatever the bytes, so a
    /// body built to make a naive search quadratic costs one pass).
    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, start >= 0, haystack.count - start >= needle.count else { return nil }
        var failure = [Int](repeating: 0, count: needle.count)
        var matched = 0
        for index in 1..<needle.count {
            while matched > 0, needle[index] != needle[matched] { matched = failure[matched - 1] }
            if needle[index] == needle[matched] { matched += 1 }
            failure[index] = matched
        }
        matched = 0
        for index in start..<haystack.count {
            while matched > 0, haystack[index] != needle[matched] { matched = failure[matched - 1] }
            if haystack[index] == needle[matched] { matched += 1 }
            if matched == needle.count { return index - needle.count + 1 }
        }
        return nil
    }
}
