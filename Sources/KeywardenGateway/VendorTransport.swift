import AsyncHTTPClient
import KeywardenCore
import KeywardenProviders
import NIOCore
import NIOHTTP1

/// The gateway's connection to the vendors: one request out, its response head (and streamed body) back.
///
/// ``PooledVendorTransport`` is the real one; tests of failover, cooldowns and metering pass a scripted one.
public protocol VendorTransport: Sendable {
    /// Why a request a workspace shaped (its endpoint, its region) to `url` would be refused, or `nil`.
    func refusal(forWorkspaceShapedURL url: String) async -> NetworkTargetPolicy.Refusal?
    /// Sends `request`, through the egress guard when a workspace shaped its target; returns at the response head.
    func execute(_ request: VendorCall, shapedByWorkspace: Bool, deadline: NIODeadline) async throws -> VendorResponse
}

/// One request to a vendor, as the gateway sends it: the key already in its headers.
public struct VendorCall: Sendable {
    public var method: HTTPMethod
    public var url: String
    public var headers: HTTPHeaders
    public var body: GatewayRequestBody

    public init(method: HTTPMethod, url: String, headers: HTTPHeaders = [:], body: GatewayRequestBody = .empty) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    /// The same request for AsyncHTTPClient.
    var clientRequest: HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers = headers
        switch body {
        case .empty: break
        case .complete(let buffer): request.body = .bytes(buffer)
        case .stream(_, let make): request.body = make()
        }
        return request
    }
}

/// The gateway's transport: the catalog's and the operator's vendors over pooled keep-alive connections
/// (``VendorConnectionPool``); a target a workspace shaped (through the egress proxy), a body streamed once, and a
/// URL the pool does not take, through AsyncHTTPClient as before.
public struct PooledVendorTransport: VendorTransport {
    let clients: OutboundClients
    let pool: VendorConnectionPool

    public init(clients: OutboundClients, pool: VendorConnectionPool) {
        self.clients = clients
        self.pool = pool
    }

    public func refusal(forWorkspaceShapedURL url: String) async -> NetworkTargetPolicy.Refusal? {
        await clients.refusal(forGuardedURL: url)
    }

    public func execute(_ request: VendorCall, shapedByWorkspace: Bool, deadline: NIODeadline) async throws -> VendorResponse {
        if !shapedByWorkspace, let url = VendorURL(request.url) {
            switch request.body {
            case .empty:
                return try await pool.execute(method: request.method, url: url, headers: request.headers, body: nil, deadline: deadline)
            case .complete(let buffer):
                return try await pool.execute(method: request.method, url: url, headers: request.headers, body: buffer, deadline: deadline)
            case .stream:
                break
            }
        }
        return VendorResponse(try await clients.client(shapedByWorkspace: shapedByWorkspace).execute(request.clientRequest, deadline: deadline))
    }
}
