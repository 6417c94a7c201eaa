import AsyncHTTPClient
import Foundation
import Synchronization
import KeywardenCore
import KeywardenProviders
import NIOCore

/// One call the platform sends through the gateway, as the server received it.
public struct GatewayCall: Sendable {
    /// Which face the call came through.
    public enum Face: Sendable, Equatable {
        /// `/{provider}/…`: the vendor's own API, path and body untouched.
        case native(providerID: String)
        /// `/v1/chat/completions`: OpenAI-shaped, routed by model (or `X-Keywarden-Provider`), translated for a key whose
        /// vendor speaks another dialect.
        case chatCompletions(providerID: String?)
        /// `/v1/messages`: Anthropic-shaped, routed and translated as ``chatCompletions(providerID:)`` is.
        case messages(providerID: String?)
        /// `/v1/responses`: OpenAI's Responses API, routed and translated as ``chatCompletions(providerID:)`` is.
        case responses(providerID: String?)

        /// The chat shape the caller speaks on a unified face (`nil` on the native face).
        public var callerShape: ChatShape? {
            switch self {
            case .native: return nil
            case .chatCompletions: return .openAIChat
            case .messages: return .anthropicMessages
            case .responses: return .openAIResponses
            }
        }

        /// The provider named in `X-Keywarden-Provider` on a unified face.
        public var namedProvider: String? {
            switch self {
            case .native: return nil
            case .chatCompletions(let id), .messages(let id), .responses(let id): return id
            }
        }
    }

    public var face: Face
    public var method: String
    /// The vendor path with its query (`/v1/chat/completions`, `/v1beta/models/x:generateContent?alt=sse`).
    public var pathAndQuery: String
    /// The caller's headers as they came (the gateway decides which travel on: ``Gateway/forwardedRequestHeaders(_:owned:)``).
    public var headers: [(name: String, value: String)]
    public var body: GatewayRequestBody
    public var workspaceID: String?
    public var consumer: String?
    /// `nil` to infer it from the path.
    public var modality: Modality?
    /// Where the caller reaches this face (`http://keywarden:8080/gemini`): an absolute URL the vendor hands out under
    /// its own base (a resumable upload's session, a redirect) is rewritten under it, so the next leg passes through
    /// Keywarden too. `nil`: such URLs go back as the vendor sent them.
    public var faceURL: String?
    /// When the server began on the call (before its token was checked), moved later by the time the client took to
    /// upload a collected body: Keywarden's own time is counted from here.
    public var receivedAt: ContinuousClock.Instant

