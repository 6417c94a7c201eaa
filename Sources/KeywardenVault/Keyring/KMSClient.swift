import AsyncHTTPClient
import Foundation
import KeywardenCore
import Logging
import Synchronization

/// A client of the AWS KMS JSON API (Encrypt, Decrypt, GenerateDataKey, DescribeKey) for one key, signed with SigV4.
///
/// Every call has a deadline (``KMSConfiguration/timeout``, from sending to the answer's last byte) and reads at most
/// ``KMSConfiguration/maxAnswerBytes``; every failure is a ``KMSError``. Plaintexts and data keys go in and out as
/// ``Secret``s; no error, description or log line carries one, nor the secret access key (a vendor message that echoes
/// what was sent is cleaned of it).
///
/// The `HTTPClient` is the caller's: passed in, possibly shared, and shut down by its owner after the last call. With
/// AsyncHTTPClient's default `retryConnectionEstablishment`, an endpoint that refuses connections is reported as
/// ``KMSError/unreachable(reason:)`` when the deadline comes (the pool retries until then); turn it off to fail at once.
public struct KMSClient: Sendable {
    /// The key, region, endpoint, credentials, deadline and bound of every call.
    public let configuration: KMSConfiguration
    private let httpClient: HTTPClient
    private let logger: Logger
    private let signer: SigV4Signer

