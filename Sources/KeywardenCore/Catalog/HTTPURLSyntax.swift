import Foundation

/// What an http(s) URL a person saves (a card's base URL or endpoint, a webhook) may look like: RFC 3986's syntax
/// in ASCII. `http` or `https` in any case, `://`, an optional userinfo, a host — a name of letters, digits and
/// `-._~!$&'()*+,;=`, or an IPv6 address in brackets — an optional port up to 65535, then path, query and fragment
/// of URI characters with `%XX` escapes. Foundation's `URL(string:)` is more forgiving (it escapes a space or a
/// `{` in a path, maps a non-ASCII host through IDNA): a URL it would silently rewrite is refused here instead,
/// so what is stored is what is called. The OpenAPI document's URL patterns say the same.
public enum HTTPURLSyntax {
    public static func isValid(_ text: String) -> Bool {
        let b = Array(text.utf8)
        guard let schemeEnd = schemeLength(b) else { return false }
        var index = schemeEnd
        let authorityEnd = b[index...].firstIndex { $0 == slash || $0 == question || $0 == hash } ?? b.count
        var hostStart = index
        if let at = b[index..<authorityEnd].lastIndex(of: UInt8(ascii: "@")) {
            guard escaped(b[index..<at], allowing: userinfo) else { return false }
            hostStart = at + 1
        }
        var portStart: Int?
        if hostStart < authorityEnd, b[hostStart] == UInt8(ascii: "[") {
            guard let close = b[hostStart..<authorityEnd].firstIndex(of: UInt8(ascii: "]")), close > hostStart + 1 else { return false }
            var address = in6_addr()
            guard inet_pton(AF_INET6, String(decoding: b[(hostStart + 1)..<close], as: UTF8.self), &address) == 1 else { return false }
            if close + 1 < authorityEnd {
                guard b[close + 1] == colon else { return false }
                portStart = close + 2
            }
        } else {
            let hostEnd = b[hostStart..<authorityEnd].firstIndex(of: colon) ?? authorityEnd
            guard hostEnd > hostStart, b[hostStart..<hostEnd].allSatisfy({ regName.contains($0) }) else { return false }
            if hostEnd < authorityEnd { portStart = hostEnd + 1 }
        }
        if let portStart {
            let digits = b[portStart..<authorityEnd]
            guard (1...5).contains(digits.count), digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let port = Int(String(decoding: digits, as: UTF8.self)), port <= 65_535 else { return false }
        }
        index = authorityEnd
        // Path, then query, then fragment.
        let queryStart = b[index...].firstIndex { $0 == question || $0 == hash } ?? b.count
        guard escaped(b[index..<queryStart], allowing: pathCharacters) else { return false }
        index = queryStart
        if index < b.count, b[index] == question {
            let fragmentStart = b[(index + 1)...].firstIndex(of: hash) ?? b.count
            guard escaped(b[(index + 1)..<fragmentStart], allowing: queryCharacters) else { return false }
            index = fragmentStart
        }
        if index < b.count {
            guard escaped(b[(index + 1)...], allowing: queryCharacters) else { return false }
        }
        return true
    }

    static let slash = UInt8(ascii: "/"), question = UInt8(ascii: "?"), hash = UInt8(ascii: "#"), colon = UInt8(ascii: ":")

    static func bytes(_ text: String) -> Set<UInt8> { Set(text.utf8) }
    static let unreserved = bytes("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    static let subDelims = bytes("!$&'()*+,;=")
    static let regName = unreserved.union(subDelims)
    static let userinfo = regName.union(bytes(":"))
    static let pathCharacters = regName.union(bytes(":@/"))
    static let queryCharacters = pathCharacters.union(bytes("?"))

    /// `http://` or `https://` in any case: the length of the prefix.
    static func schemeLength(_ b: [UInt8]) -> Int? {
        func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte }
        let http = Array("http".utf8)
        guard b.count > 7, zip(b.prefix(4), http).allSatisfy({ lower($0) == $1 }) else { return nil }
        var index = 4
        if lower(b[index]) == UInt8(ascii: "s") { index += 1 }
        guard b.count > index + 3, b[index] == colon, b[index + 1] == slash, b[index + 2] == slash else { return nil }
        return index + 3
    }

    /// Every byte is allowed or part of a `%XX` escape.
    static func escaped(_ bytes: ArraySlice<UInt8>, allowing allowed: Set<UInt8>) -> Bool {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.endIndex, isHex(bytes[index + 1]), isHex(bytes[index + 2]) else { return false }
                index += 3
            } else {
                guard allowed.contains(byte) else { return false }
                index += 1
            }
        }
        return true
    }

    static func isHex(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
    }
}
