import Foundation

/// An IP address, as the network policy judges it: 4 bytes (IPv4) or 16 bytes (IPv6).
public struct NetworkAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address in network byte order.
    public let bytes: [UInt8]

    /// An IPv4 address from 4 bytes or an IPv6 address from 16; `nil` for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public var isIPv4: Bool { bytes.count == 4 }

    /// The address in its usual text form (`127.0.0.1`, `::1`).
    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        for index in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]), radix: 16))
        }
        return groups.joined(separator: ":")
    }

    /// Parses the standard text forms only (what `inet_pton` accepts, brackets allowed around IPv6).
    public init?(strict text: String) {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        // A zone (`fe80::1%eth0`) names an interface: the address before it is what is judged.
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }
        var v4 = in_addr()
        if inet_pton(AF_INET, String(text), &v4) == 1 {
            self.init(bytes: withUnsafeBytes(of: v4) { Array($0) })
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, String(text), &v6) == 1 {
            self.init(bytes: withUnsafeBytes(of: v6) { Array($0) })
            return
        }
        return nil
    }

    /// Parses every numeric IPv4 spelling a resolver accepts (`inet_aton`): one to four parts, each decimal,
    /// octal (`0177`) or hexadecimal (`0x7f`), the last filling the remaining bytes — so `2130706433`,
    /// `0177.0.0.1`, `0x7f.1`, `127.1` and `0` are all read as the addresses they reach.
    public init?(legacyIPv4 text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...4).contains(parts.count) else { return nil }
        var values: [UInt64] = []
        for part in parts {
            guard let value = Self.legacyNumber(part) else { return nil }
            values.append(value)
        }
        let last = values.removeLast()
        guard values.allSatisfy({ $0 <= 255 }) else { return nil }
        let remaining = 4 - values.count
        guard last < (UInt64(1) << (8 * UInt64(remaining))) else { return nil }
        var bytes = values.map { UInt8($0) }
        for shift in stride(from: remaining - 1, through: 0, by: -1) {
            bytes.append(UInt8((last >> (8 * UInt64(shift))) & 0xFF))
        }
        self.init(bytes: bytes)
    }

    static func legacyNumber(_ text: Substring) -> UInt64? {
        var digits = Substring(text)
        var radix: UInt64 = 10
        if digits.lowercased().hasPrefix("0x") {
            radix = 16
            digits = digits.dropFirst(2)
            // inet_aton reads a bare "0x" as 0.
            if digits.isEmpty { return 0 }
        } else if digits.hasPrefix("0"), digits.count > 1 {
            radix = 8
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.utf8.count <= 32 else { return nil }
        var value: UInt64 = 0
        for character in digits.lowercased().utf8 {
            let digit: UInt64
            switch character {
            case 0x30...0x39: digit = UInt64(character - 0x30)
            case 0x61...0x66: digit = UInt64(character - 0x61 + 10)
            default: return nil
            }
            guard digit < radix else { return nil }
            let (shifted, overflow) = value.multipliedReportingOverflow(by: radix)
            guard !overflow, shifted <= UInt64(UInt32.max) else { return nil }
            value = shifted + digit
        }
        return value <= UInt64(UInt32.max) ? value : nil
    }
}

/// Which network addresses Keywarden may connect to on behalf of a workspace.
///
/// A workspace admin who could make Keywarden connect to `127.0.0.1`, a private network or a cloud metadata
/// address would turn it into a proxy into the network it runs in (SSRF). The rule is decided on **addresses**,
/// at connect time (see `EgressGuard` in KeywardenProviders), so no spelling of a host gets around it; the checks
/// on a URL's text when it is saved are a courtesy that gives an early, clear error. The platform's own
/// settings (its cards, `KEYWARDEN_UPSTREAM_*`) are the operator's choice and are not judged.
public enum NetworkTargetPolicy {
    /// Why an address or host is refused.
    public enum Refusal: String, Sendable, Equatable {
        case loopback, unspecified, privateNetwork = "private", sharedAddressSpace = "shared_address_space", linkLocal = "link_local"
        case uniqueLocal = "unique_local", multicast, reserved, cloudMetadata = "cloud_metadata", internalName = "internal_name"
        /// An address of the machine Keywarden runs on (its public interface included).
        case thisHost = "this_host"

