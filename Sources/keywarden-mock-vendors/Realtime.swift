import Foundation
import HTTPTypes
import HummingbirdWebSocket
import Logging
import NIOCore

/// The vendors' WebSocket APIs, as they behave: OpenAI's Realtime API (`/v1/realtime`: `session.created` on connect,
/// a response's text deltas and a `response.done` with its usage for each `response.create`) and ElevenLabs'
/// text-to-speech `stream-input` (audio for each text sent; `isFinal` and a normal close after the empty text).
/// A session without the vendor's key gets the vendor's error event and a policy-violation close. Each session is
/// recorded when it ends (`"method": "WS"`, the handshake's headers and query, the messages received in order).
extension MockVendor {
    typealias Handler = WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>

    /// The WebSocket endpoints this family serves.
    func isWebSocketEndpoint(_ path: String) -> Bool {
        switch family {
        case .openai: path == "/v1/realtime"
        case .elevenlabs: path.hasPrefix("/v1/text-to-speech/") && (path.hasSuffix("/stream-input") || path.hasSuffix("/multi-stream-input"))
        default: false
        }
    }

    func shouldUpgrade(_ head: HTTPRequest) -> ShouldUpgradeResult<Handler> {
        let target = head.path ?? "/"
        let components = URLComponents(string: target)
        let path = components?.path ?? target
        guard isWebSocketEndpoint(path) else { return .dontUpgrade }
        var headerValues: [String: String] = [:]
        for field in head.headerFields { headerValues[field.name.canonicalName.lowercased()] = field.value }
        var queryValues: [String: String] = [:]
        for item in components?.queryItems ?? [] { queryValues[item.name] = item.value ?? "" }
        let (headers, query) = (headerValues, queryValues)
        let key = family.presentedKey(headers, query: query)
        let recorder = self.recorder
        let recording = self.recording
        let family = self.family
        var answer = HTTPFields()
        if let offered = headers["sec-websocket-protocol"]?.split(separator: ",").first?.trimmingCharacters(in: .whitespaces) {
            answer[.secWebSocketProtocol] = offered
        }
        return .upgrade(answer) { inbound, outbound, _ in
            var received: [String] = []
            defer {
                if recording {
                    let messages = received
                    Task { await recorder.record(["method": "WS", "path": path, "query": query, "headers": headers, "messages": messages, "body": ""]) }
                }
            }
            guard let key, !key.isEmpty, !key.contains("revoked") else {
                let error = family == .elevenlabs
                    ? #"{"message":"Invalid API key","error":"invalid_api_key","code":1008}"#
                    : #"{"type":"error","event_id":"evt_auth","error":{"type":"invalid_request_error","code":"invalid_api_key","message":"Incorrect API key provided.","param":null,"event_id":null}}"#
                try await outbound.write(.text(error))
                try await outbound.close(.policyViolation, reason: "invalid_api_key")
                return
            }
            if family == .openai {
                try await outbound.write(.text(#"{"type":"session.created","event_id":"evt_0","session":{"id":"sess_mock","object":"realtime.session","type":"realtime","model":"\#(query["model"] ?? "gpt-realtime")"}}"#))
            }
            var responses = 0
            for try await message in inbound.messages(maxSize: 16 * 1024 * 1024) {
                guard case .text(let text) = message else { continue }
                received.append(text)
                let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
                if family == .elevenlabs {
                    let sent = object["text"] as? String ?? ""
                    if sent.isEmpty {
                        try await outbound.write(.text(#"{"audio":null,"isFinal":true,"normalizedAlignment":null,"alignment":null}"#))
                        try await outbound.close(.normalClosure, reason: nil)
                        return
                    }
                    guard sent != " " else { continue }
                    let audio = Data(("ID3mock-audio:" + sent).utf8).base64EncodedString()
                    try await outbound.write(.text(#"{"audio":"\#(audio)","isFinal":null,"normalizedAlignment":null,"alignment":null}"#))
                    continue
                }
                switch object["type"] as? String {
                case "session.update":
                    try await outbound.write(.text(#"{"type":"session.updated","event_id":"evt_u","session":{"id":"sess_mock","object":"realtime.session","type":"realtime"}}"#))
                case "conversation.item.create":
                    try await outbound.write(.text(#"{"type":"conversation.item.added","event_id":"evt_i","previous_item_id":null,"item":{"id":"item_1","object":"realtime.item","type":"message","role":"user","status":"completed","content":[]}}"#))
                case "response.create":
                    responses += 1
                    let id = "resp_\(responses)"
                    try await outbound.write(.text(#"{"type":"response.created","event_id":"evt_c","response":{"id":"\#(id)","object":"realtime.response","status":"in_progress","output":[]}}"#))
                    for piece in ["Hello", " from", " the", " realtime", " mock."] {
                        try await outbound.write(.text(#"{"type":"response.output_text.delta","event_id":"evt_d","response_id":"\#(id)","item_id":"item_r","output_index":0,"content_index":0,"delta":"\#(piece)"}"#))
                    }
                    try await outbound.write(.text(#"{"type":"response.done","event_id":"evt_done","response":{"id":"\#(id)","object":"realtime.response","status":"completed","output":[],"usage":{"total_tokens":17,"input_tokens":12,"output_tokens":5,"input_token_details":{"cached_tokens":0,"text_tokens":12,"audio_tokens":0},"output_token_details":{"text_tokens":5,"audio_tokens":0}}}}"#))
                default:
                    break
                }
            }
        }
    }
}
