/// One vendor endpoint a shared key (the platform's, or the managed default) may be used for through the
/// native pass-through, written `METHOD /path` with `*` standing for any text inside one path segment
/// (`POST /v1beta/models/*:generateContent`), or `*` alone for every endpoint (an operator's own API).
///
/// A workspace's own keys are its own business: the rules apply only to keys it does not own, so a tenant
/// cannot use the platform's vendor account for files, batches, fine-tuning or its administration.
public struct EndpointRule: Sendable, Equatable, CustomStringConvertible {
    public let method: String
    /// The path's segments; `nil` for the rule that allows every endpoint.
    let segments: [[Substring]]?
    public let description: String

    /// Parses `METHOD /path` (or `*`); `nil` when it is neither.
    public init?(_ text: String) {
        description = text
        if text == "*" {
            method = "*"
            segments = nil
            return
        }
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(String(parts[0])), parts[1].hasPrefix("/") else { return nil }
        method = String(parts[0])
        // Each segment split at its `*`s: the pieces must appear in order.
        segments = parts[1].dropFirst().split(separator: "/", omittingEmptySubsequences: false).map { $0.split(separator: "*", omittingEmptySubsequences: false) }
        guard segments?.allSatisfy({ !$0.isEmpty }) == true else { return nil }
    }

    /// Whether the rule allows this call (`path` without its query, already judged plain by ``EndpointRule/plainPath(_:)``).
    /// A rule for `GET` allows `HEAD` too: the same request, answered without its body (RFC 9110, 9.3.2).
    public func allows(method: String, path: Substring) -> Bool {
        guard let segments else { return true }
        // A method already in upper-case ASCII (`POST`, as nearly every call sends it) is its own upper case.
        let upper = method.utf8.allSatisfy { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") } ? method : method.uppercased()
        guard upper == self.method || (upper == "HEAD" && self.method == "GET") else { return false }
        let actual = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        guard actual.count == segments.count else { return false }
        return zip(segments, actual).allSatisfy { Self.matches($1, pieces: $0) }
    }

    static func matches(_ segment: Substring, pieces: [Substring]) -> Bool {
        if pieces.count == 1 { return segment == pieces[0] }
        guard !segment.isEmpty, segment.hasPrefix(pieces[0]), let last = pieces.last, segment.hasSuffix(last),
              segment.count >= pieces[0].count + last.count else { return false }
        var rest = segment.dropFirst(pieces[0].count).dropLast(last.count)
        for piece in pieces.dropFirst().dropLast() where !piece.isEmpty {
            guard let range = rest.range(of: piece) else { return false }
            rest = rest[range.upperBound...]
        }
        return true
    }

    /// The path of a `path?query`, when it is plain enough to judge: starts with `/`, no empty, `.` or `..`
    /// segment, no `%` (an encoded dot or slash a vendor might decode), no `\` or `;`. `nil` otherwise: a
    /// shared key is not used for a path Keywarden cannot be sure it reads the way the vendor will.
    public static func plainPath(_ pathAndQuery: String) -> Substring? {
        switch ASCIIPath.judge(pathAndQuery) {
        case .plain(let end): return pathAndQuery[..<pathAndQuery.utf8.index(pathAndQuery.startIndex, offsetBy: end)]
        case .notPlain: return nil
        case .notASCII: return characterPlainPath(pathAndQuery)
        }
    }

    /// ``plainPath(_:)`` walked character by character: for a path that is not all ASCII.
    static func characterPlainPath(_ pathAndQuery: String) -> Substring? {
        let path = pathAndQuery.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path.hasPrefix("/"), !path.contains(where: { $0 == "%" || $0 == "\\" || $0 == ";" || $0 == "#" }) else { return nil }
        for segment in path.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            if segment.isEmpty || segment == "." || segment == ".." { return nil }
        }
        return path
    }

    /// Whether any of `rules` allows the call. A path that is not plain is refused even under `*`: a `..` or an encoded
    /// one could leave the base URL's own path (an operator's API under a prefix).
    public static func allows(_ rules: [EndpointRule], method: String, pathAndQuery: String) -> Bool {
        guard let path = plainPath(pathAndQuery) else { return false }
        return rules.contains { $0.allows(method: method, path: path) }
    }
}

/// ``EndpointRule/plainPath(_:)`` judged on bytes, for the path (and the character after its `?`) in ASCII: there each
/// byte is one character (only CR LF pairs two, and neither is `?`, `/`, `.` or a byte the judgement looks for), so
/// the byte walk reads the text as the character walk does, without building characters.
enum ASCIIPath {
    enum Verdict: Equatable {
        /// Plain: the path is the first `end` bytes.
        case plain(end: Int)
        case notPlain
        /// Not judged here: a byte of the path, or the one after its `?`, is not ASCII (a combining mark there would join
        /// the `?` or `/` before it into another character), or the text's bytes are not contiguous.
        case notASCII
    }

    static func judge(_ pathAndQuery: String) -> Verdict {
        pathAndQuery.utf8.withContiguousStorageIfAvailable(judge) ?? .notASCII
    }

    static func judge(_ bytes: UnsafeBufferPointer<UInt8>) -> Verdict {
        // Not starting with `/` (nor with a character that begins with one, as `/` and a combining mark): not plain.
        guard let first = bytes.first, first == UInt8(ascii: "/") else { return .notPlain }
        var end = bytes.count
        var plain = true
        // The length of the current segment and whether it is all dots so far (`.` and `..` are refused).
        var segmentLength = 0
        var segmentDots = 0
        var index = 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte >= 0x80 { return .notASCII }
            if byte == UInt8(ascii: "?") {
                if index + 1 < bytes.count, bytes[index + 1] >= 0x80 { return .notASCII }
                end = index
                break
            }
            switch byte {
            case UInt8(ascii: "/"):
                if segmentLength == 0 || segmentLength == segmentDots && segmentDots <= 2 { plain = false }
                segmentLength = 0
                segmentDots = 0
            case UInt8(ascii: "%"), UInt8(ascii: "\\"), UInt8(ascii: ";"), UInt8(ascii: "#"):
                plain = false
            case UInt8(ascii: "."):
                segmentLength += 1
                segmentDots += 1
            default:
                segmentLength += 1
            }
            index += 1
        }
        // The last segment (a path of `/` alone has one, empty).
        if segmentLength == 0 || segmentLength == segmentDots && segmentDots <= 2 { plain = false }
        return plain ? .plain(end: end) : .notPlain
    }
}
