import CKeywardenPKCS11
import KeywardenCore
import Logging
import Synchronization

/// An AES key inside a PKCS#11 token (an HSM, or SoftHSM2): a session logged in as the user, and AES-256-GCM done by the
/// token with a key that never leaves it.
///
/// Opening loads the module (dlopen + `C_GetFunctionList`; nothing links against it), initializes it with
/// `CKF_OS_LOCKING_OK`, finds the slot whose token has the configured label, opens a read-write session, logs in as the
/// user with the PIN, and finds the secret key by its label.
///
/// A sealed value is `IV (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`: ``encrypt(plaintext:aad:)`` asks the token for a
/// fresh random IV (`C_GenerateRandom`) on every call and has it encrypt with `CKM_AES_GCM` and a 128-bit tag, bound to
/// the associated data; ``decrypt(_:aad:)`` has the token check the tag and open it. (At most about 2³² values should be
/// sealed under one key with random IVs; wrapping workspace keys stays far below that.)
///
/// A session is not thread-safe, so calls are serialized (one at a time, each waiting for the device: call from a
/// thread that may block, not an event loop). Errors are ``PKCS11Error``s; no error, description or log line carries
/// the PIN or a plaintext. Log lines (debug on success, notice on failure) name the operation, the token, the key and
/// the error code.
///
/// The login state of a token is shared by every session the process has on it (PKCS#11): a second `PKCS11Token` on a
/// token the process is already logged in to is accepted without the token checking its PIN again. ``close()`` closes
/// the session (the token logs the process out when its last session closes) and finalizes the module when no other
/// token of the process uses it.
public final class PKCS11Token: Sendable {
    /// The IV's length in front of every sealed value.
    public static let ivByteCount = 12
    /// The GCM tag's length at the end of every sealed value.
    public static let tagByteCount = 16
    /// How many bytes sealing adds to a plaintext: the IV and the tag.
    public static let overhead = ivByteCount + tagByteCount
    /// The longest plaintext sealed, and the longest associated data (64 KiB: keys and small secrets, not documents).
    public static let maxInputBytes = 65_536
    /// An AES-256 key's length.
    public static let keyByteCount = 32

    /// The module, token and key labels in use (the PIN is not kept after the login).
    public let modulePath: String
    /// The token's label.
    public let tokenLabel: String
    /// The configured key's label.
    public let keyLabel: String

    private let module: PKCS11Module
    private let logger: Logger
    private let state: Mutex<State>

    /// The session and the key's handle; nil session once closed.
    struct State {
        var session: CK_SESSION_HANDLE?
        var key: CK_OBJECT_HANDLE?
    }

