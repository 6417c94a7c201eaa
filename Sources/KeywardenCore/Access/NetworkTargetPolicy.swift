import Foundation

/// Which URLs a workspace may make Keywarden call. A workspace admin who could point a base URL
/// or a webhook at `127.0.0.1`, a private network or a cloud metadata address would turn
/// Keywarden into a proxy into its own network (SSRF). The platform's own settings are trusted.
public enum NetworkTargetPolicy {
    /// Whether a URL names a loopback, private, link-local or otherwise internal host by its literal
    /// address or a reserved name. Names that resolve to such addresses are not caught here.
    public static func isInternal(_ urlString: String) -> Bool {
        guard let host = URL(string: urlString)?.host?.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]")) else { return true }
        if host == "localhost" || host.hasSuffix(".localhost") || host.hasSuffix(".local") || host.hasSuffix(".internal") || host == "metadata.google.internal" {
            return true
        }
        if let v4 = ipv4(host) { return isInternal(v4) }
        if host.contains(":") { return isInternalIPv6(host) }
        return false
    }

    static func ipv4(_ host: String) -> [UInt8]? {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { UInt8($0) }
        return bytes.count == 4 ? bytes : nil
    }

    static func isInternal(_ a: [UInt8]) -> Bool {
        switch (a[0], a[1]) {
        case (0, _), (10, _), (127, _): return true
        case (169, 254): return true                      // link-local, cloud metadata
        case (172, 16...31): return true
        case (192, 168): return true
        case (100, 64...127): return true                  // carrier-grade NAT
        case (198, 18...19): return true                   // benchmarking
        case (224...255, _): return true                   // multicast, reserved, broadcast
        default: return false
        }
    }

    static func isInternalIPv6(_ host: String) -> Bool {
        let h = host.lowercased()
        if h == "::1" || h == "::" { return true }
        if h.hasPrefix("fe8") || h.hasPrefix("fe9") || h.hasPrefix("fea") || h.hasPrefix("feb") { return true }   // link-local
        if h.hasPrefix("fc") || h.hasPrefix("fd") { return true }                                              // unique local
        if h.hasPrefix("::ffff:"), let v4 = ipv4(String(h.dropFirst(7))) { return isInternal(v4) }
        return false
    }
}
