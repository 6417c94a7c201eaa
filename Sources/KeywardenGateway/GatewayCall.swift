import AsyncHTTPClient
import KeywardenCore
import KeywardenProviders
import NIOCore

/// One call the platform sends through the gateway, as the server received it.
public struct GatewayCall: Sendable {
    /// Which face the call came through.
    public enum Face: Sendable, Equatable {
        /// `/{provider}/…`: the vendor's own API, path and body untouched.
        case native(providerID: String)
        /// `/v1/chat/completions`: OpenAI-shaped, routed by model (or `X-Keywarden-Provider`).
        case chatCompletions(providerID: String?)
    }

    public var face: Face
    public var method: String
    /// The vendor path with its query (`/v1/chat/completions`, `/v1beta/models/x:generateContent?alt=sse`).
    public var pathAndQuery: String
    /// The caller's headers, minus every header that could carry a credential (the server strips them).
    public var headers: [(name: String, value: String)]
    public var body: GatewayRequestBody
    public var workspaceID: String?
    public var consumer: String?
    /// `nil` to infer it from the path.
    public var modality: Modality?

    public init(face: Face, method: String, pathAndQuery: String, headers: [(name: String, value: String)], body: GatewayRequestBody,
                workspaceID: String?, consumer: String?, modality: Modality?) {
        self.face = face
        self.method = method
        self.pathAndQuery = pathAndQuery
        self.headers = headers
        self.body = body
        self.workspaceID = workspaceID
        self.consumer = consumer
        self.modality = modality
    }
}

/// A request body: kept whole (so another key can be tried), or streamed once to the first key.
public enum GatewayRequestBody: Sendable {
    case empty
    case complete(ByteBuffer)
    /// Larger than the replay limit: made once, for the first attempt only.
    case stream(length: Int?, make: @Sendable () -> HTTPClientRequest.Body)

    var bytes: ByteBuffer? {
        if case .complete(let buffer) = self { return buffer }
        return nil
    }

    var isReplayable: Bool {
        if case .stream = self { return false }
        return true
    }
}

/// What the gateway answers: the vendor's response (streamed) or its own error.
public struct GatewayResponse: Sendable {
    public enum Body: Sendable {
        case complete(ByteBuffer)
        case stream(UpstreamStream)
    }

    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: Body
    /// The vendor's `Content-Length`, when it sent one and the body passes through unchanged.
    public var contentLength: Int?
}

/// A vendor's response body on its way to the client: chunks are passed on as they arrive, and the
/// call is metered when the body ends (or the client goes away).
public struct UpstreamStream: Sendable {
    let body: HTTPClientResponse.Body
    let contentType: String?
    let finish: @Sendable (_ reader: UsageReaderResult, _ error: (any Error)?) -> Void

    /// Sends every chunk to `write` as it arrives; meters the call when the stream ends or fails.
    public func pump(_ write: (ByteBuffer) async throws -> Void) async throws {
        var reader = UsageReader(contentType: contentType)
        do {
            for try await chunk in body {
                reader.feed(chunk.readableBytesView)
                try await write(chunk)
            }
            reader.finish()
            finish(UsageReaderResult(counts: reader.counts, model: reader.model), nil)
        } catch {
            finish(UsageReaderResult(counts: reader.counts, model: reader.model), error)
            throw error
        }
    }
}

/// What a usage reader found in a body.
struct UsageReaderResult: Sendable {
    var counts: UsageCounts
    var model: String?
}