    /// Opens the token of `configuration` and logs in (see the type's description).
    ///
    /// With `requireKey` (the default), a token that holds no key with the configured label is
    /// ``PKCS11Error/keyNotFound(label:)`` now; without it (to create the key with ``generateKey(label:)``), the key is
    /// looked for again on each use until it exists. Throws ``PKCS11Error/moduleNotLoadable(path:reason:)``,
    /// ``PKCS11Error/tokenNotFound(label:)``, ``PKCS11Error/wrongPIN``, ``PKCS11Error/pinLocked`` and the others.
    public init(configuration: PKCS11Configuration, requireKey: Bool = true,
                logger: Logger = Logger(label: "keywarden.pkcs11", factory: { _ in SwiftLogNoOpLogHandler() })) throws(PKCS11Error) {
        modulePath = configuration.modulePath
        tokenLabel = configuration.tokenLabel
        keyLabel = configuration.keyLabel
        self.logger = logger
        var metadata: Logger.Metadata = ["pkcs11_module": "\(modulePath)", "pkcs11_token": "\(tokenLabel)", "pkcs11_key": "\(keyLabel)"]
        let module: PKCS11Module
        do {
            module = try PKCS11Module.acquire(path: configuration.modulePath)
        } catch {
            metadata["pkcs11_error"] = "\(error.code)"
            logger.notice("pkcs11: open failed", metadata: metadata)
            throw error
        }
        var session: CK_SESSION_HANDLE?
        do throws(PKCS11Error) {
            let functions = module.functions
            let slot = try Self.slot(labelled: configuration.tokenLabel, functions: functions)
            var handle: CK_SESSION_HANDLE = 0
            try Self.check(kw_p11_open_session(functions, slot, &handle), "C_OpenSession")
            session = handle
            let login = configuration.pin.withPlaintext { pin in kw_p11_login_user(functions, handle, pin, CK_ULONG(pin.count)) }
            if login != CK_RV(CKR_OK), login != CK_RV(CKR_USER_ALREADY_LOGGED_IN) {
                throw PKCS11Error.classify(login, operation: "C_Login")
            }
            let key = try Self.findKey(labelled: configuration.keyLabel, functions: functions, session: handle)
            if requireKey, key == nil { throw PKCS11Error.keyNotFound(label: configuration.keyLabel) }
            self.module = module
            state = Mutex(State(session: handle, key: key))
        } catch {
            if let session { _ = kw_p11_close_session(module.functions, session) }
            module.release()
            metadata["pkcs11_error"] = "\(error.code)"
            logger.notice("pkcs11: open failed", metadata: metadata)
            throw error
        }
        logger.debug("pkcs11: token open", metadata: metadata)
    }

    deinit {
        close()
    }

    /// Whether ``close()`` has not been called.
    public var isOpen: Bool { state.withLock { $0.session != nil } }

    /// Closes the session and, when no other token of the process uses the module, finalizes it. Calls after this throw
    /// ``PKCS11Error/closed``; calling it again does nothing.
    public func close() {
        let wasOpen = state.withLock { state -> Bool in
            guard let session = state.session else { return false }
            _ = kw_p11_close_session(module.functions, session)
            state.session = nil
            state.key = nil
            return true
        }
        if wasOpen { module.release() }
    }

    // MARK: - Operations

    /// Seals `plaintext` (1 byte to 64 KiB) with the key, bound to `aad`: `IV ‖ ciphertext ‖ tag`, done by the token.
    public func encrypt(plaintext: Secret, aad: [UInt8]) throws(PKCS11Error) -> [UInt8] {
        guard plaintext.byteCount > 0, plaintext.byteCount <= Self.maxInputBytes else {
            throw .configuration(setting: "plaintext", problem: "must be 1 to \(Self.maxInputBytes) bytes (it is \(plaintext.byteCount))")
        }
        try Self.checkAAD(aad)
        return try perform("encrypt") { (state: inout State) throws(PKCS11Error) -> [UInt8] in
            let (session, key) = try usableKey(&state)
            var iv = [UInt8](repeating: 0, count: Self.ivByteCount)
            try Self.check(kw_p11_generate_random(module.functions, session, &iv, CK_ULONG(iv.count)), "C_GenerateRandom")
            var capacity = plaintext.byteCount + Self.tagByteCount + 16
            for _ in 0..<2 {
                var output = [UInt8](repeating: 0, count: capacity)
                var length = CK_ULONG(capacity)
                var failedAtInit: CK_BBOOL = 0
                let value = plaintext.withPlaintext { input in
                    kw_p11_aes_gcm_encrypt(module.functions, session, key, iv, CK_ULONG(iv.count), aad, CK_ULONG(aad.count),
                                           CK_ULONG(Self.tagByteCount * 8), input, CK_ULONG(input.count), &output, &length, &failedAtInit)
                }
                switch value {
                case CK_RV(CKR_OK):
                    guard Int(length) == plaintext.byteCount + Self.tagByteCount else {
                        throw .failed(operation: "C_Encrypt gave \(length) bytes for \(plaintext.byteCount)",
                                      returnValue: PKCS11ReturnValue(UInt(CKR_GENERAL_ERROR)))
                    }
                    return iv + output[..<Int(length)]
                case CK_RV(CKR_BUFFER_TOO_SMALL):
                    capacity = Int(length)
                    // The token used this IV (the operation was finished into scratch memory); take a fresh one.
                    try Self.check(kw_p11_generate_random(module.functions, session, &iv, CK_ULONG(iv.count)), "C_GenerateRandom")
                default:
                    throw keyError(value, operation: failedAtInit != 0 ? "C_EncryptInit" : "C_Encrypt", state: &state)
                }
            }
            throw .failed(operation: "C_Encrypt", returnValue: PKCS11ReturnValue(UInt(CKR_BUFFER_TOO_SMALL)))
        }
    }

