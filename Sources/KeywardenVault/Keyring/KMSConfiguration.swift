import Foundation
import KeywardenCore

/// Where the AWS KMS key is and how to call it: key, region, endpoint, credentials, deadline and answer bound.
///
/// Its description shows the key, region and endpoint; the credentials' secret parts are ``Secret``s and never shown.
public struct KMSConfiguration: Sendable, CustomStringConvertible {
    /// The key: an id, an ARN, an alias (`alias/…`) or an alias ARN.
    public let keyID: String
    /// The AWS region (`eu-west-1`), signed into every request.
    public let region: String
    /// The API's base URL: `https://kms.<region>.amazonaws.com` unless set (a local KMS, a VPC endpoint).
    public let endpoint: URL
    /// The access key id, the secret access key and, for temporary credentials, the session token.
    public let credentials: SigV4Signer.Credentials
    /// How long a call may take, from sending the request to the last byte of the answer.
    public var timeout: Duration
    /// The largest answer body read; a longer one is a malformed answer (KMS answers are a few KiB).
    public var maxAnswerBytes: Int

    /// The deadline of a call unless configured otherwise.
    public static let defaultTimeout: Duration = .seconds(5)
    /// The variable that names the KMS key holding the master key.
    public static let keyIDVariable = "KEYWARDEN_MASTER_KEY_KMS_KEY_ID"
    /// The answer bound unless configured otherwise: 64 KiB.
    public static let defaultMaxAnswerBytes = 65_536

    /// A configuration; `endpoint` nil means AWS's endpoint of the region. Throws when a value cannot be used.
    public init(keyID: String, region: String, endpoint: URL? = nil, credentials: SigV4Signer.Credentials,
                timeout: Duration = defaultTimeout, maxAnswerBytes: Int = defaultMaxAnswerBytes) throws(KMSError) {
        try self.init(keyID: keyID, region: region, endpoint: endpoint, credentials: credentials, timeout: timeout,
                      maxAnswerBytes: maxAnswerBytes, names: Names.parameters)
    }

