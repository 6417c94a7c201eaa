extension Modality {
    /// The modality a vendor path implies (`/v1/audio/speech` is text-to-speech), or `nil` when it says nothing.
    ///
    /// The gateway uses it when a call does not send `X-Keywarden-Modality`.
    public static func inferred(fromPath path: String) -> Modality? {
        let path = path.lowercased()
        let rules: [(String, Modality)] = [
            ("/audio/speech", .tts), ("text-to-speech", .tts), ("text:synthesize", .tts), ("/cognitiveservices/v1", .tts),
            ("/audio/transcriptions", .stt), ("/audio/translations", .stt), ("speech-to-text", .stt),
            ("embed", .embeddings),
            ("/images/", .image), ("generation/", .image), ("/generate/", .image),
            ("translate", .translate),
            ("/search", .search),
            ("chat/completions", .chat), ("/messages", .chat), ("generatecontent", .chat), ("/responses", .chat),
            ("/chat", .chat), ("/completions", .chat), ("/api/generate", .chat),
        ]
        return rules.first { path.contains($0.0) }?.1
    }
}