    /// Opens a value sealed by ``encrypt(plaintext:aad:)`` with the same key and `aad`.
    ///
    /// Tampered or truncated bytes, other associated data or another key are ``PKCS11Error/decryptionFailed(detail:)``.
    public func decrypt(_ ciphertext: [UInt8], aad: [UInt8]) throws(PKCS11Error) -> Secret {
        guard ciphertext.count >= Self.overhead else {
            throw .decryptionFailed(detail: "\(ciphertext.count) bytes, shorter than an IV and a tag")
        }
        guard ciphertext.count <= Self.maxInputBytes + Self.overhead else {
            throw .decryptionFailed(detail: "\(ciphertext.count) bytes, longer than any value this seals")
        }
        try Self.checkAAD(aad)
        return try perform("decrypt") { (state: inout State) throws(PKCS11Error) -> Secret in
            let (session, key) = try usableKey(&state)
            let iv = Array(ciphertext[..<Self.ivByteCount])
            let sealed = Array(ciphertext[Self.ivByteCount...])
            var capacity = sealed.count + 16
            for _ in 0..<2 {
                var output = [UInt8](repeating: 0, count: capacity)
                defer { let count = output.count; kw_p11_wipe(&output, count) }
                var length = CK_ULONG(capacity)
                var failedAtInit: CK_BBOOL = 0
                let value = kw_p11_aes_gcm_decrypt(module.functions, session, key, iv, CK_ULONG(iv.count), aad, CK_ULONG(aad.count),
                                                   CK_ULONG(Self.tagByteCount * 8), sealed, CK_ULONG(sealed.count), &output, &length,
                                                   &failedAtInit)
                switch value {
                case CK_RV(CKR_OK):
                    guard Int(length) == sealed.count - Self.tagByteCount else {
                        throw .decryptionFailed(detail: "C_Decrypt gave \(length) bytes for \(sealed.count)")
                    }
                    return Secret(bytes: Array(output[..<Int(length)]))
                case CK_RV(CKR_BUFFER_TOO_SMALL):
                    capacity = Int(length)
                case _ where failedAtInit == 0 && Self.decryptionFailures.contains(UInt(value)):
                    // A generic failure may also be the device's: a session that is gone says so.
                    var info = CK_SESSION_INFO()
                    let probe = kw_p11_session_info(module.functions, session, &info)
                    if PKCS11Error.goneValues.contains(UInt(probe)) {
                        throw .deviceGone(operation: "C_Decrypt", returnValue: PKCS11ReturnValue(UInt(value)))
                    }
                    throw .decryptionFailed(detail: "C_Decrypt: \(PKCS11ReturnValue(UInt(value)))")
                default:
                    throw keyError(value, operation: failedAtInit != 0 ? "C_DecryptInit" : "C_Decrypt", state: &state)
                }
            }
            throw .failed(operation: "C_Decrypt", returnValue: PKCS11ReturnValue(UInt(CKR_BUFFER_TOO_SMALL)))
        }
    }

    /// Creates an AES-256 key labelled `label` inside the token (`CKM_AES_KEY_GEN`): a token object (`CKA_TOKEN`),
    /// private, sensitive and not extractable (`CKA_SENSITIVE` true, `CKA_EXTRACTABLE` false), for encryption,
    /// decryption, wrapping and unwrapping only. For the operator's setup and the tests.
    ///
    /// A label some secret key already has is ``PKCS11Error/keyLabelNotUnique(label:count:)``.
    public func generateKey(label: String) throws(PKCS11Error) {
        try generateKey(label: label, encrypt: true, decrypt: true)
    }

