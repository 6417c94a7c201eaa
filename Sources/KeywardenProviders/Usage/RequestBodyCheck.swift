/// Whether a JSON request body reads the same to Keywarden as to every vendor's parser, and if not, why.
///
/// The gateway meters and limits a call by what its body asks for (`model`, `stream`, `stream_options`, the output
/// limits). Vendors' parsers disagree with a strict reader, and with each other, on some bodies: a member named twice
/// (most keep the last, some the first), names that differ only in case or in a character that folds to ASCII (Go's
/// `encoding/json` matches `ſtream` and `STREAM` to a `stream` field), a lone surrogate (some replace it, some refuse
/// the body), a number beyond a double's range (some read it as infinity), nesting deeper than a parser allows, a
/// byte-order mark, bytes that are not UTF-8. A body with any of these could be metered as one thing and served as
/// another, so a call the platform pays for, or that a budget or rate limit applies to, is sent only when this check
/// finds none (`400 unreadable_body` names the first, with where it is).
///
/// One pass over the body, linear in its length; nothing but the names of one object at a time is kept.
public enum RequestBodyCheck {
    /// What the check found.
    public enum Verdict: Sendable, Equatable {
        case readable
        /// Why not, in words, with where (`duplicate member "stream" at $`).
        case unreadable(String)
    }

    /// The deepest nesting accepted (as the meter's reader: ``JSONScan/maximumDepth``).
    public static var maximumDepth: Int { JSONScan.maximumDepth }

    /// Whether a vendor would take `body` for JSON: its content type says so, or its first byte after white space (or a
    /// byte-order mark) opens an object or an array. A body that merely claims another type is not let through unread.
    public static func looksLikeJSON(_ body: [UInt8], contentType: String?) -> Bool {
        if let contentType, contentType.lowercased().contains("json") { return true }
        var index = 0
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        while index < body.count, [0x20, 0x09, 0x0A, 0x0D].contains(body[index]) { index += 1 }
        return index < body.count && (body[index] == UInt8(ascii: "{") || body[index] == UInt8(ascii: "["))
    }

    /// Checks that `body` is one JSON object every parser reads alike.
    public static func check(_ body: [UInt8]) -> Verdict {
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { return .unreadable("a byte-order mark starts the body") }
        var reader = Reader(bytes: body)
        let start = JSONScan.skipSpace(body, 0, body.count)
        guard start < body.count, body[start] == UInt8(ascii: "{") else { return .unreadable("the body is not one JSON object") }
        do throws(Problem) {
            let end = try reader.object(at: start, depth: 1)
            guard JSONScan.skipSpace(body, end, body.count) == body.count else {
                throw Problem(text: "text after the object at byte \(end)")
            }
            return .readable
        } catch {
            return .unreadable(error.text)
        }
    }

    struct Problem: Error {
        let text: String
    }

    /// A member name as some parsers match it to a field: case folded, with the non-ASCII letters that fold to ASCII
    /// (`ſ` U+017F to `s`, the Kelvin sign U+212A to `k`) folded too.
    static func folded(_ name: String) -> String {
        var result = ""
        result.unicodeScalars.reserveCapacity(name.unicodeScalars.count)
        for scalar in name.unicodeScalars {
            switch scalar.value {
            case 0x41...0x5A: result.unicodeScalars.append(Unicode.Scalar(UInt8(scalar.value + 0x20)))
            case 0x00...0x7F: result.unicodeScalars.append(scalar)
            case 0x017F: result.unicodeScalars.append("s")
            case 0x212A: result.unicodeScalars.append("k")
            case 0x212B: result.unicodeScalars.append("\u{E5}")
            default: result.unicodeScalars.append(contentsOf: String(scalar).lowercased().unicodeScalars)
            }
        }
        return result
    }

    /// The recursive reader, with the path to where it is (for the message).
    private struct Reader {
        let bytes: [UInt8]
        var path: [PathPart] = []

        enum PathPart {
            case member(String)
            case element(Int)
        }

        var location: String {
            var text = "$"
            for part in path {
                switch part {
                case .element(let index): text += "[\(index)]"
                case .member(let name):
                    let shown = RequestBodyCheck.shown(name)
                    if shown.isPlainIdentifier { text += "." + shown } else { text += "[\"\(shown)\"]" }
                }
            }
            return text
        }

        func fail(_ what: String) -> Problem { Problem(text: "\(what) at \(location)") }

