import Foundation
import KeywardenCore
import NIOCore
import NIOPosix
import Synchronization

/// Turns a host name into the addresses a connection would use.
public protocol HostResolver: Sendable {
    /// Every address of `host` (an address literal in any spelling resolves to itself); throws when the name does not resolve.
    func resolve(host: String, port: Int) async throws -> [SocketAddress]
}

/// Why a host could not be resolved.
public struct HostResolutionError: Error, CustomStringConvertible {
    public let host: String
    public let reason: String
    public var description: String { "cannot resolve \(host): \(reason)" }
}

/// The system's resolver (`getaddrinfo`, so `/etc/hosts` and every numeric spelling count), run off the event loops
/// on threads of its own: a workspace's name whose server answers slowly ties up at most these threads (never the
/// shared pool the database's queries run on), and a caller waits at most ``timeout``.
public struct SystemHostResolver: HostResolver {
    /// The lookups' own threads, started once.
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 4)
        pool.start()
        return pool
    }()
    /// The longest a caller waits for a name (a lookup still running after it finishes on its thread, unseen).
    public let timeout: Duration

    public init(timeout: Duration = .seconds(5)) {
        self.timeout = timeout
    }

    public func resolve(host: String, port: Int) async throws -> [SocketAddress] {
        let timeout = self.timeout
        // A blocked getaddrinfo cannot be cancelled: the caller is answered by whichever comes first, the lookup or
        // the timeout, and the lookup (unstructured) ends on its own thread whenever it does.
        let once = ResumeOnce<[SocketAddress]>()
        return try await withCheckedThrowingContinuation { continuation in
            once.set(continuation)
            Task.detached {
                do { once.resume(.success(try await Self.pool.runIfActive { try Self.lookup(host: host, port: port) })) } catch { once.resume(.failure(error)) }
            }
            Task.detached {
                try? await Task.sleep(for: timeout)
                once.resume(.failure(HostResolutionError(host: host, reason: "no answer within \(timeout)")))
            }
        }
    }

    static func lookup(host: String, port: Int) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result else {
            throw HostResolutionError(host: host, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(first) }
        var addresses: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if let address = info.pointee.ai_addr {
                switch Int32(info.pointee.ai_family) {
                case AF_INET:
                    let v4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
                    addresses.append(SocketAddress(v4, host: host))
                case AF_INET6:
                    let v6 = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee }
                    addresses.append(SocketAddress(v6, host: host))
                default:
                    break
                }
            }
            cursor = info.pointee.ai_next
        }
        guard !addresses.isEmpty else { throw HostResolutionError(host: host, reason: "no address") }
        return addresses
    }
}

extension SocketAddress {
    /// The address as the network policy judges it.
    var networkAddress: NetworkAddress? {
        switch self {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr) { NetworkAddress(bytes: Array($0)) }
        case .v6(let v6):
            return withUnsafeBytes(of: v6.address.sin6_addr) { NetworkAddress(bytes: Array($0)) }
        case .unixDomainSocket:
            return nil
        }
    }
}

/// A continuation resumed by the first of several racers; the others are ignored.
final class ResumeOnce<Value: Sendable>: Sendable {
    private let state = Mutex<CheckedContinuation<Value, any Error>?>(nil)

    func set(_ continuation: CheckedContinuation<Value, any Error>) {
        state.withLock { $0 = continuation }
    }

    func resume(_ result: Result<Value, any Error>) {
        state.withLock { waiting in
            waiting?.resume(with: result)
            waiting = nil
        }
    }
}