    // MARK: - Internals (and what the tests look at)

    /// ``generateKey(label:)`` with `CKA_ENCRYPT` / `CKA_WRAP` and `CKA_DECRYPT` / `CKA_UNWRAP` as given.
    func generateKey(label: String, encrypt: Bool, decrypt: Bool) throws(PKCS11Error) {
        guard !label.isEmpty, label.utf8.count <= 256 else {
            throw .configuration(setting: "label", problem: "must be a key label of 1 to 256 bytes")
        }
        try perform("generate key") { (state: inout State) throws(PKCS11Error) -> Void in
            guard let session = state.session else { throw .closed }
            let found = try Self.countKeys(labelled: label, functions: module.functions, session: session)
            guard found.count == 0 else { throw .keyLabelNotUnique(label: label, count: found.count) }
            var key: CK_OBJECT_HANDLE = 0
            let labelBytes = Array(label.utf8)
            try Self.check(kw_p11_generate_aes_key(module.functions, session, labelBytes, CK_ULONG(labelBytes.count),
                                                   CK_ULONG(Self.keyByteCount), encrypt ? 1 : 0, decrypt ? 1 : 0, &key), "C_GenerateKey")
            if label == keyLabel { state.key = key }
        }
    }

    /// What the token says of the key's protection attributes.
    struct KeyProtection: Equatable {
        var token: Bool
        var isPrivate: Bool
        var sensitive: Bool
        var extractable: Bool
        var alwaysSensitive: Bool
        var neverExtractable: Bool
    }

    /// The configured key's protection attributes, as the token reports them.
    func keyProtection() throws(PKCS11Error) -> KeyProtection {
        try perform("read attributes") { (state: inout State) throws(PKCS11Error) -> KeyProtection in
            let (session, key) = try usableKey(&state)
            func flag(_ type: CK_ATTRIBUTE_TYPE) throws(PKCS11Error) -> Bool {
                var value: CK_BBOOL = 0
                try Self.check(kw_p11_bool_attribute(module.functions, session, key, type, &value), "C_GetAttributeValue")
                return value != 0
            }
            return KeyProtection(token: try flag(CK_ATTRIBUTE_TYPE(CKA_TOKEN)), isPrivate: try flag(CK_ATTRIBUTE_TYPE(CKA_PRIVATE)),
                                 sensitive: try flag(CK_ATTRIBUTE_TYPE(CKA_SENSITIVE)),
                                 extractable: try flag(CK_ATTRIBUTE_TYPE(CKA_EXTRACTABLE)),
                                 alwaysSensitive: try flag(CK_ATTRIBUTE_TYPE(CKA_ALWAYS_SENSITIVE)),
                                 neverExtractable: try flag(CK_ATTRIBUTE_TYPE(CKA_NEVER_EXTRACTABLE)))
        }
    }

    /// Asks the token for the configured key's value (`CKA_VALUE`) and returns its answer, which for this key must be
    /// `CKR_ATTRIBUTE_SENSITIVE`. Whatever comes back is wiped, never returned.
    func keyValueRequestAnswer() throws(PKCS11Error) -> PKCS11ReturnValue {
        try perform("read key value") { (state: inout State) throws(PKCS11Error) -> PKCS11ReturnValue in
            let (session, key) = try usableKey(&state)
            var buffer = [UInt8](repeating: 0, count: 64)
            defer { let count = buffer.count; kw_p11_wipe(&buffer, count) }
            var length = CK_ULONG(buffer.count)
            return PKCS11ReturnValue(UInt(kw_p11_value_attribute(module.functions, session, key, &buffer, &length)))
        }
    }

