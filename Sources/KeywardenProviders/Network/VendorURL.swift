/// An absolute `http`/`https` URL split for sending over a pooled connection: its origin and the request target.
///
/// Strict on purpose: a URL this parser does not take (user info, a fragment-only oddity, a control character, a
/// port out of range) is not guessed at; the caller sends it another way or refuses it.
public struct VendorURL: Sendable, Equatable {
    /// Where the connection goes.
    public let origin: VendorOrigin
    /// The path and query, as the request line carries them (`/` when the URL has no path).
    public let target: String

    /// Reads `string`, or `nil` when it is not a plain absolute `http`/`https` URL.
    public init?(_ string: String) {
        let bytes = Array(string.utf8)
        // Every byte visible ASCII: no space, no control character, nothing a request line could be split by.
        guard !bytes.isEmpty, bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        let secure: Bool
        let rest: ArraySlice<UInt8>
        if Self.hasPrefix(bytes, "https://") {
            secure = true
            rest = bytes[8...]
        } else if Self.hasPrefix(bytes, "http://") {
            secure = false
            rest = bytes[7...]
        } else {
            return nil
        }
        let authorityEnd = rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? rest.endIndex
        let authority = rest[rest.startIndex..<authorityEnd]
        guard let (host, port, bracketed) = Self.hostAndPort(authority, defaultPort: secure ? 443 : 80) else { return nil }
        var target = rest[authorityEnd...]
        if let fragment = target.firstIndex(of: UInt8(ascii: "#")) { target = target[target.startIndex..<fragment] }
        // What a request line may not carry as it is (RFC 9112 §3.2, as NIO checks it) is percent-encoded.
        var encoded: [UInt8] = []
        encoded.reserveCapacity(target.count)
        for byte in target {
            if Self.mustBeEncoded(byte) {
                encoded.append(UInt8(ascii: "%"))
                encoded.append(Self.hexDigits[Int(byte >> 4)])
                encoded.append(Self.hexDigits[Int(byte & 0x0F)])
            } else {
                encoded.append(byte)
            }
        }
        let path = String(decoding: encoded, as: UTF8.self)
        self.target = path.isEmpty ? "/" : path.hasPrefix("?") ? "/" + path : path
        let shownHost = bracketed ? "[\(host)]" : host
        let defaultPort = secure ? 443 : 80
        origin = VendorOrigin(secure: secure, host: host, port: port,
                              hostHeader: port == defaultPort ? shownHost : "\(shownHost):\(port)")
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func mustBeEncoded(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "\\"), UInt8(ascii: "^"), UInt8(ascii: "`"),
             UInt8(ascii: "{"), UInt8(ascii: "|"), UInt8(ascii: "}"):
            return true
        default:
            return false
        }
    }

    private static func hasPrefix(_ bytes: [UInt8], _ prefix: String) -> Bool {
        let prefix = Array(prefix.utf8)
        guard bytes.count >= prefix.count else { return false }
        for (byte, expected) in zip(bytes, prefix) where byte | 0x20 != expected | 0x20 && byte != expected {
            return false
        }
        return true
    }

    /// The host (lower-cased, without brackets), the port and whether the host was an IPv6 literal.
    private static func hostAndPort(_ authority: ArraySlice<UInt8>, defaultPort: Int) -> (String, Int, Bool)? {
        guard !authority.isEmpty, !authority.contains(UInt8(ascii: "@")) else { return nil }
        var hostBytes: ArraySlice<UInt8>
        var portBytes: ArraySlice<UInt8>?
        var bracketed = false
        if authority.first == UInt8(ascii: "[") {
            guard let close = authority.firstIndex(of: UInt8(ascii: "]")) else { return nil }
            hostBytes = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == UInt8(ascii: ":") else { return nil }
                portBytes = after.dropFirst()
            }
            guard !hostBytes.isEmpty, hostBytes.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
            else { return nil }
            bracketed = true
        } else {
            if let colon = authority.firstIndex(of: UInt8(ascii: ":")) {
                hostBytes = authority[authority.startIndex..<colon]
                portBytes = authority[authority.index(after: colon)...]
            } else {
                hostBytes = authority
            }
            guard !hostBytes.isEmpty, hostBytes.allSatisfy({ isHostByte($0) }) else { return nil }
        }
        var port = defaultPort
        if let portBytes {
            guard !portBytes.isEmpty, portBytes.count <= 5, portBytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
            else { return nil }
            port = portBytes.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            guard (1...65_535).contains(port) else { return nil }
        }
        return (String(decoding: hostBytes, as: UTF8.self).lowercased(), port, bracketed)
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f"))
    }

    private static func isHostByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
    }
}

/// Where a vendor's connections go: scheme, host and port.
public struct VendorOrigin: Hashable, Sendable {
    /// Whether the connection is TLS (`https`).
    public let secure: Bool
    /// The host name or address, without IPv6 brackets, lower-cased.
    public let host: String
    public let port: Int
    /// What the `Host` header says: the host, and the port when it is not the scheme's own.
    public let hostHeader: String
}
