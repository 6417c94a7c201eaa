import Foundation
import KeywardenCore
import NIOCore

/// Decides, on resolved addresses, where Keywarden may connect on a workspace's behalf (``NetworkTargetPolicy``).
///
/// Used twice: by ``EgressProxy`` at connect time (the rule's enforcement: it connects only to an address it just
/// checked, so DNS rebinding and every numeric spelling are judged by what they reach) and by the store before a
/// URL is saved (an early, clear error).
public struct EgressGuard: NetworkTargetCheck {
    let resolver: any HostResolver
    /// `KEYWARDEN_ALLOW_PRIVATE_TARGETS`: every address is allowed (tests on loopback).
    public let allowsPrivateTargets: Bool
    /// Which addresses are refused; the policy by default (tests narrow it to reach a local server).
    let refusal: @Sendable (NetworkAddress) -> NetworkTargetPolicy.Refusal?

    public init(resolver: any HostResolver = SystemHostResolver(), allowsPrivateTargets: Bool = false,
                refusal: @escaping @Sendable (NetworkAddress) -> NetworkTargetPolicy.Refusal? = EgressGuard.standardRefusal) {
        self.resolver = resolver
        self.allowsPrivateTargets = allowsPrivateTargets
        self.refusal = refusal
    }

    /// The policy, plus the addresses of this host's own interfaces (a public address of the machine reaches the
    /// services it binds to every interface).
    public static let standardRefusal: @Sendable (NetworkAddress) -> NetworkTargetPolicy.Refusal? = { address in
        NetworkTargetPolicy.refusal(for: address) ?? (LocalInterfaces.addresses.contains(address) ? .thisHost : nil)
    }

    /// What checking a host found: the addresses to connect to, or why not.
    public enum Verdict: Sendable {
        case allowed([SocketAddress])
        case refused(NetworkTargetPolicy.Refusal, address: String)
        case unresolvable(String)
    }

    /// Resolves `host` and judges every address it has: one refused address refuses the host (a name that
    /// resolves both outward and inward is not trusted with either).
    public func check(host: String, port: Int) async -> Verdict {
        if !allowsPrivateTargets, let byName = NetworkTargetPolicy.refusal(forName: host),
           NetworkAddress(strict: host) == nil, NetworkAddress(legacyIPv4: host) == nil {
            return .refused(byName, address: host)
        }
        let addresses: [SocketAddress]
        do {
            addresses = try await resolver.resolve(host: host, port: port)
        } catch {
            return .unresolvable(String(describing: error))
        }
        guard !allowsPrivateTargets else { return .allowed(addresses) }
        for address in addresses {
            guard let network = address.networkAddress else { return .refused(.reserved, address: "\(address)") }
            if let reason = refusal(network) { return .refused(reason, address: network.description) }
        }
        return .allowed(addresses)
    }

    /// Judges an address a client already resolved.
    public func check(address: SocketAddress) -> Verdict {
        guard !allowsPrivateTargets else { return .allowed([address]) }
        guard let network = address.networkAddress else { return .refused(.reserved, address: "\(address)") }
        if let reason = refusal(network) { return .refused(reason, address: network.description) }
        return .allowed([address])
    }

    /// For the store, before a URL is saved: its host's spelling, then the addresses it resolves to. A name that
    /// does not resolve (yet) is not refused here; the connection will be judged when it is made.
    public func refusal(forURL url: String) async -> NetworkTargetPolicy.Refusal? {
        guard !allowsPrivateTargets else { return nil }
        guard let host = NetworkTargetPolicy.host(ofURL: url) else { return .reserved }
        if let literal = NetworkTargetPolicy.refusal(forHost: host) { return literal }
        let port = URLComponents(string: url)?.port ?? (url.lowercased().hasPrefix("https") ? 443 : 80)
        if case .refused(let reason, _) = await check(host: host, port: port) { return reason }
        return nil
    }
}

/// The addresses of this host's network interfaces (`getifaddrs`), read once.
enum LocalInterfaces {
    static let addresses: Set<NetworkAddress> = {
        var result = Set<NetworkAddress>()
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return result }
        defer { freeifaddrs(first) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            if let address = entry.pointee.ifa_addr {
                switch Int32(address.pointee.sa_family) {
                case AF_INET:
                    let v4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    if let network = withUnsafeBytes(of: v4, { NetworkAddress(bytes: Array($0)) }) { result.insert(network) }
                case AF_INET6:
                    let v6 = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    if let network = withUnsafeBytes(of: v6, { NetworkAddress(bytes: Array($0)) }) { result.insert(network) }
                default:
                    break
                }
            }
            cursor = entry.pointee.ifa_next
        }
        return result
    }()
}