    /// Closes the session behind this object's back, as a removed device or a module that lost it would: the next call
    /// meets `CKR_SESSION_HANDLE_INVALID`.
    func loseSession() {
        state.withLock { state in
            if let session = state.session { _ = kw_p11_close_session(module.functions, session) }
        }
    }

    /// Runs `body` on the state under the lock, logging its outcome.
    private func perform<R: Sendable>(_ operation: String, _ body: (inout State) throws(PKCS11Error) -> R) throws(PKCS11Error) -> R {
        do throws(PKCS11Error) {
            let result = try state.withLock { (state: inout State) throws(PKCS11Error) -> R in
                guard state.session != nil else { throw PKCS11Error.closed }
                return try body(&state)
            }
            logger.debug("pkcs11: \(operation) done", metadata: ["pkcs11_token": "\(tokenLabel)", "pkcs11_key": "\(keyLabel)"])
            return result
        } catch {
            logger.notice("pkcs11: \(operation) failed",
                          metadata: ["pkcs11_token": "\(tokenLabel)", "pkcs11_key": "\(keyLabel)", "pkcs11_error": "\(error.code)"])
            throw error
        }
    }

    /// The session and the configured key, looking for the key again if it was not there before.
    private func usableKey(_ state: inout State) throws(PKCS11Error) -> (CK_SESSION_HANDLE, CK_OBJECT_HANDLE) {
        guard let session = state.session else { throw .closed }
        if let key = state.key { return (session, key) }
        guard let key = try Self.findKey(labelled: keyLabel, functions: module.functions, session: session) else {
            throw .keyNotFound(label: keyLabel)
        }
        state.key = key
        return (session, key)
    }

    /// The error of an encryption or decryption the token refused: the key not usable (or gone: forgotten, to be
    /// looked for again), else as ``PKCS11Error/classify(_:operation:)`` says.
    private func keyError(_ value: CK_RV, operation: String, state: inout State) -> PKCS11Error {
        let returnValue = PKCS11ReturnValue(UInt(value))
        switch value {
        case CK_RV(CKR_KEY_HANDLE_INVALID), CK_RV(CKR_OBJECT_HANDLE_INVALID):
            state.key = nil
            return .keyNotFound(label: keyLabel)
        case CK_RV(CKR_KEY_FUNCTION_NOT_PERMITTED), CK_RV(CKR_KEY_TYPE_INCONSISTENT), CK_RV(CKR_KEY_SIZE_RANGE):
            return .keyNotUsable(label: keyLabel, reason: "\(operation): \(returnValue)")
        default:
            return PKCS11Error.classify(value, operation: operation)
        }
    }

    /// What `C_Decrypt` answers when the tag does not match. The specification says `CKR_ENCRYPTED_DATA_INVALID` (or
    /// `…_LEN_RANGE` for a truncated one); SoftHSM2 2.6 answers `CKR_GENERAL_ERROR`, so after a `C_DecryptInit` that
    /// succeeded, that counts as a ciphertext that does not open too, unless `C_GetSessionInfo` then says the session
    /// or the token is gone.
    static let decryptionFailures: Set<UInt> = [
        UInt(CKR_ENCRYPTED_DATA_INVALID), UInt(CKR_ENCRYPTED_DATA_LEN_RANGE), UInt(CKR_DATA_INVALID), UInt(CKR_DATA_LEN_RANGE),
        UInt(CKR_GENERAL_ERROR), UInt(CKR_FUNCTION_FAILED),
    ]

    private static func checkAAD(_ aad: [UInt8]) throws(PKCS11Error) {
        guard aad.count <= maxInputBytes else {
            throw .configuration(setting: "aad", problem: "must be at most \(maxInputBytes) bytes (it is \(aad.count))")
        }
    }

    /// Throws the classified error of a return value other than `CKR_OK`.
    private static func check(_ value: CK_RV, _ operation: String) throws(PKCS11Error) {
        guard value == CK_RV(CKR_OK) else { throw PKCS11Error.classify(value, operation: operation) }
    }

