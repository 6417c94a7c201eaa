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
        guard text.utf8.count <= maximumMessage, text.contains("response.done") else { return nil }
        let bytes = Array(text.utf8)
        guard let event = JSONObject.body(bytes, only: eventNames), event.string("type") == "response.done",
              let response = event.object("response", only: responseNames), let usage = response.object("usage", only: usageNames) else { return nil }
        return (max(0, usage.int("input_tokens") ?? 0), max(0, usage.int("output_tokens") ?? 0), response.string("model"))
    }

    /// The characters a text-to-speech stream-input message sends to be spoken (`{"text": "Hello "}`: 6; a message with
    /// no text, `{"flush": true}`: 0). A message the meter cannot read (not one JSON object, a member named twice, past
    /// the size read) counts whole: the vendor may speak it, and it is charged rather than passed unmetered.
    public static func ttsCharacters(_ text: String) -> Int {
        guard text.utf8.count <= maximumMessage, let object = JSONObject.body(Array(text.utf8), only: ttsNames) else { return text.count }
        return object.string("text")?.count ?? 0
    }

    /// Whether a client's Realtime message asks for a response (`response.create`), which the vendor bills.
    public static func asksForResponse(_ text: String) -> Bool {
        guard text.utf8.count <= maximumMessage, text.contains("response.create") else { return false }
        return JSONObject.body(Array(text.utf8), only: eventNames)?.string("type") == "response.create"
    }

    /// The largest message read (the relay's own limit).
    static let maximumMessage = 16 * 1024 * 1024
}