    public init(face: Face, method: String, pathAndQuery: String, headers: [(name: String, value: String)], body: GatewayRequestBody,
                workspaceID: String?, consumer: String?, modality: Modality?, receivedAt: ContinuousClock.Instant = .now, faceURL: String? = nil) {
        self.receivedAt = receivedAt
        self.faceURL = faceURL
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

extension GatewayCall: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The call without its header values: they carry the caller's Keywarden token.
    public var description: String {
        "GatewayCall(\(face), \(method) \(EndpointRule.plainPath(pathAndQuery).map(String.init) ?? "?"), workspace: \(workspaceID ?? "-"), headers: \(headers.map(\.name)))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror { Mirror(self, children: ["description": description]) }
}

/// A request body: kept whole (so another key can be tried), or streamed once to the first key.
public enum GatewayRequestBody: Sendable {
    /// How the server takes in a request body.
    public enum Plan: Sendable, Equatable {
        /// No body (GET, HEAD, `Content-Length: 0`).
        case empty
        /// Collect up to the replay limit (a larger body without `Content-Length` is refused: `body_too_large`).
        case collect(upTo: Int)
        /// Larger than the replay limit: streamed once, to the first key, without failover.
        case streamOnce(length: Int)
    }

    /// How a body with this method, declared length and content type is taken in, given the replay limit.
    ///
    /// A body that may be JSON to a vendor (any type but the binary ones: ``isBinary(contentType:)``) is kept whole up to
    /// ``readLimit`` even past the replay limit: a call the platform pays for is sent only once its body was read.
    public static func plan(method: String, declaredLength: Int?, replayLimit: Int, contentType: String? = nil) -> Plan {
        if method == "GET" || method == "HEAD" || declaredLength == 0 { return .empty }
        // A form upload is kept whole up to the read limit too: its `model` field is read for metering.
        let limit = isBinary(contentType: contentType) && !MultipartForm.isForm(contentType) ? replayLimit : max(replayLimit, readLimit)
        if let declaredLength, declaredLength > limit { return .streamOnce(length: declaredLength) }
        return .collect(upTo: limit)
    }

    /// The largest body that may be JSON kept whole to be read (32 MiB).
    public static let readLimit = 32 * 1024 * 1024

    /// Whether a content type says the body is not JSON to any vendor: a form upload, sound, a picture, a film.
    public static func isBinary(contentType: String?) -> Bool {
        guard let type = contentType else { return false }
        // `image/json` or `audio/x+json` says JSON as loudly as it says media.
        guard !ASCIIText.contains("json", ignoringCaseIn: type) else { return false }
        return mediaPrefixes.contains { ASCIIText.hasPrefix($0, ignoringCaseAfterBlanks: type) }
    }

    /// The type families ``isBinary(contentType:)`` takes for media.
    private static let mediaPrefixes: [StaticString] = ["multipart/", "audio/", "image/", "video/"]

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
    /// Whether the usage-only event the gateway asked for (on the caller's behalf) is kept from the caller.
    var hidesUsageOnlyEvents = false
    /// Removes the call's secrets from what passes (`nil`: none was sent).
    let scrubber: SecretScrubber?
    /// Translates the vendor's events into the caller's shape, after they are metered and scrubbed (`nil`: they pass).
    let translator: ChatStreamTranslator?
    let completion: Completion

    init(body: HTTPClientResponse.Body, contentType: String?, hidesUsageOnlyEvents: Bool = false, scrubber: SecretScrubber? = nil,
         translator: ChatStreamTranslator? = nil, finish: @escaping @Sendable (_ reader: UsageReaderResult, _ error: (any Error)?) -> Void) {
        self.translator = translator
        self.body = body
        self.contentType = contentType
        self.hidesUsageOnlyEvents = hidesUsageOnlyEvents
        self.scrubber = scrubber
        completion = Completion(finish)
    }

    /// Meters the call once: when the stream ends or fails, or — when the server never sends the body (the client
    /// left while the vendor was answering) — when the last copy of the stream is released.
    final class Completion: Sendable {
        private let action: @Sendable (_ reader: UsageReaderResult, _ error: (any Error)?) -> Void
        private let done = Mutex(false)

        init(_ action: @escaping @Sendable (_ reader: UsageReaderResult, _ error: (any Error)?) -> Void) { self.action = action }

        func callAsFunction(_ result: UsageReaderResult, _ error: (any Error)?) {
            guard done.withLock({ done in defer { done = true }; return !done }) else { return }
            action(result, error)
        }

        deinit {
            if !done.withLock({ $0 }) { action(UsageReaderResult(counts: UsageCounts(), model: nil), CancellationError()) }
        }
    }

    func finish(_ result: UsageReaderResult, _ error: (any Error)?) { completion(result, error) }

    /// A whole body read as ``pump`` reads a stream of it: what the caller receives (usage-only events left out when
    /// asked) and what the usage reader found.
    static func passWhole(_ body: ByteBuffer, contentType: String?, hidesUsageOnlyEvents: Bool,
                          scrubber: SecretScrubber? = nil) -> (bytes: ByteBuffer, result: UsageReaderResult) {
        var reader = UsageReader(contentType: contentType)
        reader.feed(body.readableBytesView)
        reader.finish()
        let result = UsageReaderResult(counts: reader.counts, model: Self.acceptedModel(reader.model, scrubber: scrubber))
        var bytes = body
        if hidesUsageOnlyEvents {
            var filter = UsageEventFilter()
            var passed = filter.pass(body.readableBytesView)
            passed += filter.finish()
            bytes = ByteBuffer(bytes: passed)
        }
        if let scrubbed = scrubber?.scrubbedIfNeeded(bytes.readableBytesView) { bytes = ByteBuffer(bytes: scrubbed) }
        return (bytes, result)
    }

    /// The model an answer names, as the usage row may record it: visible ASCII of at most 256 bytes, holding no secret
    /// of the call (a hostile vendor's `model` would otherwise reach the usage export); `nil` otherwise.
    static func acceptedModel(_ model: String?, scrubber: SecretScrubber?) -> String? {
        guard let model, Gateway.isHeaderSafe(model) else { return nil }
        guard let scrubber else { return model }
        return scrubber.scrub(model) == model ? model : nil
    }

    /// A stream that is text but arrives as UTF-16 or UTF-32: it cannot be scrubbed, and ends before its first part.
    struct WideText: Error {}

    /// Sends every chunk to `write` as it arrives; meters the call when the stream ends or fails.
    public func pump(_ write: (ByteBuffer) async throws -> Void) async throws {
        var reader = UsageReader(contentType: contentType)
        var firstPart = contentType.map { Gateway.isText($0) } ?? false
        var filter = hidesUsageOnlyEvents ? UsageEventFilter() : nil
        var scrubbing = scrubber?.stream()
        var translating = translator
        // A translation writes new text from what it read (pieces joined, escapes decoded, a signature re-encoded into an
        // id): what it writes is scrubbed again, so no piece the first scrub let pass alone leaves joined.
        var rescrubbing = translator == nil ? nil : scrubber?.stream()
        /// Writes translated bytes through the second scrub.
        func writeTranslated(_ bytes: [UInt8]) async throws {
            guard !bytes.isEmpty else { return }
            guard rescrubbing != nil else { return try await write(ByteBuffer(bytes: bytes)) }
            switch rescrubbing?.feed(bytes) {
            case .prefix(let count)? where count > 0: try await write(ByteBuffer(bytes: bytes[..<count]))
            case .bytes(let cleaned)? where !cleaned.isEmpty: try await write(ByteBuffer(bytes: cleaned))
            default: break
            }
        }
        /// Passes scrubbed bytes on, translated when the caller speaks another shape.
        func emit(_ chunk: ByteBuffer) async throws {
            guard translating != nil else { return try await write(chunk) }
            try await writeTranslated(translating?.feed(chunk.readableBytesView) ?? [])
        }
        /// Passes bytes on through the scrubber.
        func pass(_ chunk: ByteBuffer) async throws {
            guard scrubbing != nil else {
                if chunk.readableBytes > 0 { try await emit(chunk) }
                return
            }
            switch scrubbing?.feed(chunk.readableBytesView) {
            case .prefix(let count)? where count > 0:
                try await emit(chunk.getSlice(at: chunk.readerIndex, length: count) ?? chunk)
            case .bytes(let bytes)? where !bytes.isEmpty:
                try await emit(ByteBuffer(bytes: bytes))
            default:
                break
            }
        }
        do {
            for try await chunk in body {
                if firstPart, chunk.readableBytes > 0 {
                    firstPart = false
                    if RequestBodyCheck.isWideText(chunk.readableBytesView) { throw WideText() }
                }
                reader.feed(chunk.readableBytesView)
                if filter == nil {
                    try await pass(chunk)
                } else if let passed = filter?.pass(chunk.readableBytesView), !passed.isEmpty {
                    try await pass(ByteBuffer(bytes: passed))
                }
            }
            if let rest = filter?.finish(), !rest.isEmpty { try await pass(ByteBuffer(bytes: rest)) }
            if let rest = scrubbing?.finish(), !rest.isEmpty { try await emit(ByteBuffer(bytes: rest)) }
            if let rest = translating?.finish() { try await writeTranslated(rest) }
            if let rest = rescrubbing?.finish(), !rest.isEmpty { try await write(ByteBuffer(bytes: rest)) }
            reader.finish()
            finish(UsageReaderResult(counts: reader.counts, model: Self.acceptedModel(reader.model, scrubber: scrubber)), nil)
        } catch {
            finish(UsageReaderResult(counts: reader.counts, model: Self.acceptedModel(reader.model, scrubber: scrubber)), error)
            throw error
        }
    }
}

/// What a usage reader found in a body.
struct UsageReaderResult: Sendable {
    var counts: UsageCounts
    var model: String?
}
