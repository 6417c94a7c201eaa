import AsyncHTTPClient
import KeywardenCore
import KeywardenProviders
import NIOCore

/// The gateway's connection to the vendors: one request out, its response head (and streamed body) back.
///
/// ``OutboundClients`` is the real one; tests of failover, cooldowns and metering pass a scripted one.
public protocol VendorTransport: Sendable {
    /// Why a request a workspace shaped (its endpoint, its region) to `url` would be refused, or `nil`.
    func refusal(forWorkspaceShapedURL url: String) async -> NetworkTargetPolicy.Refusal?
    /// Sends `request`, through the egress guard when a workspace shaped its target; returns at the response head.
    func execute(_ request: HTTPClientRequest, shapedByWorkspace: Bool, deadline: NIODeadline) async throws -> HTTPClientResponse
}

extension OutboundClients: VendorTransport {
    public func refusal(forWorkspaceShapedURL url: String) async -> NetworkTargetPolicy.Refusal? {
        await refusal(forGuardedURL: url)
    }

    public func execute(_ request: HTTPClientRequest, shapedByWorkspace: Bool, deadline: NIODeadline) async throws -> HTTPClientResponse {
        try await client(shapedByWorkspace: shapedByWorkspace).execute(request, deadline: deadline)
    }
}
