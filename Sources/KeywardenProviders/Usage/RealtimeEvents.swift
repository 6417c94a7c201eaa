/// What the WebSocket APIs' messages say of usage, read with ``JSONScan`` as they pass.
public enum RealtimeEvents {
    private static let eventNames = JSONNames("type", "response")
    private static let responseNames = JSONNames("usage", "model")
    private static let usageNames = JSONNames("input_tokens", "output_tokens")
    private static let ttsNames = JSONNames("text")

    /// The tokens of a Realtime `response.done` event (`response.usage.input_tokens` / `output_tokens`); `nil` for
    /// any other message.
    public static func responseUsage(_ text: String) -> (input: Int, output: Int, model: String?)? {
        // Cheap before any parse: most events are audio deltas.
        guard text.utf8.count < 1 << 20, text.contains("response.done") else { return nil }
        let bytes = Array(text.utf8)
        guard let event = JSONObject.body(bytes, only: eventNames), event.string("type") == "response.done",
              let response = event.object("response", only: responseNames), let usage = response.object("usage", only: usageNames) else { return nil }
        return (max(0, usage.int("input_tokens") ?? 0), max(0, usage.int("output_tokens") ?? 0), response.string("model"))
    }

    /// The text a text-to-speech stream-input message sends (`{"text": "Hello "}`); `nil` for any other message.
    public static func text(ofTTSMessage text: String) -> String? {
        guard text.utf8.count < 1 << 20 else { return nil }
        return JSONObject.body(Array(text.utf8), only: ttsNames)?.string("text")
    }
}