    /// Reads the standard variables from `environment` (pass `ProcessInfo.processInfo.environment`):
    /// `KEYWARDEN_MASTER_KEY_KMS_KEY_ID`, `KEYWARDEN_MASTER_KEY_KMS_ENDPOINT` (optional), `AWS_REGION` else
    /// `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (optional).
    ///
    /// An empty variable counts as unset. A missing or invalid one throws ``KMSError/configuration(setting:problem:)``
    /// naming it.
    public static func fromEnvironment(_ environment: [String: String]) throws(KMSError) -> KMSConfiguration {
        func value(_ name: String) -> String? { setting(name, in: environment) }
        guard let keyID = value(Names.environment.keyID) else { throw .configuration(setting: Names.environment.keyID, problem: "is not set") }
        guard let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") else {
            throw .configuration(setting: "AWS_REGION (or AWS_DEFAULT_REGION)", problem: "is not set")
        }
        let regionName = value("AWS_REGION") != nil ? "AWS_REGION" : "AWS_DEFAULT_REGION"
        let endpoint = try endpoint(Names.environment.endpoint, in: environment)
        let credentials = try credentials(in: environment, missing: "is not set")
        var names = Names.environment
        names.region = regionName
        return try KMSConfiguration(keyID: keyID, region: region, endpoint: endpoint, credentials: credentials, timeout: defaultTimeout,
                                    maxAnswerBytes: defaultMaxAnswerBytes, names: names)
    }

    /// A variable's text, trimmed; an empty one counts as unset.
    static func setting(_ name: String, in environment: [String: String]) -> String? {
        guard let text = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else { return nil }
        return text
    }

    /// The URL a variable names, `nil` when unset; one that is not a URL throws naming it (its shape is checked where
    /// the configuration is made).
    static func endpoint(_ name: String, in environment: [String: String]) throws(KMSError) -> URL? {
        guard let text = setting(name, in: environment) else { return nil }
        guard let url = URL(string: text) else { throw .configuration(setting: name, problem: "is not a URL") }
        return url
    }

    /// The standard AWS credentials: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, for temporary credentials,
    /// `AWS_SESSION_TOKEN`; a missing one throws naming it, with `missing` as the problem.
    static func credentials(in environment: [String: String], missing: String) throws(KMSError) -> SigV4Signer.Credentials {
        guard let accessKeyID = setting("AWS_ACCESS_KEY_ID", in: environment) else { throw .configuration(setting: "AWS_ACCESS_KEY_ID", problem: missing) }
        guard let secret = setting("AWS_SECRET_ACCESS_KEY", in: environment) else { throw .configuration(setting: "AWS_SECRET_ACCESS_KEY", problem: missing) }
        return SigV4Signer.Credentials(accessKeyID: accessKeyID, secretAccessKey: Secret(secret),
                                       sessionToken: setting("AWS_SESSION_TOKEN", in: environment).map { Secret($0) })
    }

    /// What each setting is called in errors: the environment variable or the parameter.
    struct Names {
        var keyID: String
        var region: String
        var endpoint: String
        var accessKeyID: String

        static let parameters = Names(keyID: "keyID", region: "region", endpoint: "endpoint", accessKeyID: "credentials.accessKeyID")
        static let environment = Names(keyID: keyIDVariable, region: "AWS_REGION",
                                       endpoint: "KEYWARDEN_MASTER_KEY_KMS_ENDPOINT", accessKeyID: "AWS_ACCESS_KEY_ID")
    }

    private init(keyID: String, region: String, endpoint: URL?, credentials: SigV4Signer.Credentials, timeout: Duration,
                 maxAnswerBytes: Int, names: Names) throws(KMSError) {
        guard !keyID.isEmpty, keyID.count <= 2048, keyID.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw .configuration(setting: names.keyID, problem: "must be a key id, a key ARN or an alias (printable ASCII, no spaces)")
        }
        guard !region.isEmpty, region.count <= 64,
              region.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }) else {
            throw .configuration(setting: names.region, problem: "must be an AWS region such as eu-west-1")
        }
        guard !credentials.accessKeyID.isEmpty,
              credentials.accessKeyID.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || ("0"..."9").contains($0) }) else {
            throw .configuration(setting: names.accessKeyID, problem: "must be an access key id (letters and digits)")
        }
        let resolved: URL
        if let endpoint {
            // The API is at `/`: a path, a query or user information is a mistake, not something to send.
            guard let scheme = endpoint.scheme?.lowercased(), scheme == "https" || scheme == "http", let host = endpoint.host, !host.isEmpty,
                  endpoint.path.isEmpty || endpoint.path == "/", endpoint.query == nil, endpoint.fragment == nil, endpoint.user == nil else {
                throw .configuration(setting: names.endpoint,
                                     problem: "must be an http(s) URL of a host (and port) only, such as https://kms.eu-west-1.amazonaws.com")
            }
            // Encrypt and Decrypt carry workspace keys in the clear inside the TLS: plain http only to this machine.
            if scheme == "http", !["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased()) {
                throw .configuration(setting: names.endpoint, problem: "must be https (plain http is accepted for 127.0.0.1 and localhost only)")
            }
            resolved = endpoint
        } else {
            guard let url = URL(string: "https://kms.\(region).amazonaws.com") else {
                throw .configuration(setting: names.region, problem: "does not make a valid endpoint URL")
            }
            resolved = url
        }
        guard timeout > .zero else { throw .configuration(setting: "timeout", problem: "must be positive") }
        guard maxAnswerBytes >= 1024 else { throw .configuration(setting: "maxAnswerBytes", problem: "must be at least 1024") }
        self.keyID = keyID
        self.region = region
        self.endpoint = resolved
        self.credentials = credentials
        self.timeout = timeout
        self.maxAnswerBytes = maxAnswerBytes
    }

    public var description: String {
        "KMS key \(keyID) in \(region) at \(endpoint.absoluteString) (access key \(credentials.accessKeyID))"
    }
}
