import AsyncHTTPClient
import Foundation
import KeywardenCore
import KeywardenProviders
import KeywardenVault
import NIOCore
import NIOHTTP1

extension Gateway {
    /// Headers a proxy never forwards (RFC 9110 §7.6.1), plus the ones Keywarden sets or removes itself.
    static let requestHeadersNotForwarded: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length", "accept-encoding", "cookie",
    ]
    static let responseHeadersNotForwarded: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade",
        "content-length", "set-cookie", "openai-organization", "openai-project",
    ]
    /// Headers a vendor SDK may carry its API key in: the Keywarden token arrives in one of them, and none of them is
    /// ever forwarded.
    public static let credentialHeaders: [String] = ["authorization", "x-api-key", "x-goog-api-key", "xi-api-key", "api-key", "ocp-apim-subscription-key"]

    /// The caller's headers that travel to the vendor with a key: never a credential, a Keywarden instruction
    /// (`X-Keywarden-*`), a hop-by-hop header (those the caller's `Connection` names too) or one Keywarden sets itself;
    /// with a shared key, only those a request needs to be read (``sharedKeyForwards(_:)``).
    static func forwardedRequestHeaders(_ headers: [(name: String, value: String)], owned: Bool) -> [(name: String, value: String)] {
        let hopByHop = Set(headers.filter { $0.name.lowercased() == "connection" }
            .flatMap { $0.value.split(separator: ",") }.map { $0.trimmingSpacesAndTabs.lowercased() })
        return headers.filter { header in
            let name = header.name.lowercased()
            return !credentialHeaders.contains(name) && !name.hasPrefix("x-keywarden-") && !requestHeadersNotForwarded.contains(name)
                && !hopByHop.contains(name) && (owned || sharedKeyForwards(name))
        }
    }

    /// The most of a failed attempt's body read (to classify it, and to pass the last one on).
    static let errorBodyLimit = 64 * 1024

    // MARK: Headers and bodies

    /// The vendor's response headers the caller sees; with a shared key, none that describe the platform's account
    /// (its organization, its rate limits).
    static func forwardedHeaders(_ headers: HTTPHeaders, owned: Bool = true) -> [(name: String, value: String)] {
        headers.filter { header in
            let name = header.name.lowercased()
            guard !responseHeadersNotForwarded.contains(name) else { return false }
            return owned || !(sharedKeyResponseHeadersHidden.contains(name) || name.hasPrefix("x-ratelimit-") || name.hasPrefix("anthropic-ratelimit-"))
        }.map { ($0.name, $0.value) }
    }

    /// Response headers a tenant does not see when the platform's key served: they describe the platform's account.
    static let sharedKeyResponseHeadersHidden: Set<String> = [
        "anthropic-organization-id", "openai-organization", "openai-project", "x-organization-id", "server-timing",
    ]

    /// The caller's request headers that travel with a shared key: what a request needs to be read (its type, its
    /// language, an API version, an idempotency key, an SDK's own description), nothing that chooses the account's
    /// organization or project, enables beta features, or overrides the method.
    static func sharedKeyForwards(_ name: String) -> Bool {
        let name = name.lowercased()
        return sharedKeyRequestHeaders.contains(name) || name.hasPrefix("x-stainless-")
    }

    /// The caller's headers that travel with the platform's key. Beta and preview switches (`OpenAI-Beta`,
    /// `anthropic-beta`) do not: they change what the platform's account is billed for.
    static let sharedKeyRequestHeaders: Set<String> = [
        "content-type", "accept", "accept-language", "user-agent", "anthropic-version", "idempotency-key", "x-request-id",
        "x-goog-api-client",
    ]

    /// What the answer says about the key that served: the source always; the key's id only when the caller owns it
    /// (a tenant learns that the platform paid, not which of the platform's keys did).
    /// The model, when known, is the one the call used: the caller's, or the default Keywarden filled in.
    static func keywardenHeaders(_ candidate: Candidate, attempts: Int, owned: Bool, model: String? = nil) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [("X-Keywarden-Source", candidate.source.rawValue)]
        if owned { headers.append(("X-Keywarden-Key", candidate.credentialID)) }
        headers.append(("X-Keywarden-Provider", candidate.providerID))
        if let model, !model.isEmpty, Self.isHeaderSafe(model) { headers.append(("X-Keywarden-Model", model)) }
        headers.append(("X-Keywarden-Attempts", "\(attempts)"))
        return headers
    }

    /// The caller's path and query without a parameter that carries a credential: the provider's own key parameter
    /// (`authParameter`: the key Keywarden injects takes its place) and, under any name, a value that is a Keywarden token
    /// (Gemini's clients may send theirs as `?key=`). Everything else, order and spelling, stays as sent.
    static func strippingCredentials(fromQuery pathAndQuery: String, authParameter: String?) -> String {
        guard let mark = pathAndQuery.firstIndex(of: "?") else { return pathAndQuery }
        let query = pathAndQuery[pathAndQuery.index(after: mark)...]
        let parameters = query.split(separator: "&", omittingEmptySubsequences: false)
        let kept = parameters.filter { parameter in
            let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(pair[0]).removingPercentEncoding ?? String(pair[0])
            if let authParameter, name == authParameter { return false }
            if name == UploadSessionGrant.parameter { return false }
            guard pair.count == 2 else { return true }
            let value = String(pair[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(pair[1])
            return !AccessToken.looksLikeToken(value.trimmingCharacters(in: .whitespaces))
        }
        guard kept.count != parameters.count else { return pathAndQuery }
        let path = pathAndQuery[..<mark]
        return kept.isEmpty ? String(path) : path + "?" + kept.joined(separator: "&")
    }

    /// Answer headers that hand the client a URL to call next (a resumable upload's session, a redirect).
    static let vendorURLHeaders: Set<String> = ["x-goog-upload-url", "location", "content-location"]

    /// `headers` with every URL the vendor handed out under its own `base` rewritten under Keywarden's face
    /// (`faceURL`): the client's next leg (an upload's bytes) passes through Keywarden, with the key injected, instead
    /// of going around it to the vendor. Other URLs, and headers that are no URL, are left as they are.
    ///
    /// An upload session's URL (`X-Goog-Upload-URL` with an `upload_id`) is the vendor's credential for the upload's
    /// later legs, which clients send without a key: `grant` (path, upload id) makes the ``UploadSessionGrant`` the
    /// rewritten URL carries so that Keywarden lets exactly those legs through.
    static func rewritingVendorURLs(_ headers: [(name: String, value: String)], base: String, faceURL: String?,
                                    grant: (_ path: String, _ uploadID: String) -> String? = { _, _ in nil }) -> [(name: String, value: String)] {
        guard let faceURL else { return headers }
        return headers.map { header in
            let name = header.name.lowercased()
            guard vendorURLHeaders.contains(name) else { return header }
            let value = header.value.trimmingCharacters(in: .whitespaces)
            guard value.count >= base.count, value.prefix(base.count).lowercased() == base.lowercased() else { return header }
            let rest = value.dropFirst(base.count)
            guard rest.isEmpty || ["/", "?"].contains(rest.first) else { return header }
            var rewritten = faceURL + rest
            if name == "x-goog-upload-url", let components = URLComponents(string: String(rest)),
               UploadSessionGrant.isUploadPath(components.percentEncodedPath),
               let uploadID = components.queryItems?.first(where: { $0.name == "upload_id" })?.value,
               let signed = grant(components.percentEncodedPath, uploadID) {
                rewritten += (rest.contains("?") ? "&" : "?") + UploadSessionGrant.parameter + "=" + signed
            }
            return (header.name, rewritten)
        }
    }

    /// The grant for an upload session `path` and `uploadID` opened for `workspaceID` on `providerID`, signed.
    func uploadGrant(providerID: String, workspaceID: String?, path: String, uploadID: String) -> String? {
        UploadSessionGrant(providerID: providerID, workspaceID: workspaceID, path: path, uploadID: uploadID,
                           expires: Int(Date().timeIntervalSince1970) + UploadSessionGrant.lifetime).encoded(sign: signUploadGrant)
    }

    /// The upload grant `text` presented for a call to `providerID`'s `path`, when it holds.
    public func verifyUploadGrant(_ text: String, providerID: String, pathAndQuery: String) -> UploadSessionGrant? {
        guard let components = URLComponents(string: pathAndQuery) else { return nil }
        let uploadID = components.queryItems?.first { $0.name == "upload_id" }?.value
        return UploadSessionGrant.verify(text, providerID: providerID, path: components.percentEncodedPath, uploadID: uploadID, sign: signUploadGrant)
    }

    /// Signs with a key derived for upload grants from the vault's fingerprint key (shared by every instance on the
    /// database; never the fingerprints' own HMAC, which the audit log shows for texts a tenant chooses).
    func signUploadGrant(_ text: String) -> String? {
        app.signature(of: text, purpose: "upload-session-grant")
    }

    /// Whether a value (a model a caller named) can go into a header as it is: visible ASCII and spaces, at most 256 bytes.
    static func isHeaderSafe(_ value: String) -> Bool {
        value.utf8.count <= 256 && value.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
    }

    /// The model a caller writes to mean "the key's default model".
    static let defaultModelName = "default"

    /// What the call left out, filled in from the serving key (its default model, its fields, the catalog's fallback):
    /// the plan, and the body to send when members were added (`nil`: the body goes as it is).
    static func planDefaults(for call: GatewayCall, provider: ProviderDefinition, path: String, body: [UInt8]?, facts: RequestFacts,
                             model: String?, extras: [String: Secret]) -> (plan: CallDefaultsPlan, body: [UInt8]?) {
        // The body is read again only when a default could apply to a member the request facts do not already answer for.
        var scanned: JSONBodyEdit?
        var didScan = false
        let plan = provider.planDefaults(method: call.method, pathAndQuery: path, leftOut: { name in
            if name == "model", let sent = facts.model, sent != defaultModelName { return false }
            if !didScan {
                didScan = true
                scanned = body.flatMap(JSONBodyEdit.init)
            }
            return scanned?.leavesOut(name) ?? false
        }, model: model, field: { extras[$0]?.unprotectedString })
        guard !plan.members.isEmpty, let scanned else { return (plan, nil) }
        return (plan, scanned.filled(with: plan.members))
    }

    /// Whether the caller owns a candidate's key: a workspace its own keys, the platform (a call without a workspace) its keys.
    static func owns(_ call: GatewayCall, _ candidate: Candidate) -> Bool {
        candidate.source == .byok || call.workspaceID == nil
    }

    /// Whether a shared key may serve this native call: the catalog's inference endpoints, plus what the operator allowed.
    func sharedKeyAllows(_ provider: ProviderDefinition, method: String, pathAndQuery: String) -> Bool {
        // A WebSocket endpoint (Realtime, stream-input) is inference too.
        EndpointRule.allows(provider.sharedKeyEndpoints + provider.webSocketEndpoints + (settings.sharedKeyEndpoints[provider.id] ?? []), method: method, pathAndQuery: pathAndQuery)
    }

    /// Reads a body up to `limit` bytes and stops there (a hostile vendor's endless error body is not read to its end;
    /// the connection is dropped rather than reused).
    static func collect(_ body: VendorResponse.Body, limit: Int, waited: inout Duration) async -> [UInt8] {
        let started = ContinuousClock.now
        defer { waited += ContinuousClock.now - started }
        let parts: HTTPClientResponse.Body
        switch body {
        case .complete(let buffer): return Array(buffer.readableBytesView.prefix(limit))
        case .stream(let stream): parts = stream
        }
        var bytes: [UInt8] = []
        do {
            for try await chunk in parts {
                bytes.append(contentsOf: chunk.readableBytesView.prefix(limit - bytes.count))
                if bytes.count >= limit { break }
            }
        } catch {}
        return bytes
    }

    /// A vendor's error body as the caller may see it: every secret sent to the vendor, and long fragments of them,
    /// removed, whatever the bytes (valid UTF-8 or not). A body in an encoding Keywarden did not ask for (gzip) cannot be
    /// checked for an echoed key, so it is replaced by a Keywarden error and its `Content-Encoding` dropped.
    static func errorBody(_ bytes: [UInt8], status: Int, vendorHeaders: HTTPHeaders, headers: inout [(name: String, value: String)],
                          scrubber: SecretScrubber) -> [UInt8] {
        // A vendor's Retry-After reaches the caller only in a form the caller's SDK can read (seconds, clamped).
        if let index = headers.firstIndex(where: { $0.name.lowercased() == "retry-after" }) {
            if let seconds = RetryAfter.seconds(headers[index].value, maximum: 3600) {
                headers[index].value = "\(seconds)"
            } else {
                headers.remove(at: index)
            }
        }
        guard unreadableEncoding(vendorHeaders) == nil else {
            headers.removeAll { ["content-encoding", "content-type"].contains($0.name.lowercased()) }
            headers.append(("Content-Type", "application/json; charset=utf-8"))
            let message = #"{"error":{"code":"upstream_error","message":"The vendor answered \#(status) with an encoded body Keywarden does not pass on."}}"#
            return Array(message.utf8)
        }
        return scrubber.scrub(bytes: bytes)
    }

    /// The content coding of an answer when it is one Keywarden cannot read (anything but `identity`); `nil` otherwise.
    static func unreadableEncoding(_ headers: HTTPHeaders) -> String? {
        let encoding = headers[canonicalForm: "content-encoding"].map { $0.lowercased() }.filter { $0 != "identity" && !$0.isEmpty }
        return encoding.isEmpty ? nil : encoding.joined(separator: ", ")
    }

    /// Why an answer's body cannot be read for scrubbing and metering: a content coding not asked for, or text (JSON,
    /// `text/*`, an event stream) declared or found to be UTF-16 or UTF-32; `nil` when it can. `whole` is the body when
    /// it came with the head (a stream's first part is checked as it passes: ``UpstreamStream``).
    static func unreadableAnswer(_ headers: HTTPHeaders, whole: ByteBuffer?) -> String? {
        if let encoding = unreadableEncoding(headers) { return "content coding \(encoding)" }
        let type = headers.first(name: "content-type") ?? ""
        guard isText(type) else { return nil }
        if charsets(of: type).contains(where: { charset in ["utf-16", "utf-32", "ucs-2", "ucs-4", "utf16", "utf32"].contains { charset.hasPrefix($0) } }) {
            return "a wide charset"
        }
        if let whole, RequestBodyCheck.isWideText(whole.readableBytesView) { return "wide text" }
        return nil
    }

    /// Whether a content type is text a client reads as characters (JSON, `text/*`, an event stream, XML).
    static func isText(_ contentType: String) -> Bool {
        ASCIIText.hasPrefix("text/", ignoringCaseAfterBlanks: contentType) || ASCIIText.contains("json", ignoringCaseIn: contentType)
            || ASCIIText.contains("xml", ignoringCaseIn: contentType) || ASCIIText.contains("event-stream", ignoringCaseIn: contentType)
    }

    /// Every charset a content type names, lower-cased (`charset=utf-16` or `charset="utf-16"`, each without its quote):
    /// a hostile answer may name two, and clients differ on which they take.
    static func charsets(of contentType: String) -> [Substring] {
        // Most types name none: a byte search says so without the generic `ranges(of:)` (it showed on the profile).
        guard ASCIIText.contains("charset=", ignoringCaseIn: contentType) else { return [] }
        let contentType = contentType.lowercased()
        return contentType.ranges(of: "charset=").map { range in
            let value = contentType[range.upperBound...]
            return value.first == "\"" ? value.dropFirst() : value
        }
    }

    /// Headers as the caller may see them: a value that holds a secret (or a long fragment of one, in any spelling the
    /// scrubber knows) has it replaced; a header whose name holds one is left out.
    static func scrubbed(_ headers: [(name: String, value: String)], with scrubber: SecretScrubber) -> [(name: String, value: String)] {
        guard !scrubber.isEmpty else { return headers }
        return headers.compactMap { header in
            // A name as sent, and lower-cased as HTTP/2 and many clients read it.
            let lower = header.name.lowercased()
            guard scrubber.scrub(header.name) == header.name, lower == header.name || scrubber.scrub(lower) == lower else { return nil }
            return (header.name, scrubber.scrub(header.value))
        }
    }

    /// The JSON body with its `model` replaced and, when asked, `stream_options.include_usage` set (a `stream_options`
    /// that is not an object, `null` included, is replaced: the stream must report its usage to be metered), spliced
    /// into the caller's bytes; `nil` when it is not one JSON object Keywarden can read.
    static func rewritingBody(_ body: [UInt8], model: String?, includeUsage: Bool) -> [UInt8]? {
        guard var edit = JSONBodyEdit(body) else { return nil }
        if let model { edit.set("model", json: CallDefaultsPlan.jsonString(model)) }
        if includeUsage { edit.set("include_usage", in: "stream_options", json: "true") }
        return edit.bytes
    }

    /// Whether the gateway asks this call's stream for usage on the caller's behalf: a streamed completion (chat, or the
    /// legacy `/completions`, which take the same `stream_options`) that did not ask, to a provider whose streams carry
    /// usage only when asked.
    static func asksForStreamUsage(_ facts: RequestFacts, provider: ProviderDefinition, path: String) -> Bool {
        guard facts.stream, !facts.streamIncludesUsage, provider.chatCompletions?.streamUsageOnRequest == true else { return false }
        let pathOnly = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return pathOnly.hasSuffix("/completions")
    }
}
