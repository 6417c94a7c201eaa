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
        contentType?.lowercased().trimmingSpacesAndTabs.hasPrefix("multipart/form-data") == true
    }

    /// The `boundary` parameter of a `multipart/form-data` content type (quoted or not).
    public static func boundary(_ contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingSpacesAndTabs.lowercased() == "boundary" else { continue }
            var value = pair[1].trimmingSpacesAndTabs
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            return (1...70).contains(value.utf8.count) ? value : nil
        }
        return nil
    }

    /// The fields of `names` (text parts, not files) in `body`; a field given twice, a part without a name, a field that
    /// is not UTF-8, or a form that does not end is unreadable (parsers disagree on each).
    public static func read(_ body: [UInt8], contentType: String, names: Set<String>) -> Reading {
        guard let boundary = boundary(contentType) else { return .unreadable("a form without a boundary") }
        let delimiter = Array("--\(boundary)".utf8)
        guard var index = find(delimiter, in: body, from: 0) else { return .unreadable("a form without its boundary") }
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
            let disposition = headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-disposition:") }
            guard let disposition, let name = parameter("name", in: String(disposition)) else {
                return .unreadable("a form part without a name")
            }
            if names.contains(name), parameter("filename", in: String(disposition)) == nil {
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

    /// A `name="value"` parameter of a `Content-Disposition` line (quoted, as browsers and SDKs write it, or a token).
    static func parameter(_ wanted: String, in line: String) -> String? {
        for parameter in line.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingSpacesAndTabs.lowercased() == wanted else { continue }
            let value = pair[1].trimmingSpacesAndTabs
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { return String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }

    /// The first index of `needle` in `haystack` at or after `start`.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard let first = needle.first, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        var index = start
        while index <= haystack.count - needle.count {
            if haystack[index] == first, haystack[index..<index + needle.count].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}
