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
        if let contentType, ASCIIText.contains("json", ignoringCaseIn: contentType) { return true }
        var index = 0
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        while index < body.count, [0x20, 0x09, 0x0A, 0x0D].contains(body[index]) { index += 1 }
        return index < body.count && (body[index] == UInt8(ascii: "{") || body[index] == UInt8(ascii: "["))
    }

    /// Whether `body` is UTF-16 or UTF-32 text: its byte-order mark, or a NUL among its first four bytes (RFC 4627's
    /// way of telling the encoding of JSON).
    ///
    /// Inlinable, so a caller in another module reads its bytes specialized (the generic walk showed on the gateway's
    /// profile). `00 00 FE FF`, UTF-32's mark, is a NUL among the first four.
    @inlinable
    public static func isWideText<Bytes: Collection<UInt8>>(_ body: Bytes) -> Bool {
        var first: UInt8 = 1
        for (offset, byte) in body.prefix(4).enumerated() {
            if byte == 0 { return true }
            if offset == 0 { first = byte } else if offset == 1, (first, byte) == (0xFF, 0xFE) || (first, byte) == (0xFE, 0xFF) { return true }
        }
        return false
    }

    /// Checks that `body` is one JSON object every parser reads alike.
    public static func check(_ body: [UInt8]) -> Verdict {
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { return .unreadable("a byte-order mark starts the body") }
        var reader = Reader(bytes: body)
        let start = JSONScan.skipSpace(body, 0, body.count)
        guard start < body.count, body[start] == UInt8(ascii: "{") else { return .unreadable("the body is not one JSON object") }
        do throws(Problem) {
            let end = try reader.object(at: start, depth: 1, schema: metered)
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

    /// A member name as the loosest parser matches it to a field: case folded (with the letters that Go's, Java's and
    /// .NET's case-insensitive matching fold to ASCII: `ſ` U+017F and the Kelvin sign U+212A, dotless `ı` U+0131 and
    /// dotted `İ` U+0130), with `_` and `-` left out (a protobuf JSON parser takes `max_output_tokens` and
    /// `maxOutputTokens` for one field).
    static func folded(_ name: String) -> String {
        var result = ""
        result.unicodeScalars.reserveCapacity(name.unicodeScalars.count)
        for scalar in name.unicodeScalars {
            switch scalar.value {
            case 0x5F, 0x2D: continue
            case 0x41...0x5A: result.unicodeScalars.append(Unicode.Scalar(UInt8(scalar.value + 0x20)))
            case 0x00...0x7F: result.unicodeScalars.append(scalar)
            case 0x017F: result.unicodeScalars.append("s")
            case 0x212A: result.unicodeScalars.append("k")
            case 0x0131, 0x0130: result.unicodeScalars.append("i")
            case 0x212B: result.unicodeScalars.append("\u{E5}")
            default: result.unicodeScalars.append(contentsOf: String(scalar).lowercased().unicodeScalars)
            }
        }
        return result
    }

    /// The members the meter reads in a request's top-level object, as it spells them, with the JSON type it reads them
    /// as; ``nested`` gives those of the objects it reads inside. A member whose name folds (``folded(_:)``) to one of
    /// these but is spelled otherwise (`STREAM`, `Max_Tokens`, `ſtream`) is read by some parsers and not by the meter;
    /// one of the right name and another type (`"max_tokens":"4096"`, which pydantic turns into a number) is read by
    /// some and not by the meter; two that fold alike are read by each as it likes: all are refused. Elsewhere (the
    /// messages, a tool's schema) names are the caller's own: only an exact repeat is refused there.
    static let metered = Schema([
        "model": .string, "model_id": .string, "stream": .boolean, "stream_options": .object,
        "max_tokens": .integer, "max_completion_tokens": .integer, "max_output_tokens": .integer,
        "generationConfig": .object, "generation_config": .object, "n": .integer, "text": .string, "input": .any,
    ])

    /// The members the meter reads inside the objects of ``metered``.
    static let nested: [String: Schema] = {
        let generation = Schema(["maxOutputTokens": .integer, "max_output_tokens": .integer, "candidateCount": .integer, "candidate_count": .integer])
        return ["stream_options": Schema(["include_usage": .boolean]), "generationConfig": generation, "generation_config": generation]
    }()

    /// The members the meter reads in one object, and their spellings by folded name (made once, not per object read).
    struct Schema: Sendable {
        let types: [String: JSONType]
        /// Each folded name (``folded(_:)``) and the members that fold to it.
        let spellings: [String: [String]]

        init(_ types: [String: JSONType]) {
            self.types = types
            spellings = Dictionary(grouping: types.keys, by: RequestBodyCheck.folded)
        }
    }

    /// Members two vendors read as the same thing by different names: a body carrying both is read by each as it
    /// likes (ElevenLabs' `model_id` beside `model`, `text` beside `input`).
    static let aliases: [(String, String)] = [("model", "model_id"), ("text", "input")]

    enum JSONType: Sendable {
        case string, boolean, integer, object, any
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

        /// Reads the object at `start`; `schema`: the members the meter reads in it (``RequestBodyCheck/metered``).
        mutating func object(at start: Int, depth: Int, schema: Schema? = nil) throws(Problem) -> Int {
            guard depth <= RequestBodyCheck.maximumDepth else { throw fail("nesting deeper than \(RequestBodyCheck.maximumDepth) levels") }
            var seen: [String: String] = [:]
            var index = JSONScan.skipSpace(bytes, start + 1, bytes.count)
            guard index < bytes.count else { throw fail("an unfinished object") }
            if bytes[index] == UInt8(ascii: "}") { return index + 1 }
            while true {
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("malformed JSON (a member name expected)") }
                let (name, nameEnd) = try string(at: index)
                // Names the meter reads are compared as the loosest parser compares them; the caller's own exactly (and
                // are not folded: most objects of a body are the caller's).
                let loose = schema.map { _ in RequestBodyCheck.folded(name) }
                let spellings = loose.flatMap { schema?.spellings[$0] }
                let fold = spellings != nil ? loose ?? name : name
                if let earlier = seen[fold] {
                    let shownName = RequestBodyCheck.shown(name)
                    throw fail(earlier == name ? "duplicate member \"\(shownName)\"" : "members \"\(RequestBodyCheck.shown(earlier))\" and \"\(shownName)\" that some parsers take for one")
                }
                if let spellings, !spellings.contains(name) {
                    throw fail("member \"\(RequestBodyCheck.shown(name))\" that some parsers read as \"\(spellings.sorted()[0])\"")
                }
                if schema != nil {
                    for (one, other) in RequestBodyCheck.aliases where (name == one && seen[RequestBodyCheck.folded(other)] == other)
                        || (name == other && seen[RequestBodyCheck.folded(one)] == one) {
                        throw fail("members \"\(one)\" and \"\(other)\" that different vendors read as the same")
                    }
                }
                if name.unicodeScalars.contains(where: { $0.value < 0x20 }) {
                    throw fail("a member name with a control character")
                }
                seen[fold] = name
                index = JSONScan.skipSpace(bytes, nameEnd, bytes.count)
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("malformed JSON (a colon expected)") }
                index = JSONScan.skipSpace(bytes, index + 1, bytes.count)
                path.append(.member(name))
                let valueStart = index
                index = try value(at: index, depth: depth, schema: schema == nil ? nil : RequestBodyCheck.nested[name])
                if let type = schema?.types[name], !RequestBodyCheck.value(bytes[valueStart..<index], is: type) {
                    throw fail("a value of another type than the meter reads")
                }
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

        mutating func value(at start: Int, depth: Int, schema: Schema? = nil) throws(Problem) -> Int {
            guard start < bytes.count else { throw fail("a missing value") }
            switch bytes[start] {
            case UInt8(ascii: "{"): return try object(at: start, depth: depth + 1, schema: schema)
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
        func hex(_ at: Int) -> UInt32? { JSONScan.fourHexDigits(bytes, at: at, end: bytes.count) }
    }

    /// Whether the JSON value `text` is of `type` (`null` is any member's "not set").
    static func value(_ text: ArraySlice<UInt8>, is type: JSONType) -> Bool {
        guard let first = text.first, !text.elementsEqual("null".utf8) else { return true }
        switch type {
        case .any: return true
        case .string: return first == UInt8(ascii: "\"")
        case .object: return first == UInt8(ascii: "{")
        case .boolean: return text.elementsEqual("true".utf8) || text.elementsEqual("false".utf8)
        case .integer:
            guard first == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
            // A number the meter reads as a whole number (digits, or an exact integer within 2^53).
            return JSONScan.int(Array(text), 0..<text.count) != nil
        }
    }

    /// A name as a message may show it: printable ASCII kept, anything else as `\u{…}`, at most 64 characters.
    public static func shown(_ name: String) -> String {
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
