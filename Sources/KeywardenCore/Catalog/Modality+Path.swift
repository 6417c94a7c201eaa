extension Modality {
    /// The modality a vendor path implies (`/v1/audio/speech` is text-to-speech), or `nil` when it says nothing.
    ///
    /// The gateway uses it when a call does not send `X-Keywarden-Modality`.
    public static func inferred(fromPath path: String) -> Modality? {
        // ASCII-lowercased bytes and a plain byte search: this runs on every gateway call.
        let path = path.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
        return pathRules.first { rule in
            let needle = rule.needle
            guard needle.count <= path.count else { return false }
            for start in 0...(path.count - needle.count) where path[start] == needle[0] {
                if path[start..<start + needle.count].elementsEqual(needle) { return true }
            }
            return false
        }?.modality
    }

    /// What a path says, first match wins: lowercase ASCII needles, as bytes, built once.
    static let pathRules: [(needle: [UInt8], modality: Modality)] = ([
        ("/audio/speech", .tts), ("text-to-speech", .tts), ("text:synthesize", .tts), ("/cognitiveservices/v1", .tts),
        ("/audio/transcriptions", .stt), ("/audio/translations", .stt), ("speech-to-text", .stt),
        ("embed", .embeddings),
        ("/images/", .image), ("generation/", .image), ("/generate/", .image),
        ("translate", .translate),
        ("/search", .search),
        ("chat/completions", .chat), ("/messages", .chat), ("generatecontent", .chat), ("/responses", .chat),
        ("/chat", .chat), ("/completions", .chat), ("/api/generate", .chat),
    ] as [(String, Modality)]).map { (Array($0.0.utf8), $0.1) }
}