    /// A client of `configuration`'s key over `httpClient` (owned by the caller), logging each call's outcome to
    /// `logger` (debug on success, notice on failure: the operation, key, status and error code, never a body).
    public init(configuration: KMSConfiguration, httpClient: HTTPClient,
                logger: Logger = Logger(label: "keywarden.kms", factory: { _ in SwiftLogNoOpLogHandler() })) {
        self.configuration = configuration
        self.httpClient = httpClient
        self.logger = logger
        self.signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region, service: "kms")
    }

    // MARK: - Operations

    /// Encrypts `plaintext` (at most 4096 bytes) under the key, bound to `context`; returns the ciphertext blob.
    public func encrypt(_ plaintext: Secret, context: [String: String] = [:]) async throws(KMSError) -> [UInt8] {
        guard plaintext.byteCount > 0, plaintext.byteCount <= 4096 else {
            throw .configuration(setting: "plaintext", problem: "must be 1 to 4096 bytes (it is \(plaintext.byteCount))")
        }
        let encoded = plaintext.withPlaintext { Data($0).base64EncodedString() }
        let request = EncryptRequest(KeyId: configuration.keyID, Plaintext: encoded, EncryptionContext: context.isEmpty ? nil : context)
        let answer: BlobAnswer = try await call(.encrypt, request, redacting: [encoded, plaintext.unprotectedString])
        return try Self.decodeBase64(answer.CiphertextBlob, field: "CiphertextBlob")
    }

    /// Decrypts `ciphertext` with the key, under the `context` it was encrypted with.
    ///
    /// A ciphertext of another key, another context or tampered bytes is ``KMSError/invalidCiphertext(_:)``. With
    /// `expectedByteCount`, a plaintext of another length is a ``KMSError/malformedAnswer(detail:)``.
    public func decrypt(_ ciphertext: [UInt8], context: [String: String] = [:], expectedByteCount: Int? = nil) async throws(KMSError) -> Secret {
        guard !ciphertext.isEmpty, ciphertext.count <= 6144 else {
            throw .configuration(setting: "ciphertext", problem: "must be 1 to 6144 bytes (it is \(ciphertext.count))")
        }
        let request = DecryptRequest(KeyId: configuration.keyID, CiphertextBlob: Data(ciphertext).base64EncodedString(),
                                     EncryptionContext: context.isEmpty ? nil : context)
        let answer: PlaintextAnswer = try await call(.decrypt, request, redacting: [])
        let plaintext = try Self.decodeBase64(answer.Plaintext, field: "Plaintext")
        if let expectedByteCount, plaintext.count != expectedByteCount {
            throw .malformedAnswer(detail: "Decrypt's plaintext is \(plaintext.count) bytes, not the \(expectedByteCount) expected")
        }
        return Secret(bytes: plaintext)
    }

    /// A new 256-bit data key (`AES_256`) from the KMS: in the clear, and encrypted under the key bound to `context`.
    public func generateDataKey(context: [String: String] = [:]) async throws(KMSError) -> KMSDataKey {
        let request = GenerateDataKeyRequest(KeyId: configuration.keyID, KeySpec: "AES_256", EncryptionContext: context.isEmpty ? nil : context)
        let answer: DataKeyAnswer = try await call(.generateDataKey, request, redacting: [])
        let plaintext = try Self.decodeBase64(answer.Plaintext, field: "Plaintext")
        guard plaintext.count == KMSDataKey.byteCount else {
            throw .malformedAnswer(detail: "GenerateDataKey's plaintext is \(plaintext.count) bytes, not \(KMSDataKey.byteCount)")
        }
        let ciphertext = try Self.decodeBase64(answer.CiphertextBlob, field: "CiphertextBlob")
        return KMSDataKey(plaintext: Secret(bytes: plaintext), ciphertext: ciphertext, keyID: answer.KeyId ?? configuration.keyID)
    }

    /// The key's id, ARN, state and usage; `keyID` nil means the configured key.
    public func describeKey(_ keyID: String? = nil) async throws(KMSError) -> KMSKeyDescription {
        let answer: DescribeKeyAnswer = try await call(.describeKey, KeyRequest(KeyId: keyID ?? configuration.keyID), redacting: [])
        guard let metadata = answer.KeyMetadata, let id = metadata.KeyId, !id.isEmpty else {
            throw .malformedAnswer(detail: "DescribeKey's answer has no KeyMetadata.KeyId")
        }
        return KMSKeyDescription(keyID: id, arn: metadata.Arn ?? "", state: metadata.KeyState ?? "", enabled: metadata.Enabled ?? false,
                                 usage: metadata.KeyUsage ?? "", spec: metadata.KeySpec ?? metadata.CustomerMasterKeySpec ?? "")
    }

    // MARK: - The exchange

    /// The API's operations, named as `X-Amz-Target` names them.
    enum Operation: String, Sendable {
        case encrypt = "Encrypt"
        case decrypt = "Decrypt"
        case generateDataKey = "GenerateDataKey"
        case describeKey = "DescribeKey"
    }

    /// Sends `request` as `operation`, waits for the answer within the deadline, and decodes a 200's body as `Answer`.
    /// `secrets` (what the request carries that is secret) are cleaned out of any vendor message.
    func call<Request: Encodable, Answer: Decodable>(_ operation: Operation, _ request: Request, redacting secrets: [String])
        async throws(KMSError) -> Answer {
        let started = ContinuousClock.now
        var metadata: Logger.Metadata = ["kms_operation": "\(operation.rawValue)", "kms_key": "\(configuration.keyID)"]
        do throws(KMSError) {
            let body: [UInt8]
            do {
                // Slashes unescaped: a base64 plaintext is sent as it is, so a vendor message echoing it is cleaned of it.
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.withoutEscapingSlashes]
                body = Array(try encoder.encode(request))
            } catch {
                throw KMSError.configuration(setting: operation.rawValue, problem: "could not be encoded as JSON")
            }
            let answer = try await exchange(operation, body: body)
            metadata["kms_status"] = "\(answer.status)"
            guard answer.status == 200 else {
                let redactions = secrets + [configuration.credentials.secretAccessKey.unprotectedString]
                    + (configuration.credentials.sessionToken.map { [$0.unprotectedString] } ?? [])
                throw KMSVendorError.classify(status: answer.status, errorType: answer.errorType, body: answer.body, redacting: redactions)
            }
            let decoded: Answer
            do {
                decoded = try JSONDecoder().decode(Answer.self, from: Data(answer.body))
            } catch {
                throw KMSError.malformedAnswer(detail: "\(operation.rawValue)'s answer is not the JSON object expected (\(answer.body.count) bytes)")
            }
            metadata["kms_elapsed_ms"] = "\(Self.milliseconds(ContinuousClock.now - started))"
            logger.debug("kms: call done", metadata: metadata)
            return decoded
        } catch {
            metadata["kms_error"] = "\(error.code)"
            metadata["kms_elapsed_ms"] = "\(Self.milliseconds(ContinuousClock.now - started))"
            logger.notice("kms: call failed", metadata: metadata)
            throw error
        }
    }

    /// An answer's status and body (at most the bound), before decoding.
    struct RawAnswer: Sendable {
        let status: Int
        /// `X-Amzn-ErrorType`, which names the error when the body does not.
        let errorType: String?
        let body: [UInt8]
    }

    /// How the exchange ended, before the deadline's verdict.
    enum ExchangeFailure: Error {
        /// No answer head came: the connection failed, or the call was cancelled.
        case beforeHead(any Error)
        /// The head came, the body did not arrive whole.
        case duringBody(any Error)
        /// The body is over the bound.
        case tooLarge(Int)
    }

    /// The request signed and sent, its answer read, all within the deadline.
    ///
    /// Until the answer's head, AsyncHTTPClient's own deadline bounds the call: it reports the last connection error
    /// (refused, DNS) when no connection was ever made, which is ``KMSError/unreachable(reason:)``, not a slow KMS.
    /// From the head on, a timer of ours cancels the reading at the deadline; a second later it also stops a call
    /// AsyncHTTPClient did not end.
    func exchange(_ operation: Operation, body: [UInt8]) async throws(KMSError) -> RawAnswer {
        let timeout = configuration.timeout
        let deadline = ContinuousClock.now + timeout
        let limit = configuration.maxAnswerBytes
        let request = signedRequest(operation, body: body)
        let client = httpClient, logger = logger
        let progress = HeadArrival()
        let outcome: Result<RawAnswer, KMSError> = await withTaskGroup(of: Result<RawAnswer, any Error>?.self) { group in
            group.addTask {
                do {
                    return .success(try await Self.send(request, client: client, timeout: timeout, limit: limit, progress: progress, logger: logger))
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                // The deadline: nil when it passes first; cancelled (and ignored) when the exchange ends first.
                try? await Task.sleep(until: deadline, clock: .continuous)
                if !Task.isCancelled, !progress.headReceived { try? await Task.sleep(until: deadline + .seconds(1), clock: .continuous) }
                return Task.isCancelled ? .failure(CancellationError()) : nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            guard let first else {
                // The deadline passed: the exchange, cancelled, says whether a connection was ever made.
                let late = await group.next() ?? nil
                if case .failure(ExchangeFailure.beforeHead(let error))? = late, !Self.isCancellation(error) {
                    return .failure(.unreachable(reason: Self.describe(error)))
                }
                return .failure(.deadlineExceeded(after: timeout))
            }
            if case .failure(let error) = first, error is CancellationError {
                // The caller cancelled: the deadline's sleep ended early.
                return .failure(.cancelled)
            }
            return first.mapError { Self.classify($0, timeout: timeout) }
        }
        return try outcome.get()
    }

    /// Whether the answer's head has come (from then on the deadline is our timer's, not AsyncHTTPClient's).
    final class HeadArrival: Sendable {
        private let head = Mutex(false)
        var headReceived: Bool { head.withLock { $0 } }
        func receivedHead() { head.withLock { $0 = true } }
    }

    /// The request with its signature: `POST /` to the endpoint, the JSON body, `X-Amz-Target`, signed for `kms`.
    func signedRequest(_ operation: Operation, body: [UInt8], at date: Date = Date()) -> HTTPClientRequest {
        let endpoint = configuration.endpoint
        let scheme = endpoint.scheme?.lowercased() ?? "https"
        var host = endpoint.host ?? ""
        if host.contains(":") { host = "[\(host)]" }
        if let port = endpoint.port, !(scheme == "https" && port == 443), !(scheme == "http" && port == 80) {
            host += ":\(port)"
        }
        let headers = [("host", host), ("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "TrentService.\(operation.rawValue)")]
        let signature = signer.sign(method: "POST", path: "/", headers: headers, body: body, at: date)
        var request = HTTPClientRequest(url: "\(scheme)://\(host)/")
        request.method = .POST
        for (name, value) in headers + signature { request.headers.add(name: name, value: value) }
        request.headers.add(name: "accept", value: "application/json")
        request.body = .bytes(body)
        return request
    }

    /// Sends the request and reads the answer, stopping at the bound.
    static func send(_ request: HTTPClientRequest, client: HTTPClient, timeout: Duration, limit: Int, progress: HeadArrival,
                     logger: Logger) async throws -> RawAnswer {
        let response: HTTPClientResponse
        do {
            let (seconds, attoseconds) = timeout.components
            response = try await client.execute(request, timeout: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000), logger: logger)
        } catch {
            throw ExchangeFailure.beforeHead(error)
        }
        progress.receivedHead()
        if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > limit {
            throw ExchangeFailure.tooLarge(length)
        }
        var body: [UInt8] = []
        do {
            for try await chunk in response.body {
                guard body.count + chunk.readableBytes <= limit else { throw ExchangeFailure.tooLarge(body.count + chunk.readableBytes) }
                body.append(contentsOf: chunk.readableBytesView)
            }
        } catch let failure as ExchangeFailure {
            throw failure
        } catch {
            throw ExchangeFailure.duringBody(error)
        }
        return RawAnswer(status: Int(response.status.code), errorType: response.headers.first(name: "x-amzn-errortype"), body: body)
    }

    /// The ``KMSError`` an exchange's failure stands for.
    static func classify(_ error: any Error, timeout: Duration) -> KMSError {
        switch error {
        case let error as KMSError:
            return error
        case ExchangeFailure.tooLarge(let count):
            return .malformedAnswer(detail: "the answer is over the bound (at least \(count) bytes)")
        case ExchangeFailure.beforeHead(let cause):
            if let http = cause as? HTTPClientError, http == .deadlineExceeded { return .deadlineExceeded(after: timeout) }
            if isCancellation(cause) { return .cancelled }
            return .unreachable(reason: describe(cause))
        case ExchangeFailure.duringBody(let cause):
            if isCancellation(cause) { return .cancelled }
            return .unreachable(reason: "the connection failed while the answer was read: \(describe(cause))")
        default:
            return .unreachable(reason: describe(error))
        }
    }

    static func isCancellation(_ error: any Error) -> Bool {
        if error is CancellationError { return true }
        if let http = error as? HTTPClientError { return http == .cancelled || http == .deadlineExceeded }
        return false
    }

    /// A transport error in one line of at most 300 characters (these never carry a request's body or headers).
    static func describe(_ error: any Error) -> String {
        KMSVendorError.clean(String(describing: error), limit: KMSVendorError.messageLimit, redacting: [])
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    static func decodeBase64(_ text: String?, field: String) throws(KMSError) -> [UInt8] {
        guard let text else { throw .malformedAnswer(detail: "the answer has no \(field)") }
        guard let data = Data(base64Encoded: text) else { throw .malformedAnswer(detail: "the answer's \(field) is not base64") }
        return Array(data)
    }

    // MARK: - Wire shapes (the API's own field names)

    struct KeyRequest: Encodable {
        let KeyId: String
    }

    struct EncryptRequest: Encodable {
        let KeyId: String
        let Plaintext: String
        let EncryptionContext: [String: String]?
    }

    struct DecryptRequest: Encodable {
        let KeyId: String
        let CiphertextBlob: String
        let EncryptionContext: [String: String]?
    }

    struct GenerateDataKeyRequest: Encodable {
        let KeyId: String
        let KeySpec: String
        let EncryptionContext: [String: String]?
    }

    struct BlobAnswer: Decodable {
        let CiphertextBlob: String?
        let KeyId: String?
    }

    struct PlaintextAnswer: Decodable {
        let Plaintext: String?
        let KeyId: String?
    }

    struct DataKeyAnswer: Decodable {
        let Plaintext: String?
        let CiphertextBlob: String?
        let KeyId: String?
    }

    struct DescribeKeyAnswer: Decodable {
        struct Metadata: Decodable {
            let KeyId: String?
            let Arn: String?
            let KeyState: String?
            let Enabled: Bool?
            let KeyUsage: String?
            let KeySpec: String?
            let CustomerMasterKeySpec: String?
        }

        let KeyMetadata: Metadata?
    }
}

/// A data key from GenerateDataKey: the 32 bytes in the clear (a ``Secret``) and encrypted under the KMS key.
///
/// Its description shows the key and the ciphertext's length only.
public struct KMSDataKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// An `AES_256` key's length.
    public static let byteCount = 32

    /// The data key itself: use it, then let it go; never store it.
    public let plaintext: Secret
    /// The data key encrypted under the KMS key (store this; Decrypt gives the plaintext back).
    public let ciphertext: [UInt8]
    /// The ARN of the KMS key that encrypted it.
    public let keyID: String

    public var description: String { "KMSDataKey(key: \(keyID), ciphertext: \(ciphertext.count) bytes, plaintext: \(Secret.redacted))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["keyID": keyID], displayStyle: .struct) }
}

/// What DescribeKey says of a key.
public struct KMSKeyDescription: Sendable, Equatable {
    /// The key's id (a UUID), whatever name it was asked by.
    public let keyID: String
    /// The key's ARN (empty if the answer had none).
    public let arn: String
    /// `Enabled`, `Disabled`, `PendingDeletion`, …
    public let state: String
    /// Whether the key is enabled.
    public let enabled: Bool
    /// `ENCRYPT_DECRYPT` for a key that wraps.
    public let usage: String
    /// `SYMMETRIC_DEFAULT` for an AES key.
    public let spec: String
}
