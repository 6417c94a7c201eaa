import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import KeywardenApp
import KeywardenCore
import KeywardenGateway
import Logging
import NIOCore

/// WebSocket upgrades on the native faces: the endpoints a catalog entry names in `websocket_endpoints` (OpenAI's
/// Realtime API, ElevenLabs' `stream-input`) are relayed to the vendor with the resolved key injected.
struct RealtimeController {
    let app: AppServices
    let gateway: Gateway

    typealias Handler = WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>

    /// Whether and how to upgrade a request head that asks for a WebSocket.
    ///
    /// A path that is no provider's WebSocket endpoint is not upgraded (`400`, as HTTP answers an upgrade it does not
    /// offer). One that is always upgrades, so the client learns why it cannot go on the way its SDK reads it: a refusal
    /// (a bad token, no key, a limit) is sent as an `error` event with Keywarden's code and the socket is closed
    /// (policy violation).
    func shouldUpgrade(_ head: HTTPRequest, logger: Logger) async -> ShouldUpgradeResult<Handler> {
        let target = head.path ?? "/"
        let pathOnly = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? "/"
        let parts = pathOnly.dropFirst().split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let provider = app.catalog.provider(String(parts[0])), !provider.webSocketEndpoints.isEmpty else { return .dontUpgrade }
        let pathAndQuery = String(target.dropFirst(1 + parts[0].count))
        guard EndpointRule.allows(provider.webSocketEndpoints, method: "GET", pathAndQuery: pathAndQuery) else { return .dontUpgrade }

        let subprotocols = (head.headerFields[.secWebSocketProtocol] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let query = URLComponents(string: target)?.queryItems
        let call: GatewayCall
        do {
            let principal = try await GatewayDataPlane.authenticate(app, headers: head.headerFields, query: query?.first { $0.name == "key" }?.value,
                                                                      subprotocols: subprotocols)
            let workspaceID = try GatewayDataPlane.workspace(for: principal, named: head.headerFields[.keywardenWorkspace])
            let modality = head.headerFields[.keywardenModality].flatMap(Modality.init(rawValue:))
            call = GatewayCall(face: .native(providerID: provider.id), method: "GET", pathAndQuery: pathAndQuery,
                               headers: head.headerFields.map { (name: $0.name.rawName, value: $0.value) }, body: .empty, workspaceID: workspaceID,
                               consumer: head.headerFields[.keywardenConsumer], modality: modality)
        } catch let error as KeywardenError {
            return Self.refusal(code: error.code, message: error.message)
        } catch {
            return Self.refusal(code: "unauthorized", message: "The token could not be checked.")
        }
        switch await gateway.openRealtime(call, subprotocols: subprotocols) {
        case .refused(let answer):
            let body: String = if case .complete(let buffer) = answer.body { String(buffer: buffer) } else { "" }
            return Self.refusal(errorBody: body)
        case .ready(let session):
            var fields = HTTPFields()
            for (name, value) in session.answerHeaders {
                if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
            }
            // A client that offered subprotocols is answered with one of them (the first that carried no key).
            if let chosen = session.subprotocols.first { fields[.secWebSocketProtocol] = chosen }
            let gateway = self.gateway
            return .upgrade(fields) { inbound, outbound, context in
                await gateway.relay(session, client: inbound, clientWriter: outbound, logger: context.logger)
            }
        }
    }

    /// An upgrade that only says why the session cannot go on: an `error` event, then a close (policy violation).
    static func refusal(code: String, message: String) -> ShouldUpgradeResult<Handler> {
        refusal(errorBody: #"{"error":{"code":"# + CallDefaultsPlan.jsonString(code) + #","message":"# + CallDefaultsPlan.jsonString(message) + #","type":"keywarden_error"}}"#)
    }

    /// `errorBody` (`{"error": {…}}`) sent as a Realtime `error` event, then a close.
    static func refusal(errorBody: String) -> ShouldUpgradeResult<Handler> {
        let event = errorBody.hasPrefix("{") ? #"{"type":"error","# + errorBody.dropFirst() : #"{"type":"error"}"#
        return .upgrade([:]) { _, outbound, _ in
            try await outbound.write(.text(event))
            try await outbound.close(.policyViolation, reason: "keywarden_error")
        }
    }
}