        mutating func object(at start: Int, depth: Int) throws(Problem) -> Int {
            guard depth <= RequestBodyCheck.maximumDepth else { throw fail("nesting deeper than \(RequestBodyCheck.maximumDepth) levels") }
            var seen: [String: String] = [:]
            var index = JSONScan.skipSpace(bytes, start + 1, bytes.count)
            guard index < bytes.count else { throw fail("an unfinished object") }
            if bytes[index] == UInt8(ascii: "}") { return index + 1 }
            while true {
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("malformed JSON (a member name expected)") }
                let (name, nameEnd) = try string(at: index)
                let fold = RequestBodyCheck.folded(name)
                if let earlier = seen[fold] {
                    let shownName = RequestBodyCheck.shown(name)
                    throw fail(earlier == name ? "duplicate member \"\(shownName)\"" : "members \"\(RequestBodyCheck.shown(earlier))\" and \"\(shownName)\" that some parsers take for one")
                }
                if !name.unicodeScalars.allSatisfy(\.isASCII), fold.unicodeScalars.allSatisfy(\.isASCII) {
                    throw fail("member \"\(RequestBodyCheck.shown(name))\" that some parsers read as \"\(fold)\"")
                }
                seen[fold] = name
                index = JSONScan.skipSpace(bytes, nameEnd, bytes.count)
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("malformed JSON (a colon expected)") }
                index = JSONScan.skipSpace(bytes, index + 1, bytes.count)
                path.append(.member(name))
                index = try value(at: index, depth: depth)
                path.removeLast()
                index = JSONScan.skipSpace(bytes, index, bytes.count)
                guard index < bytes.count else { throw fail("an unfinished object") }
                if bytes[index] == UInt8(ascii: "}") { return index + 1 }
                guard bytes[index] == UInt8(ascii: ",") else { throw fail("malformed JSON (a comma or a closing brace expected)") }
                index = JSONScan.skipSpace(bytes, index + 1, bytes.count)
            }
        }

        mutating func array(at start: Int, depth: Int) throws(Problem) -> Int {
            guard depth <= RequestBodyCheck.maximumDepth else { throw fail("nesting deeper than \(RequestBodyCheck.maximumDepth) levels") }
            var index = JSONScan.skipSpace(bytes, start + 1, bytes.count)
            guard index < bytes.count else { throw fail("an unfinished array") }
            if bytes[index] == UInt8(ascii: "]") { return index + 1 }
            var element = 0
            while true {
                path.append(.element(element))
                index = try value(at: index, depth: depth)
                path.removeLast()
                index = JSONScan.skipSpace(bytes, index, bytes.count)
                guard index < bytes.count else { throw fail("an unfinished array") }
                if bytes[index] == UInt8(ascii: "]") { return index + 1 }
                guard bytes[index] == UInt8(ascii: ",") else { throw fail("malformed JSON (a comma or a closing bracket expected)") }
                index = JSONScan.skipSpace(bytes, index + 1, bytes.count)
                element += 1
            }
        }

        mutating func value(at start: Int, depth: Int) throws(Problem) -> Int {
            guard start < bytes.count else { throw fail("a missing value") }
            switch bytes[start] {
            case UInt8(ascii: "{"): return try object(at: start, depth: depth + 1)
            case UInt8(ascii: "["): return try array(at: start, depth: depth + 1)
            case UInt8(ascii: "\""): return try string(at: start).end
            case UInt8(ascii: "t"): return try literal("true", at: start)
            case UInt8(ascii: "f"): return try literal("false", at: start)
            case UInt8(ascii: "n"): return try literal("null", at: start)
            default: return try number(at: start)
            }
        }

        func literal(_ word: StaticString, at start: Int) throws(Problem) -> Int {
            guard let end = JSONScan.literal(word, bytes, start, bytes.count) else { throw fail("malformed JSON") }
            return end
        }

        func number(at start: Int) throws(Problem) -> Int {
            guard let end = JSONScan.skipNumber(bytes, start, bytes.count) else { throw fail("malformed JSON (a value expected)") }
            // Digits alone always parse; a fraction or an exponent may overflow a double (1e999 reads as infinity to
            // some, an error to others).
            let text = bytes[start..<end]
            if text.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) || text.count > 300 {
                guard let value = Double(String(decoding: text, as: UTF8.self)), value.isFinite else { throw fail("a number beyond a double's range") }
            }
            return end
        }

        func string(at start: Int) throws(Problem) -> (text: String, end: Int) {
            if let decoded = JSONScan.decodeString(bytes, start, bytes.count) { return decoded }
            throw fail(diagnose(start))
        }

        /// Why the string at `start` does not decode.
        func diagnose(_ start: Int) -> String {
            var index = start + 1
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") { return "a string that is not UTF-8" }
                if byte < 0x20 { return "a control character in a string" }
                if byte == UInt8(ascii: "\\"), index + 1 < bytes.count {
                    if bytes[index + 1] == UInt8(ascii: "u"), let scalar = hex(index + 2) {
                        if (0xDC00...0xDFFF).contains(scalar) { return "a lone surrogate" }
                        if (0xD800...0xDBFF).contains(scalar) {
                            guard index + 12 <= bytes.count, bytes[index + 6] == UInt8(ascii: "\\"), bytes[index + 7] == UInt8(ascii: "u"),
                                  let low = hex(index + 8), (0xDC00...0xDFFF).contains(low) else { return "a lone surrogate" }
                            index += 12
                            continue
                        }
                        index += 6
                        continue
                    }
                    index += 2
                    continue
                }
                index += 1
            }
            return "an unfinished string"
        }

        /// The four hexadecimal digits at `at`, or `nil`.
        func hex(_ at: Int) -> UInt32? {
            guard at + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for byte in bytes[at..<at + 4] {
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt32(digit)
            }
            return value
        }
    }

    /// A name as a message may show it: printable ASCII kept, anything else as `\u{…}`, at most 64 characters.
    static func shown(_ name: String) -> String {
        var text = ""
        for scalar in name.unicodeScalars.prefix(64) {
            if scalar.value >= 0x20, scalar.value < 0x7F, scalar != "\"", scalar != "\\" {
                text.unicodeScalars.append(scalar)
            } else {
                text += "\\u{\(String(scalar.value, radix: 16))}"
            }
        }
        if name.unicodeScalars.count > 64 { text += "…" }
        return text
    }
}

private extension String {
    /// Letters, digits and `_` only, not starting with a digit: shown as `$.name`.
    var isPlainIdentifier: Bool {
        guard let first = unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }
}
