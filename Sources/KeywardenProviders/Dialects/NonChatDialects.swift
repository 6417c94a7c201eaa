import KeywardenCore

/// ElevenLabs' voice API: billed by the characters a request sends, so its answers carry no usage to read.
struct ElevenLabsDialect: VendorDialect {
    var id: DialectID { .elevenlabs }
    var quotaCodes: Set<String> { ["quota_exceeded", "payment_required"] }
    var rateLimitCodes: Set<String> { ["too_many_requests", "rate_limited"] }
}

/// Google Cloud's REST APIs (Text-to-Speech, Translation): errors as `{"error": {"code", "message", "status"}}`.
struct GoogleCloudDialect: VendorDialect {
    var id: DialectID { .google }
}

/// Azure's Cognitive Services (Speech): errors as `{"error": {"code", "message"}}`.
struct AzureDialect: VendorDialect {
    var id: DialectID { .azure }
}
