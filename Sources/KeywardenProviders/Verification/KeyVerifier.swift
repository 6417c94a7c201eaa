import AsyncHTTPClient
import Foundation
import KeywardenCore
import Logging
import NIOCore
import NIOHTTP1

/// Makes a provider's cheap, read-only verification call with a key and classifies the answer.
public struct KeyVerifier: Sendable {
    let clients: OutboundClients
    /// The whole call's deadline; a vendor slower than this is `unreachable`.
    public let timeout: TimeAmount
    /// The most of a vendor's answer read (model listings are small; anything bigger is cut).
    static let maximumBody = 4 * 1024 * 1024

    public init(clients: OutboundClients, timeout: TimeAmount = .seconds(10)) {
        self.clients = clients
        self.timeout = timeout
    }

    public init(client: HTTPClient, timeout: TimeAmount = .seconds(10)) {
        self.init(clients: OutboundClients(only: client), timeout: timeout)
    }

    /// Tests a key: one call, then a status with the vendor's message.
    ///
    /// - Parameter forWorkspace: whether the key is a workspace's: a target its fields shaped goes through the egress guard.
    public func verify(provider: ProviderDefinition, credentials: VendorCredentials, defaultModel: String?, forWorkspace: Bool = false,
                       logger: Logger) async -> VerificationResult {
        let started = ContinuousClock.now
        let request: VendorRequest
        do {
            request = try VendorRequestBuilder.verification(for: provider, credentials: credentials)
        } catch {
            return VerificationResult(status: .unverified, message: error.message)
        }
        let scrubber = SecretScrubber(secrets: request.secrets)
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for header in request.headers { outgoing.headers.add(name: header.name, value: header.value) }
        if request.method == "POST" { outgoing.body = .bytes(ByteBuffer()) }

        do {
            let shapedByWorkspace = forWorkspace && request.hostFromFields
            if shapedByWorkspace, let refusal = await clients.refusal(forGuardedURL: request.url) {
                return VerificationResult(status: .unreachable,
                    message: "The endpoint points at \(refusal.explanation); Keywarden may not call it for a workspace.",
                    latencyMilliseconds: Self.milliseconds(since: started))
            }
            let client = clients.client(shapedByWorkspace: shapedByWorkspace)
            let response = try await client.execute(outgoing, timeout: timeout, logger: logger)
            // Read up to the limit and the call's deadline, then stop: a vendor that never ends its body does not hold the Test.
            var data = Data()
            let deadline = started + .nanoseconds(timeout.nanoseconds)
            for try await chunk in response.body {
                data.append(contentsOf: chunk.readableBytesView.prefix(Self.maximumBody - data.count))
                if data.count >= Self.maximumBody || ContinuousClock.now > deadline { break }
            }
            let latency = Self.milliseconds(since: started)
            let status = Int(response.status.code)
            let classification = ResponseClassifier.classify(
                httpStatus: status, body: data, retryAfterHeader: response.headers.first(name: "retry-after"), scrubber: scrubber
            )
            var (classified, message, retryAfter) = (classification.status, classification.message, classification.retryAfterSeconds)
            var models: Int?
            if classified == .valid {
                let listing = ModelListing.parse(data)
                models = listing?.ids.count
                if let defaultModel, let listing, listing.complete, !listing.ids.isEmpty, !listing.contains(defaultModel) {
                    classified = .modelNotFound
                    message = "The key works, but the default model '\(defaultModel)' is not among the \(listing.ids.count) models it can use."
                } else if let models {
                    message = "The key works (\(models) models available)."
                }
            }
            return VerificationResult(status: classified, message: message, latencyMilliseconds: latency, modelsAvailable: models, retryAfter: retryAfter, httpStatus: status)
        } catch {
            return VerificationResult(status: .unreachable, message: Self.describe(error, timeout: timeout), latencyMilliseconds: Self.milliseconds(since: started))
        }
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> Int {
        let elapsed = ContinuousClock.now - start
        return Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
    }

    /// A transport failure in words an operator can act on (never with the URL's query, which may hold a key).
    static func describe(_ error: any Error, timeout: TimeAmount) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout:
                return "The vendor did not answer within \(timeout.nanoseconds / 1_000_000_000) s."
            case .remoteConnectionClosed:
                return "The vendor closed the connection before answering."
            default:
                break
            }
        }
        let text = String(describing: error)
        if text.contains("Connection refused") || text.contains("connectionRefused") { return "The connection was refused: nothing listens at the base URL." }
        if text.lowercased().contains("dns") || text.contains("lookup") || text.contains("resolve") { return "The vendor's host name could not be resolved." }
        if text.contains("SSL") || text.contains("TLS") || text.contains("certificate") || text.contains("handshake") { return "The TLS handshake with the vendor failed (certificate or protocol)." }
        if text.contains("timeout") || text.contains("Timeout") { return "The vendor did not answer within \(timeout.nanoseconds / 1_000_000_000) s." }
        return "The vendor could not be reached."
    }
}

/// The model ids a listing call returned, from the shapes vendors use.
struct ModelListing {
    let ids: [String]
    /// False when the vendor said there are more pages (a missing model may be on another page).
    let complete: Bool

    func contains(_ model: String) -> Bool {
        ids.contains(model) || ids.contains("models/\(model)") || ids.contains { $0.hasSuffix("/\(model)") }
    }

    static func parse(_ body: Data) -> ModelListing? {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return nil }
        let list = (object["data"] as? [[String: Any]]) ?? (object["models"] as? [[String: Any]])
        guard let list else { return nil }
        let ids = list.compactMap { ($0["id"] as? String) ?? ($0["name"] as? String) ?? ($0["model"] as? String) }
        let more = (object["has_more"] as? Bool) == true || (object["nextPageToken"] as? String).map { !$0.isEmpty } == true
        return ModelListing(ids: ids, complete: !more)
    }
}