        /// Words for an error message.
        public var explanation: String {
            switch self {
            case .loopback: return "a loopback address"
            case .unspecified: return "an unspecified address"
            case .privateNetwork: return "a private network address"
            case .sharedAddressSpace: return "a carrier-grade NAT address"
            case .linkLocal: return "a link-local address"
            case .uniqueLocal: return "a unique-local IPv6 address"
            case .multicast: return "a multicast address"
            case .reserved: return "a reserved address"
            case .cloudMetadata: return "a cloud metadata address"
            case .internalName: return "an internal host name"
            case .thisHost: return "an address of Keywarden's own host"
            }
        }
    }

    /// Cloud metadata services: AWS / GCP / Azure IMDS, Azure's wire server, Alibaba, AWS's IPv6 IMDS.
    static let metadataAddresses: Set<[UInt8]> = [
        [169, 254, 169, 254], [168, 63, 129, 16], [100, 100, 100, 200],
        [0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54],
    ]

    /// Why Keywarden may not connect to this address on a workspace's behalf, or `nil` when it may.
    public static func refusal(for address: NetworkAddress) -> Refusal? {
        let b = address.bytes
        if metadataAddresses.contains(b) { return .cloudMetadata }
        if address.isIPv4 { return refusal(ipv4: b) }
        // IPv6 forms that carry an IPv4 address are judged by that address.
        let first10Zero = b[0..<10].allSatisfy { $0 == 0 }
        if first10Zero, b[10] == 0xff, b[11] == 0xff { return embedded(b[12...]) }                 // ::ffff:a.b.c.d (mapped)
        if b[0..<8].allSatisfy({ $0 == 0 }), b[8] == 0xff, b[9] == 0xff, b[10] == 0, b[11] == 0 {
            return embedded(b[12...])                                                                // ::ffff:0:a.b.c.d (SIIT)
        }
        if b[0..<12].allSatisfy({ $0 == 0 }) {
            if b[12..<15].allSatisfy({ $0 == 0 }) && (b[15] == 0 || b[15] == 1) { return b[15] == 0 ? .unspecified : .loopback }
            return embedded(b[12...]) ?? .reserved                                                  // ::a.b.c.d (compatible, deprecated)
        }
        if b[0] == 0x00, b[1] == 0x64, b[2] == 0xff, b[3] == 0x9b, b[4..<12].allSatisfy({ $0 == 0 }) { return embedded(b[12...]) }   // 64:ff9b::/96 NAT64
        if b[0] == 0x00, b[1] == 0x64, b[2] == 0xff, b[3] == 0x9b { return .reserved }               // 64:ff9b:1::/48 local NAT64
        if b[0] == 0x20, b[1] == 0x02 { return embedded(b[2..<6]) ?? .reserved }                    // 2002::/16 6to4
        if b[0] == 0x20, b[1] == 0x01, b[2] == 0x00, b[3] == 0x00 { return .reserved }              // 2001::/32 Teredo (hidden IPv4)
        if b[0] == 0x20, b[1] == 0x01, b[2] == 0x0d, b[3] == 0xb8 { return .reserved }              // 2001:db8::/32 documentation
        if b[0] == 0x01, b[1] == 0x00, b[2..<8].allSatisfy({ $0 == 0 }) { return .reserved }        // 100::/64 discard
        if b[0] & 0xfe == 0xfc { return .uniqueLocal }                                              // fc00::/7
        if b[0] == 0xfe, b[1] & 0xc0 == 0x80 { return .linkLocal }                                   // fe80::/10
        if b[0] == 0xfe, b[1] & 0xc0 == 0xc0 { return .privateNetwork }                              // fec0::/10 site-local
        if b[0] == 0xff { return .multicast }
        return nil
    }

    static func embedded(_ bytes: ArraySlice<UInt8>) -> Refusal? {
        guard let v4 = NetworkAddress(bytes: Array(bytes)) else { return .reserved }
        return refusal(for: v4)
    }