    /// The slot of the one initialized token labelled `label`.
    private static func slot(labelled label: String, functions: CK_FUNCTION_LIST_PTR) throws(PKCS11Error) -> CK_SLOT_ID {
        var slots: [CK_SLOT_ID]?
        var count: CK_ULONG = 0
        // A token may come between the count and the list (CKR_BUFFER_TOO_SMALL): ask again.
        for _ in 0..<4 where slots == nil {
            try check(kw_p11_slots_with_token(functions, nil, &count), "C_GetSlotList")
            var listed = [CK_SLOT_ID](repeating: 0, count: Int(count))
            let value = kw_p11_slots_with_token(functions, &listed, &count)
            if value == CK_RV(CKR_BUFFER_TOO_SMALL) { continue }
            try check(value, "C_GetSlotList")
            slots = Array(listed.prefix(Int(count)))
        }
        guard let slots else { throw .failed(operation: "C_GetSlotList", returnValue: PKCS11ReturnValue(UInt(CKR_BUFFER_TOO_SMALL))) }
        var matches: [(slot: CK_SLOT_ID, flags: CK_FLAGS)] = []
        for slot in slots {
            var info = CK_TOKEN_INFO()
            let value = kw_p11_token_info(functions, slot, &info)
            // A token removed between the list and this call is not the one looked for.
            guard value == CK_RV(CKR_OK) else { continue }
            let initialized = info.flags & CK_FLAGS(CKF_TOKEN_INITIALIZED) != 0
            if initialized, unpadded(withUnsafeBytes(of: info.label) { Array($0) }) == label { matches.append((slot, info.flags)) }
        }
        guard let match = matches.first else { throw .tokenNotFound(label: label) }
        guard matches.count == 1 else {
            throw .configuration(setting: "token label '\(label)'", problem: "names \(matches.count) tokens; a label must name one")
        }
        if match.flags & CK_FLAGS(CKF_USER_PIN_LOCKED) != 0 { throw .pinLocked }
        return match.slot
    }

    /// A blank-padded label of `CK_TOKEN_INFO` (32 bytes), without its padding.
    static func unpadded(_ bytes: [UInt8]) -> String {
        var end = bytes.count
        while end > 0, bytes[end - 1] == 0x20 || bytes[end - 1] == 0 { end -= 1 }
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    /// The secret keys labelled `label` (at most a few: more than one is an error anyway).
    private static func countKeys(labelled label: String, functions: CK_FUNCTION_LIST_PTR,
                                  session: CK_SESSION_HANDLE) throws(PKCS11Error) -> [CK_OBJECT_HANDLE] {
        let bytes = Array(label.utf8)
        let capacity = 8
        var handles = [CK_OBJECT_HANDLE](repeating: 0, count: capacity)
        var count: CK_ULONG = 0
        try check(kw_p11_find_secret_keys(functions, session, bytes, CK_ULONG(bytes.count), &handles, CK_ULONG(capacity), &count),
                  "C_FindObjects")
        return Array(handles.prefix(Int(count)))
    }

    /// The one AES secret key labelled `label`, nil if there is none.
    private static func findKey(labelled label: String, functions: CK_FUNCTION_LIST_PTR,
                                session: CK_SESSION_HANDLE) throws(PKCS11Error) -> CK_OBJECT_HANDLE? {
        let found = try countKeys(labelled: label, functions: functions, session: session)
        guard let key = found.first else { return nil }
        guard found.count == 1 else { throw .keyLabelNotUnique(label: label, count: found.count) }
        var type: CK_ULONG = 0
        try check(kw_p11_ulong_attribute(functions, session, key, CK_ATTRIBUTE_TYPE(CKA_KEY_TYPE), &type), "C_GetAttributeValue")
        guard type == CK_ULONG(CKK_AES) else {
            throw .keyNotUsable(label: label, reason: "it is not an AES key (CKA_KEY_TYPE \(PKCS11ReturnValue(UInt(type)).hex))")
        }
        return key
    }
}