    static func refusal(ipv4 a: [UInt8]) -> Refusal? {
        switch (a[0], a[1], a[2]) {
        case (0, _, _): return .unspecified                          // 0.0.0.0/8 "this network"
        case (10, _, _): return .privateNetwork
        case (100, 64...127, _): return .sharedAddressSpace          // 100.64.0.0/10 carrier-grade NAT
        case (127, _, _): return .loopback
        case (169, 254, _): return .linkLocal
        case (172, 16...31, _): return .privateNetwork
        case (192, 0, 0), (192, 0, 2): return .reserved              // IETF assignments, TEST-NET-1
        case (192, 88, 99): return .reserved                         // 6to4 relay anycast
        case (192, 168, _): return .privateNetwork
        case (198, 18...19, _): return .reserved                     // benchmarking
        case (198, 51, 100), (203, 0, 113): return .reserved         // TEST-NET-2, TEST-NET-3
        case (224...239, _, _): return .multicast
        case (240...255, _, _): return .reserved                     // reserved, broadcast
        default: return nil
        }
    }

    /// Names that are internal by definition, whatever they resolve to.
    public static func refusal(forName host: String) -> Refusal? {
        var name = host.lowercased()
        while name.hasSuffix(".") { name.removeLast() }
        if name.isEmpty { return .unspecified }
        if name == "localhost" || name.hasSuffix(".localhost") { return .loopback }
        for suffix in [".local", ".internal", ".localdomain", ".home.arpa", ".intranet", ".corp", ".lan"] where name.hasSuffix(suffix) || name == String(suffix.dropFirst()) {
            return .internalName
        }
        return nil
    }

    /// Judges a host as written in a URL without resolving it: an address in any numeric spelling (strict,
    /// or the legacy forms resolvers accept), or a name internal by definition. A public-looking name passes
    /// here; it is judged again by the addresses it resolves to when Keywarden connects.
    public static func refusal(forHost host: String) -> Refusal? {
        if let address = NetworkAddress(strict: host) ?? NetworkAddress(legacyIPv4: host) { return refusal(for: address) }
        return refusal(forName: host)
    }

    /// The host of an http(s) URL, as a client would connect to it (brackets removed, lowercased), or `nil`.
    public static func host(ofURL text: String) -> String? {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty else { return nil }
        return host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
    }

    /// Judges a URL by its host's text (see ``refusal(forHost:)``); a URL without an http(s) host is refused.
    public static func refusal(forURL text: String) -> Refusal? {
        guard let host = host(ofURL: text) else { return .reserved }
        return refusal(forHost: host)
    }
}

/// Checks a URL a workspace gave (a base URL, an endpoint, a webhook) before it is saved: the host's
/// spelling and, where the implementation can, the addresses it resolves to. Injected into the store, so
/// the layer that does network I/O (KeywardenProviders' `EgressGuard`) can resolve names.
public protocol NetworkTargetCheck: Sendable {
    /// Why the URL may not be used on a workspace's behalf, or `nil` when it may.
    func refusal(forURL url: String) async -> NetworkTargetPolicy.Refusal?
}

/// The check of a URL's text only, for places with no resolver (the command line without a server).
public struct LiteralNetworkTargetCheck: NetworkTargetCheck {
    public init() {}

    public func refusal(forURL url: String) async -> NetworkTargetPolicy.Refusal? {
        NetworkTargetPolicy.refusal(forURL: url)
    }
}

/// The one check of a URL Keywarden will connect to (a base URL, an endpoint, a webhook), before any client sees it:
/// http or https, a host of at most 253 bytes in labels of at most 63 (a longer name is no DNS name, and the SOCKS
/// client in the path traps on one over 255 bytes), a port from 1 to 65535 when one is given.
public enum OutboundURL {
    /// Why the URL cannot be called, or `nil` when it can.
    public static func problem(_ text: String) -> String? {
        guard text.utf8.count <= 2048 else { return "is longer than 2048 bytes" }
        guard HTTPURLSyntax.isValid(text) else { return "must be an http(s) URL in RFC 3986 syntax" }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            return "must be an http(s) URL"
        }
        guard let host = components.host, !host.isEmpty else { return "must name a host" }
        let name = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard name.utf8.count <= 253, name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({ $0.utf8.count <= 63 }) else {
            return "has a host name longer than DNS allows"
        }
        if let port = components.port, !(1...65535).contains(port) { return "has a port outside 1-65535" }
        if let range = components.rangeOfPort, text[range].hasPrefix("0") { return "has a port with a leading zero" }
        if components.port == nil, let authority = text.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first,
           authority.hasSuffix(":") { return "has an empty port" }
        return nil
    }
}
